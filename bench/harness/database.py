"""The scratch demo database a scenario runs on, and the environment to serve it.

SQLite lives in the run's temporary directory; on PostgreSQL each run gets a database of
its own, ``dinegraph_bench_<random>`` on the server given, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dinegraph.db.engine import WRITE, create_engine
from dinegraph.settings import Settings

from .processes import run_cli
from .report import log

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_KEY = "DINEGRAPH_SECRET_KEY"
# Production refuses development adapters: real ones, aimed at a closed loopback port (no
# scenario signs in through WeChat, texts a code or pays through WeChat Pay: members get
# their tokens from the CLI or straight from the server's secret key).
CLOSED_PORT = "http://127.0.0.1:9"
WECHAT_APPID = "wx0000000000000000"  # the mini-program, and the one WeChat Pay pays for
PRODUCTION_ADAPTERS = {
    "DINEGRAPH_WECHAT_APPID": WECHAT_APPID,
    "DINEGRAPH_WECHAT_SECRET": "bench-wechat-app-secret",
    "DINEGRAPH_WECHAT_API_BASE": CLOSED_PORT,
    "DINEGRAPH_TENCENT_SECRET_ID": "AKIDbench",
    "DINEGRAPH_TENCENT_SECRET_KEY": "bench-tencent-secret-key",
    "DINEGRAPH_TENCENT_SMS_SDK_APP_ID": "1400000000",
    "DINEGRAPH_TENCENT_SMS_SIGN_NAME": "bench",
    "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID": "1000000",
    "DINEGRAPH_TENCENT_SMS_ENDPOINT": CLOSED_PORT,
    # The demo chain delivers by 达达 and 顺丰同城 (车公庙店): production wants both real
    # adapters, and refuses to start on a store whose platform it does not configure.
    "DINEGRAPH_DELIVERY_PLATFORMS": "DADA,SF_INTRA_CITY",
    "DINEGRAPH_DADA_APP_KEY": "bench-dada-app-key",
    "DINEGRAPH_DADA_APP_SECRET": "bench-dada-app-secret",
    "DINEGRAPH_DADA_SOURCE_ID": "73753",
    "DINEGRAPH_DADA_BASE_URL": CLOSED_PORT,
    "DINEGRAPH_DADA_CALLBACK_URL": "https://bench.invalid/delivery/dada/callback",
    "DINEGRAPH_SF_DEV_ID": "1588000001",
    "DINEGRAPH_SF_DEV_KEY": "bench-sf-dev-key",
    "DINEGRAPH_SF_SHOP_ID": "3243279847393",
    "DINEGRAPH_SF_BASE_URL": CLOSED_PORT,
}


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def wechatpay_merchant(workdir: Path) -> dict[str, str]:
    """A whole WeChat Pay merchant, fresh for the run: the merchant's private key and the
    platform's public key ("微信支付公钥") written as PEM files into ``workdir``, an APIv3 key
    and a serial number; its API is the closed port. A production server reads and checks
    every piece at start-up (dinegraph/wechatpay_wiring.py ``wechatpay_config``)."""
    private_path = workdir / "apiclient_key.pem"
    private_path.write_bytes(_private_pem(rsa.generate_private_key(65537, 2048)))
    public_path = workdir / "pub_key.pem"
    public_path.write_bytes(_public_pem(rsa.generate_private_key(65537, 2048)))
    return {
        "DINEGRAPH_WECHATPAY_MCHID": "1900000109",
        "DINEGRAPH_WECHATPAY_APPID": WECHAT_APPID,
        "DINEGRAPH_WECHATPAY_MERCHANT_SERIAL_NO": secrets.token_hex(20).upper(),
        "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH": str(private_path),
        "DINEGRAPH_WECHATPAY_APIV3_KEY": secrets.token_hex(16),  # 32 characters
        "DINEGRAPH_WECHATPAY_PUBLIC_KEY_PATH": str(public_path),
        "DINEGRAPH_WECHATPAY_PUBLIC_KEY_ID": f"PUB_KEY_ID_{secrets.token_hex(16).upper()}",
        "DINEGRAPH_WECHATPAY_NOTIFY_URL": "https://bench.invalid/payments/wechatpay/notify",
        "DINEGRAPH_WECHATPAY_BASE_URL": CLOSED_PORT,
    }


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def personal_data_keys() -> dict[str, str]:
    """Fresh keys for the personal data (phones, names, addresses) of the run: encrypted as
    production encrypts it (dinegraph/db/personal.py)."""
    return {
        "DINEGRAPH_DATA_KEYS": f"bench:{_new_key()}",
        "DINEGRAPH_BLIND_INDEX_KEY": _new_key(),
    }


def production_env(workdir: Path) -> dict[str, str]:
    """What a production server needs besides its database: a fresh secret key, fresh
    personal data keys, real adapters (WeChat sign-in, SMS, a WeChat Pay merchant) aimed
    at a closed loopback port."""
    return {
        "DINEGRAPH_MODE": "production",
        SECRET_KEY: secrets.token_urlsafe(48),
        **personal_data_keys(),
        **PRODUCTION_ADAPTERS,
        **wechatpay_merchant(workdir),
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
    env: dict[str, str]  # production mode, fresh keys, closed-port adapters, memory broker

    @property
    def postgres(self) -> bool:
        return self.database == "postgresql"

    def settings(self, **overrides: Any) -> Settings:
        """The servers' settings (every ``DINEGRAPH_*`` of ``env``): the secret key, so
        that tokens minted here verify, and the personal data keys, so that rows written
        here are encrypted as the servers encrypt them."""
        given = {
            name.removeprefix("DINEGRAPH_").lower(): value
            for name, value in self.env.items()
            if name.startswith("DINEGRAPH_")
        }
        values: dict[str, Any] = {k: v for k, v in given.items() if k in Settings.model_fields}
        return Settings(**{**values, "database_url": self.url, **overrides})

    def engine(self) -> AsyncEngine:
        """The product's engine on this database (SQLite: WAL, BEGIN IMMEDIATE on writes)."""
        return create_engine(self.settings())

    def postgres_broker_url(self) -> str:
        """The PostgreSQL broker (LISTEN/NOTIFY) on this very database."""
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def products_broker(self, processes: int, redis_url: str | None) -> str:
        """The broker the product's processes share: memory for one, PostgreSQL's own
        NOTIFY on PostgreSQL, ``redis_url`` on SQLite."""
        if processes == 1:
            return "memory://"
        return self.postgres_broker_url() if self.postgres else str(redis_url)


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

    The environment serves it in production mode (``production_env``) with the memory
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
            **production_env(workdir),
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
