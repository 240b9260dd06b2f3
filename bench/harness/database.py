"""The scratch demo database a scenario runs on, and the environment to serve it.

SQLite lives in the run's temporary directory; on PostgreSQL each run gets a database of
its own, ``dinegraph_bench_<random>`` on the server given, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dinegraph.db.engine import WRITE, create_engine
from dinegraph.settings import Settings

from .processes import run_cli
from .report import log

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_KEY = "DINEGRAPH_SECRET_KEY"
# Production refuses development adapters: real ones, aimed at a closed loopback port (no
# scenario signs in through WeChat, texts a code or pays through WeChat Pay).
PRODUCTION_ADAPTERS = {
    "DINEGRAPH_WECHAT_APPID": "wx0000000000000000",
    "DINEGRAPH_WECHAT_SECRET": "bench-wechat-app-secret",
    "DINEGRAPH_WECHAT_API_BASE": "http://127.0.0.1:9",
    "DINEGRAPH_TENCENT_SECRET_ID": "AKIDbench",
    "DINEGRAPH_TENCENT_SECRET_KEY": "bench-tencent-secret-key",
    "DINEGRAPH_TENCENT_SMS_SDK_APP_ID": "1400000000",
    "DINEGRAPH_TENCENT_SMS_SIGN_NAME": "bench",
    "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID": "1000000",
    "DINEGRAPH_TENCENT_SMS_ENDPOINT": "http://127.0.0.1:9",
    "DINEGRAPH_WECHATPAY_MCHID": "1900000109",
}


def loopback_url_problem(value: str, schemes: frozenset[str]) -> str | None:
    """Why ``value`` is not a URL of one of ``schemes`` on this machine; None when it is.
    Benchmarks only ever load servers on the loopback."""
    try:
        url = make_url(value)
    except Exception:
        return f"{value!r} is not a URL"
    scheme = url.drivername.split("+", 1)[0]
    if scheme not in schemes:
        return f"{value!r} is not a {'/'.join(sorted(schemes))} URL"
    if url.host not in LOOPBACK_HOSTS:
        return f"{value!r} is not on the loopback (127.0.0.1, localhost, ::1)"
    return None


def check_database_url(parser: argparse.ArgumentParser, value: str | None) -> None:
    if value is not None and loopback_url_problem(value, frozenset({"postgresql"})):
        parser.error("--database-url must be a loopback postgresql+asyncpg:// URL")


def check_redis_url(parser: argparse.ArgumentParser, value: str | None) -> None:
    if value is not None and loopback_url_problem(value, frozenset({"redis", "rediss"})):
        parser.error("--redis-url must be a loopback redis:// URL")


@dataclass
class Demo:
    """A migrated and seeded scratch database, and the environment to serve it."""

    database: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL of the scratch database
    env: dict[str, str]  # production mode, a fresh secret key, the memory broker

    @property
    def postgres(self) -> bool:
        return self.database == "postgresql"

    def settings(self, **overrides: Any) -> Settings:
        """The servers' settings, secret key included, so that tokens minted here verify."""
        return Settings(
            database_url=self.url, secret_key=SecretStr(self.env[SECRET_KEY]), **overrides
        )

    def engine(self) -> AsyncEngine:
        """The product's engine on this database (SQLite: WAL, BEGIN IMMEDIATE on writes)."""
        return create_engine(self.settings())

    def postgres_broker_url(self) -> str:
        """The PostgreSQL broker (LISTEN/NOTIFY) on this very database."""
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def create_postgres_database(server_url: URL) -> URL:
    name = f"dinegraph_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    log(f"created PostgreSQL database {name}")
    return server_url.set(database=name)


def drop_postgres_database(server_url: URL, bench_url: URL) -> None:
    name = bench_url.database
    try:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as exc:  # older servers have no WITH (FORCE)
        log(f"DROP ... WITH (FORCE) failed ({exc!r}); retrying without FORCE")
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}"'))
    log(f"dropped PostgreSQL database {name}")


@contextlib.contextmanager
def demo_database(
    database_url: str | None, workdir: Path, *, server_timing: bool = False
) -> Iterator[Demo]:
    """Create, migrate and seed a scratch database; drop it (PostgreSQL) on the way out.

    The environment serves it in production mode with a fresh secret key and the memory
    broker; ``server_timing`` adds the ``Server-Timing`` statement count to each answer.
    """
    server_url = make_url(database_url) if database_url else None
    bench_url: URL | None = None
    try:
        if server_url is None:
            url, database = f"sqlite+aiosqlite:///{workdir / 'bench.db'}", "sqlite"
        else:
            bench_url = create_postgres_database(server_url)
            url, database = bench_url.render_as_string(hide_password=False), "postgresql"
        env = {
            **os.environ,
            "DINEGRAPH_DATABASE_URL": url,
            "DINEGRAPH_BROKER_URL": "memory://",
            "DINEGRAPH_MODE": "production",
            **PRODUCTION_ADAPTERS,
            SECRET_KEY: secrets.token_urlsafe(48),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DINEGRAPH_SERVER_TIMING", None)
        if server_timing:
            env["DINEGRAPH_SERVER_TIMING"] = "1"
        log(f"migrating and seeding the demo chain into {database}")
        run_cli(["migrate"], env)
        seeded = run_cli(["seed", "--demo"], env).splitlines()
        log(seeded[0] if seeded else "seeded")
        yield Demo(database, url, env)
    finally:
        if server_url is not None and bench_url is not None:
            drop_postgres_database(server_url, bench_url)


async def pg_sessions(engine: AsyncEngine) -> int | None:
    """Sessions ever opened on this PostgreSQL database (pg_stat_database, PostgreSQL 14+);
    None on SQLite or when it cannot be read."""
    if engine.dialect.name != "postgresql":
        return None
    query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(sa.text(query))
    except Exception as exc:
        log(f"cannot read pg_stat_database.sessions: {exc!r}")
        return None
    return None if value is None else int(value)


@contextlib.asynccontextmanager
async def write_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A floor's transaction, opened for writing as the product's unit of work opens it
    (SQLite: BEGIN IMMEDIATE); rolled back on the way out unless committed."""
    conn = await engine.connect()
    try:
        conn = await conn.execution_options(**{WRITE: True})
        await conn.begin()
        yield conn
    finally:
        await conn.close()
