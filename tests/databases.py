"""Test databases: a SQLite file, or a PostgreSQL database created and dropped per use."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from dinegraph.db.migrate import upgrade
from dinegraph.settings import Settings
from tests.tools import missing

POSTGRES_URL = os.environ.get("DINEGRAPH_TEST_DATABASE_URL")
ON_POSTGRES = bool(POSTGRES_URL)
SKIP_POSTGRES_REASON = (
    "PostgreSQL tests need DINEGRAPH_TEST_DATABASE_URL, "
    "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test (CI sets it)"
)


def _redis_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist, worker ``gwN`` uses Redis database (given + N). The broker keeps
    deployments on different databases apart (pub/sub ignores the number, the channels do
    not), so one worker's servers never hear another's events on the same store."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{database}"))


REDIS_URL = _redis_of_this_worker(os.environ.get("DINEGRAPH_TEST_REDIS_URL"))


def broker_url(settings: Settings, kind: str) -> str:
    """A broker several app instances of one test can share: ``postgres`` (the test's own
    database, so PostgreSQL runs only) or ``redis`` (skipped without DINEGRAPH_TEST_REDIS_URL,
    which CI's PostgreSQL leg must set)."""
    if kind == "postgres":
        if not ON_POSTGRES:  # the broker is the database itself
            pytest.skip(SKIP_POSTGRES_REASON)
        url = make_url(settings.database_url).set(drivername="postgres")
        return url.render_as_string(hide_password=False)
    if not REDIS_URL:
        reason = (
            "the Redis broker tests need DINEGRAPH_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0"
        )
        if ON_POSTGRES:  # CI runs its PostgreSQL leg with Redis
            missing(reason)
        pytest.skip(reason)
    return REDIS_URL


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``; dropped afterwards."""
    name = f"dinegraph_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def fresh_database(
    tmp: Path, *, migrated: bool = True, postgres: bool = ON_POSTGRES
) -> Iterator[str]:
    """An empty database of the kind this run targets, migrated to head unless told not."""
    if postgres:
        assert POSTGRES_URL, SKIP_POSTGRES_REASON
        with postgres_database(POSTGRES_URL) as url:
            if migrated:
                upgrade(url)
            yield url
    else:
        url = f"sqlite+aiosqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.db'}"
        if migrated:
            upgrade(url)
        yield url
