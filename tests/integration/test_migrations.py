"""Alembic migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dinegraph.db.engine import create_engine
from dinegraph.db.migrate import alembic_config
from dinegraph.db.tables import declared_for, metadata
from dinegraph.settings import Settings
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON, fresh_database

BACKENDS = [
    pytest.param(False, id="sqlite"),
    pytest.param(
        True,
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not ON_POSTGRES, reason=SKIP_POSTGRES_REASON),
        ],
    ),
]


def _diff(url: str) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        dialect = conn.dialect.name
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # PostgreSQL's trigram index is PostgreSQL's only (tables.declared_for).
                "include_object": lambda item, *_: declared_for(item, dialect),
            },
        )
        return list(compare_metadata(context, metadata))

    async def run() -> list[Any]:
        engine = create_engine(Settings(), url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("postgres", BACKENDS)
def test_migrations_match_the_models(tmp_path: Path, postgres: bool) -> None:
    with fresh_database(tmp_path, postgres=postgres) as url:
        assert _diff(url) == []


@pytest.mark.parametrize("postgres", BACKENDS)
def test_migrations_downgrade_to_nothing_and_upgrade_again(tmp_path: Path, postgres: bool) -> None:
    with fresh_database(tmp_path, postgres=postgres) as url:
        config = alembic_config(url)
        command.downgrade(config, "base")
        assert _diff(url) != []  # the tables are gone
        command.upgrade(config, "head")
        assert _diff(url) == []
