"""Running the Alembic migrations from code (CLI, tests)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dinegraph.db.engine import create_engine
from dinegraph.settings import Settings

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str, settings: Settings | None = None) -> Config:
    """``settings`` give the data keys that convert personal data (default: the environment)."""
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    if settings is not None:
        config.attributes["settings"] = settings
    return config


def upgrade(database_url: str, revision: str = "head", settings: Settings | None = None) -> None:
    """Bring the database to ``revision``; blocking, so run it outside an event loop."""
    command.upgrade(alembic_config(database_url, settings), revision)


@dataclass(frozen=True)
class Migration:
    """What an upgrade did: the revisions before and after, and how many were applied."""

    before: tuple[str, ...]  # empty: a database without our schema
    after: tuple[str, ...]
    applied: int

    def describe(self) -> str:
        after = ", ".join(self.after) or "<none>"
        if not self.applied:
            return f"already at {after}: nothing to apply"
        before = ", ".join(self.before) or "<none>"
        plural = "revision" if self.applied == 1 else "revisions"
        return f"migrated from {before} to {after}: {self.applied} {plural} applied"


def upgrade_reporting(settings: Settings, revision: str = "head") -> Migration:
    """``upgrade`` the settings' database and say what it did; blocking, like ``upgrade``."""
    config = alembic_config(settings.database_url, settings)
    before = _current(settings)
    command.upgrade(config, revision)
    after = _current(settings)
    script = ScriptDirectory.from_config(config)
    applied = 0 if after == before else len(list(script.iterate_revisions(after, before)))
    return Migration(before, after, applied)


def _current(settings: Settings) -> tuple[str, ...]:
    """The revisions the database is at (read in a connection of its own)."""

    async def read() -> tuple[str, ...]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: tuple(MigrationContext.configure(sync).get_current_heads())
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
