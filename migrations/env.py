"""Alembic environment: runs migrations through the same async engine as the server."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection

from dinegraph.db.engine import WRITE, create_engine
from dinegraph.db.personal import BlindIndex, Encrypted
from dinegraph.db.tables import UtcDateTime, declared_for, metadata
from dinegraph.settings import Settings

target_metadata = metadata


def _settings() -> Settings:
    """The caller's settings (their data keys convert personal data), else the environment."""
    settings = context.config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


def _url() -> str:
    return context.config.attributes.get("database_url") or _settings().database_url


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render the project's own column types as the plain types they store."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, Encrypted):
        return "sa.Text()"  # ciphertext (db/personal.py)
    if type_ == "type" and isinstance(obj, BlindIndex):
        return "sa.String(length=64)"
    return False


def _run(connection: Connection) -> None:
    dialect = connection.dialect.name
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        # An index declared for one database only is not missing from the others.
        include_object=lambda item, *_: declared_for(item, dialect),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")


def _sqlite_rebuilds_tables(dbapi_connection: Any, _record: Any) -> None:
    # Batch migrations rebuild tables (copy, drop, rename): with foreign keys enforced,
    # dropping a parent table fails. SQLite's documented procedure turns them off for the
    # rebuild and checks them after (above).
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")


async def _run_async() -> None:
    engine = create_engine(_settings(), _url())
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_rebuilds_tables)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
