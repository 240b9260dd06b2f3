"""Shared fixtures: one demo database per run, an app on it, and viewers' credentials."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.db import identity as identity_db
from dinegraph.db.engine import create_engine
from dinegraph.db.seed import seed_demo
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.identity import StaffRole
from dinegraph.security import issue_member_token, issue_staff_token, new_api_key
from dinegraph.settings import Mode, Settings
from tests.databases import fresh_database
from tests.fakes.wechatpay_server import new_merchant


def pytest_report_header() -> str:
    from tests.databases import ON_POSTGRES

    return f"dinegraph database: {'PostgreSQL' if ON_POSTGRES else 'SQLite'}"


@pytest.fixture(scope="session")
def demo_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database holding the demo chain, shared by the whole run (read mostly)."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        engine = create_engine(make_settings(url), url)

        async def load() -> None:
            try:
                await seed_demo(engine)
            finally:
                await engine.dispose()

        asyncio.run(load())
        yield url


# The tests' personal data keys, the same in every mode (production demands them).
TEST_DATA_KEYS = "test1:" + "dGVzdC1kYXRhLWtleS1vZi0zMi1ieXRlcy0wMDAwMDA="
TEST_BLIND_INDEX_KEY = "dGVzdC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMtMDA="


def make_settings(database_url: str, **overrides: Any) -> Settings:
    adapters = PRODUCTION_ADAPTERS if overrides.get("mode") is Mode.PRODUCTION else {}
    values: dict[str, Any] = {
        **adapters,
        "database_url": database_url,
        "secret_key": "test-secret-key-that-is-long-enough-for-production",
        "data_keys": TEST_DATA_KEYS,
        "blind_index_key": TEST_BLIND_INDEX_KEY,
        "recommendations_rebuild_minutes": 0,  # the tests that want it turn it on
        **overrides,
    }
    return Settings(**values)


# Production refuses development adapters: these settings make WeChat sign-in, SMS,
# payments and 达达 real (aimed at a closed loopback port: tests that call them start fakes).
PRODUCTION_ADAPTERS: dict[str, Any] = {
    "wechat_secret": "test-wechat-app-secret",
    "wechat_api_base": "http://127.0.0.1:9",
    "tencent_secret_id": "AKIDtest",
    "tencent_secret_key": "test-tencent-secret-key",
    "tencent_sms_sdk_app_id": "1400000000",
    "tencent_sms_sign_name": "测试",
    "tencent_sms_template_id": "1000000",
    "tencent_sms_endpoint": "http://127.0.0.1:9",
    # The demo chain's stores deliver by 达达 and 顺丰同城 (车公庙店): production needs both
    # real adapters, and refuses to start on a store whose platform it does not configure.
    "delivery_platforms": "DADA,SF_INTRA_CITY",
    "dada_app_key": "test-dada-app-key",
    "dada_app_secret": "test-dada-app-secret",
    "dada_source_id": "73753",
    "dada_base_url": "http://127.0.0.1:9",
    "dada_callback_url": "https://dinegraph.example/delivery/dada/callback",
    "sf_dev_id": "1588000001",
    "sf_dev_key": "test-sf-dev-key",
    "sf_shop_id": "3243279847393",
    "sf_base_url": "http://127.0.0.1:9",
}


def _production_merchant() -> dict[str, Any]:
    """A whole WeChat Pay merchant (key files made once per test run), aimed at a closed
    loopback port like the others: a production server checks every piece at start-up."""
    directory = Path(tempfile.mkdtemp(prefix="dinegraph-merchant-"))
    atexit.register(shutil.rmtree, directory, True)
    _, merchant = new_merchant(directory)
    env = {**merchant.env, "DINEGRAPH_WECHATPAY_BASE_URL": "http://127.0.0.1:9"}
    env.pop("DINEGRAPH_WECHATPAY_TIMEOUT_SECONDS")  # the default serves
    return {k.removeprefix("DINEGRAPH_").lower(): v for k, v in env.items()}


PRODUCTION_ADAPTERS.update(_production_merchant())
# WeChat Pay pays for the mini-program members sign in to: one AppID.
PRODUCTION_ADAPTERS["wechat_appid"] = PRODUCTION_ADAPTERS["wechatpay_appid"]
# The same as typed values, for ``Settings.model_copy(update=...)``.
PRODUCTION_ADAPTER_VALUES: dict[str, Any] = Settings(**PRODUCTION_ADAPTERS).model_dump(
    include=set(PRODUCTION_ADAPTERS)
)
# The same as environment variables, for servers started as processes.
PRODUCTION_ADAPTER_ENV = {f"DINEGRAPH_{k.upper()}": v for k, v in PRODUCTION_ADAPTERS.items()}


@pytest.fixture(scope="session")
def settings(demo_database_url: str) -> Settings:
    return make_settings(demo_database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@dataclass(frozen=True)
class Credentials:
    hq_admin: dict[str, str]
    operator: dict[str, str]
    manager_store_1: dict[str, str]
    member: dict[str, str]
    partner: dict[str, str]


@pytest.fixture(scope="session")
async def credentials(settings: Settings, engine: AsyncEngine) -> Credentials:
    async def staff(username: str, role: StaffRole, stores: list[int]) -> dict[str, str]:
        viewer = await identity_db.ensure_staff(
            engine, username=username, role=role, store_ids=stores
        )
        return {"Authorization": f"Bearer {issue_staff_token(settings, viewer)}"}

    async with SqlUnitOfWork(engine) as uow:
        member = await uow.members.add(phone="13800000001", openid=None, nickname="测试会员")
        await uow.commit()
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name="test POS",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=["stock:write"],
        store_ids=[1],
    )
    return Credentials(
        hq_admin=await staff("test-hq", StaffRole.HQ_ADMIN, []),
        operator=await staff("test-operator", StaffRole.OPERATOR, []),
        manager_store_1=await staff("test-manager-1", StaffRole.STORE_MANAGER, [1]),
        member={"Authorization": f"Bearer {issue_member_token(settings, member.id)}"},
        partner={"X-Api-Key": key.key},
    )


class GraphQLClient:
    """Posts operations to an in-process app and returns the decoded answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="session")
async def gql(settings: Settings, engine: AsyncEngine) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield GraphQLClient(client)


@pytest.fixture
def tmp_db_dir(tmp_path: Path) -> Path:
    return tmp_path
