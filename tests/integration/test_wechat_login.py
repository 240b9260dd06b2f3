"""WeChat mini-program sign-in through GraphQL against FakeWechatServer (a real socket).

Login codes, phone codes, WeChat's refusals as UserErrors with nothing written, timeouts,
and the access token: refreshed once for concurrent requests and for two app instances on
one database, and once more (then retried) when WeChat calls it invalid or expired.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.db.engine import create_engine
from dinegraph.db.tables import members, refresh_tokens, wechat_access_tokens
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.db.wechat_tokens import SqlWechatTokens
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.integrations.wechat import WechatConfig, WechatMiniProgram
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient
from tests.fakes.wechat import FakeWechatServer

LOGIN = """mutation($c: String!, $p: String) { loginWithWechat(code: $c, phoneCode: $p) {
  token refreshToken member { id phone } errors { code field message } } }"""
BIND = """mutation($c: String!) { bindWechatPhone(input: {code: $c}) {
  member { id phone } errors { code field } } }"""


def new_phone() -> str:
    return f"139{uuid.uuid4().int % 100_000_000:08d}"


def new_appid() -> str:
    return f"wx{uuid.uuid4().hex[:16]}"


@pytest.fixture
def fake() -> Iterator[FakeWechatServer]:
    """A fake of its own (its own AppID, so its own token row) for each test."""
    server = FakeWechatServer(appid=new_appid()).start()
    yield server
    server.stop()


def wechat_settings(settings: Settings, fake: FakeWechatServer) -> Settings:
    return settings.model_copy(
        update={
            "wechat_appid": fake.appid,
            "wechat_secret": SecretStr(fake.secret),
            "wechat_api_base": fake.url,
            "wechat_timeout_seconds": 1.0,
        }
    )


@pytest.fixture
async def client(
    settings: Settings, engine: AsyncEngine, fake: FakeWechatServer
) -> AsyncIterator[GraphQLClient]:
    app = create_app(wechat_settings(settings, fake), engine)
    wechat = app.state.services.wechat
    assert isinstance(wechat, WechatMiniProgram)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield GraphQLClient(http)
    await wechat.aclose()


async def login(client: GraphQLClient, code: str, phone_code: str | None = None) -> dict[str, Any]:
    body = await client.execute(LOGIN, {"c": code, "p": phone_code})
    payload: dict[str, Any] = body["data"]["loginWithWechat"]
    return payload


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        n_members = await conn.scalar(sa.select(sa.func.count()).select_from(members))
        n_tokens = await conn.scalar(sa.select(sa.func.count()).select_from(refresh_tokens))
    return int(n_members or 0), int(n_tokens or 0)


async def member_row(engine: AsyncEngine, openid: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(sa.select(members).where(members.c.wechat_openid == openid))
        ).one()


async def test_a_login_code_signs_in_one_member_and_keeps_the_unionid(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    openid, unionid = f"o-{uuid.uuid4().hex}", f"u-{uuid.uuid4().hex}"
    fake.add_login("code-1", openid, unionid)
    fake.add_login("code-2", openid, unionid)
    raw = await client.http.post("/graphql", json={"query": LOGIN, "variables": {"c": "code-1"}})
    first = raw.json()["data"]["loginWithWechat"]
    assert first["errors"] == [] and first["token"] and first["refreshToken"]
    assert "session_key" not in raw.text and "c2Vzc2lvbi1rZXktZmFrZQ" not in raw.text
    again = await login(client, "code-2")
    assert again["errors"] == [] and again["member"]["id"] == first["member"]["id"]
    row = await member_row(engine, openid)
    assert row.wechat_unionid == unionid and row.phone is None
    sent = [params for api, params in fake.calls if api == "jscode2session"]
    assert sent[0]["appid"] == fake.appid and sent[0]["grant_type"] == "authorization_code"
    me = await client.execute(
        "{ viewer { member { id } } }", headers={"Authorization": f"Bearer {first['token']}"}
    )
    assert me["data"]["viewer"]["member"]["id"] == first["member"]["id"]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ({"errcode": 40029}, "INVALID_CODE"),
        ({"errcode": 40163}, "INVALID_CODE"),
        ({"errcode": 45011}, "RATE_LIMITED"),
        ({"errcode": -1}, "PROVIDER_UNAVAILABLE"),
        ({"errcode": 40125}, "PROVIDER_UNAVAILABLE"),  # a wrong AppSecret: the operator's
        ({"status": 502}, "PROVIDER_UNAVAILABLE"),
        ({"hang": 3.0}, "PROVIDER_UNAVAILABLE"),  # longer than the 1 s timeout
    ],
    ids=["invalid", "used", "rate-limited", "busy", "bad-secret", "5xx", "timeout"],
)
async def test_wechat_refusals_are_user_errors_and_write_nothing(
    client: GraphQLClient,
    fake: FakeWechatServer,
    engine: AsyncEngine,
    failure: dict[str, Any],
    expected: str,
) -> None:
    fake.add_login("good-code", f"o-{uuid.uuid4().hex}")
    fake.fail("jscode2session", **failure)
    before = await counts(engine)
    payload = await login(client, "good-code")
    assert payload["token"] is None and payload["member"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(expected, ["code"])]
    assert payload["errors"][0]["message"]
    assert await counts(engine) == before


async def test_a_used_or_unknown_code_is_invalid(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    fake.add_login("once", f"o-{uuid.uuid4().hex}")
    assert (await login(client, "once"))["errors"] == []
    before = await counts(engine)
    for code in ("once", "never-issued"):
        errors = (await login(client, code))["errors"]
        assert [e["code"] for e in errors] == ["INVALID_CODE"]
    assert await counts(engine) == before


async def test_a_phone_code_signs_in_the_member_who_used_sms_with_that_number(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    phone = new_phone()
    async with SqlUnitOfWork(engine) as uow:
        sms_member = await uow.members.add(phone=phone, openid=None, nickname="短信会员")
        await uow.commit()
    openid = f"o-{uuid.uuid4().hex}"
    fake.add_login("login", openid, "union-x")
    fake.add_phone_code("phone", phone)
    payload = await login(client, "login", "phone")
    assert payload["errors"] == []
    row = await member_row(engine, openid)
    assert row.id == sms_member.id and row.phone == phone and row.wechat_unionid == "union-x"
    assert payload["member"]["phone"] == f"{phone[:3]}****{phone[-4:]}"


async def test_a_new_wechat_member_gets_the_verified_number(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    phone, openid = new_phone(), f"o-{uuid.uuid4().hex}"
    fake.add_login("login", openid)
    fake.add_phone_code("phone", phone)
    assert (await login(client, "login", "phone"))["errors"] == []
    assert (await member_row(engine, openid)).phone == phone


async def test_a_number_of_another_wechat_member_is_refused_on_login(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    phone = new_phone()
    fake.add_login("first", f"o-{uuid.uuid4().hex}")
    fake.add_phone_code("p1", phone)
    assert (await login(client, "first", "p1"))["errors"] == []
    fake.add_login("second", f"o-{uuid.uuid4().hex}")
    fake.add_phone_code("p2", phone)
    before = await counts(engine)
    payload = await login(client, "second", "p2")
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("DUPLICATE", ["phoneCode"])]
    assert await counts(engine) == before


async def test_a_signed_in_member_binds_the_number_wechat_verified(
    client: GraphQLClient, fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    openid, phone = f"o-{uuid.uuid4().hex}", new_phone()
    fake.add_login("login", openid)
    token = (await login(client, "login"))["token"]
    me = {"Authorization": f"Bearer {token}"}

    async def bind(code: str) -> dict[str, Any]:
        payload: dict[str, Any] = (await client.execute(BIND, {"c": code}, me))["data"][
            "bindWechatPhone"
        ]
        return payload

    # A code made for another mini-program, an unknown code, WeChat busy: nothing bound.
    fake.add_phone_code("foreign", phone, appid="wx-someone-else")
    fake.add_phone_code("busy", phone)
    for code, expected in [
        ("foreign", "INVALID_CODE"),
        ("unknown", "INVALID_CODE"),
        ("busy", "PROVIDER_UNAVAILABLE"),
    ]:
        if code == "busy":
            fake.fail("getuserphonenumber", errcode=-1)
        payload = await bind(code)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(expected, ["code"])]
        assert (await member_row(engine, openid)).phone is None
    # A number another member holds is refused, as bindPhone refuses it.
    taken = new_phone()
    async with SqlUnitOfWork(engine) as uow:
        await uow.members.add(phone=taken, openid=None, nickname="别人")
        await uow.commit()
    fake.add_phone_code("taken", taken)
    assert [e["code"] for e in (await bind("taken"))["errors"]] == ["DUPLICATE"]
    fake.add_phone_code("mine", phone)
    bound = await bind("mine")
    assert bound["errors"] == [] and bound["member"]["phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert (await member_row(engine, openid)).phone == phone
    anonymous = await client.execute(BIND, {"c": "mine"})
    assert [e["code"] for e in anonymous["data"]["bindWechatPhone"]["errors"]] == [
        "UNAUTHENTICATED"
    ]


# --- the access token ---------------------------------------------------------------------


def adapter(fake: FakeWechatServer, engine: AsyncEngine) -> WechatMiniProgram:
    config = WechatConfig(fake.appid, fake.secret, base_url=fake.url, timeout_seconds=2.0)
    return WechatMiniProgram(config, SqlWechatTokens(engine))


def phone_codes(fake: FakeWechatServer, n: int) -> list[str]:
    codes = [f"pc-{uuid.uuid4().hex}" for _ in range(n)]
    for code in codes:
        fake.add_phone_code(code, new_phone())
    return codes


async def test_concurrent_phone_requests_refresh_the_token_once(
    fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    wechat = adapter(fake, engine)
    try:
        codes = phone_codes(fake, 20)
        numbers = await asyncio.gather(*(wechat.phone_for(code) for code in codes))
    finally:
        await wechat.aclose()
    assert len(set(numbers)) == 20 and all(n.startswith("+861") for n in numbers)
    assert fake.token_requests == 1
    assert fake.calls_of("getuserphonenumber") == 20


async def test_two_app_instances_on_one_database_refresh_the_token_once(
    fake: FakeWechatServer, settings: Settings
) -> None:
    """Each instance has its own engine, lock and cache, as two processes would."""
    engines = [create_engine(settings), create_engine(settings)]
    instances = [adapter(fake, e) for e in engines]
    try:
        codes = phone_codes(fake, 16)
        await asyncio.gather(*(instances[i % 2].phone_for(code) for i, code in enumerate(codes)))
        assert fake.token_requests == 1
        async with engines[0].connect() as conn:
            row = (
                await conn.execute(
                    sa.select(wechat_access_tokens).where(
                        wechat_access_tokens.c.appid == fake.appid
                    )
                )
            ).one()
        assert row.token.startswith("fake-token-") and row.refresh_until is None
    finally:
        for instance in instances:
            await instance.aclose()
        for e in engines:
            await e.dispose()


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_a_refused_token_is_refreshed_once_and_the_call_retried(
    fake: FakeWechatServer, settings: Settings, how: str
) -> None:
    engines = [create_engine(settings), create_engine(settings)]
    instances = [adapter(fake, e) for e in engines]
    try:
        await instances[0].phone_for(phone_codes(fake, 1)[0])
        assert fake.token_requests == 1
        fake.revoke_tokens() if how == "revoked" else fake.expire_tokens()
        codes = phone_codes(fake, 10)
        await asyncio.gather(*(instances[i % 2].phone_for(code) for i, code in enumerate(codes)))
    finally:
        for instance in instances:
            await instance.aclose()
        for e in engines:
            await e.dispose()
    assert fake.token_requests == 2  # one refresh for all ten, across both instances
    stable = [params for api, params in fake.calls if api == "stable_token"]
    assert [p["force_refresh"] for p in stable] == [False, True]
    assert fake.calls_of("getuserphonenumber") == 1 + 10 + 10  # each refused call retried


async def test_a_failed_refresh_lets_the_next_request_try_again(
    fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    wechat = adapter(fake, engine)
    try:
        fake.fail("stable_token", errcode=-1)
        with pytest.raises(DomainError) as refused:
            await wechat.phone_for(phone_codes(fake, 1)[0])
        assert refused.value.code is ErrorCode.PROVIDER_UNAVAILABLE
        assert (await wechat.phone_for(phone_codes(fake, 1)[0])).startswith("+861")
    finally:
        await wechat.aclose()
    assert fake.token_requests == 2


async def test_a_token_wechat_keeps_refusing_is_not_retried_forever(
    fake: FakeWechatServer, engine: AsyncEngine
) -> None:
    wechat = adapter(fake, engine)
    try:
        fake.fail("getuserphonenumber", errcode=40001, times=3)
        with pytest.raises(DomainError) as refused:
            await wechat.phone_for(phone_codes(fake, 1)[0])
    finally:
        await wechat.aclose()
    assert refused.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert fake.calls_of("getuserphonenumber") == 2 and fake.token_requests == 2
