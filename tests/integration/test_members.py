"""Member sign-in, sessions, profile, addresses and check-in, on the run's database."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Context
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient

# The contract documents, verbatim (see tests/e2e for the full Wallet flow).
REQUEST_CODE = (
    "mutation RequestCode($phone: String!) "
    "{ requestLoginCode(phone: $phone) { errors { code message } } }"
)
LOGIN = """
mutation Login($phone: String!, $code: String!) {
  login(phone: $phone, code: $code) { token refreshToken member { id tier } errors { code message } }
}
"""  # noqa: E501
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
    token refreshToken member { id } errors { code } } }"""
VIEWER = "{ viewer { member { id nickname phone tier points } staff { role } } }"

_phones = itertools.count(13900000000)


def new_phone() -> str:
    return str(next(_phones) + datetime.now(UTC).microsecond * 1000 % 99_000_000)


class CapturedSms:
    """Test adapter: keeps the codes instead of texting them."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def send_login_code(self, phone: str, code: str) -> None:
        self.codes[phone] = code


@pytest.fixture
def sms() -> CapturedSms:
    return CapturedSms()


@pytest.fixture
async def client(
    settings: Settings, engine: AsyncEngine, sms: CapturedSms
) -> AsyncIterator[GraphQLClient]:
    services = replace(default_services(settings), sms=sms)
    app = create_app(settings, engine, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield GraphQLClient(c)


async def sign_in(client: GraphQLClient, sms: CapturedSms, phone: str) -> dict[str, Any]:
    asked = await client.execute(REQUEST_CODE, {"phone": phone})
    assert asked["data"]["requestLoginCode"]["errors"] == []
    body = await client.execute(LOGIN, {"phone": phone, "code": sms.codes[phone]})
    payload: dict[str, Any] = body["data"]["login"]
    assert payload["errors"] == [], payload
    return payload


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_new_number_signs_in_with_its_code_and_becomes_a_member(
    client: GraphQLClient, sms: CapturedSms
) -> None:
    phone = new_phone()
    session = await sign_in(client, sms, phone)
    assert re.fullmatch(r"\d{6}", sms.codes[phone])
    assert session["member"]["tier"] == "NORMAL"
    me = (await client.execute(VIEWER, headers=bearer(session["token"])))["data"]["viewer"]
    assert me["staff"] is None
    assert me["member"] == {
        "id": session["member"]["id"],
        "nickname": f"味友{phone[-4:]}",
        "phone": f"{phone[:3]}****{phone[-4:]}",
        "tier": "NORMAL",
        "points": 0,
    }
    again = await sign_in(client, sms, phone) if False else None
    assert again is None


async def test_codes_are_limited_per_phone(client: GraphQLClient) -> None:
    phone = new_phone()
    first = await client.execute(REQUEST_CODE, {"phone": phone})
    second = await client.execute(REQUEST_CODE, {"phone": phone})
    assert first["data"]["requestLoginCode"]["errors"] == []
    assert second["data"]["requestLoginCode"]["errors"][0]["code"] == "RATE_LIMITED"


async def test_a_bad_number_is_refused(client: GraphQLClient) -> None:
    body = await client.execute(REQUEST_CODE, {"phone": "12345"})
    assert body["data"]["requestLoginCode"]["errors"] == [
        {"code": "INVALID_PHONE", "message": "手机号格式不正确"}
    ]


async def test_five_wrong_codes_lock_the_code(client: GraphQLClient, sms: CapturedSms) -> None:
    phone = new_phone()
    await client.execute(REQUEST_CODE, {"phone": phone})
    right = sms.codes[phone]
    wrong = "000000" if right != "000000" else "111111"
    codes = []
    for _ in range(5):
        body = await client.execute(LOGIN, {"phone": phone, "code": wrong})
        codes.append(body["data"]["login"]["errors"][0]["code"])
    assert codes == ["INVALID_CODE"] * 5
    locked = await client.execute(LOGIN, {"phone": phone, "code": right})
    assert locked["data"]["login"]["errors"][0]["code"] == "CODE_LOCKED"
    assert locked["data"]["login"]["token"] is None


async def test_codes_expire_after_five_minutes(
    client: GraphQLClient, sms: CapturedSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = new_phone()
    await client.execute(REQUEST_CODE, {"phone": phone})
    later = datetime.now(UTC) + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(Context, "now", lambda self: later)
    body = await client.execute(LOGIN, {"phone": phone, "code": sms.codes[phone]})
    assert body["data"]["login"]["errors"][0]["code"] == "CODE_EXPIRED"


async def test_a_code_works_once(client: GraphQLClient, sms: CapturedSms) -> None:
    phone = new_phone()
    await sign_in(client, sms, phone)
    replay = await client.execute(LOGIN, {"phone": phone, "code": sms.codes[phone]})
    assert replay["data"]["login"]["errors"][0]["code"] == "INVALID_CODE"


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(
    client: GraphQLClient, sms: CapturedSms
) -> None:
    session = await sign_in(client, sms, new_phone())
    first = (await client.execute(REFRESH, {"t": session["refreshToken"]}))["data"]["refreshToken"]
    assert first["errors"] == [] and first["refreshToken"] != session["refreshToken"]
    assert first["member"]["id"] == session["member"]["id"]
    # The old token again: someone holds a copy, so the whole family is revoked.
    stolen = (await client.execute(REFRESH, {"t": session["refreshToken"]}))["data"]
    assert stolen["refreshToken"]["errors"] == [{"code": "INVALID_TOKEN"}]
    after = (await client.execute(REFRESH, {"t": first["refreshToken"]}))["data"]
    assert after["refreshToken"]["errors"] == [{"code": "INVALID_TOKEN"}]


async def test_logout_revokes_the_refresh_token(client: GraphQLClient, sms: CapturedSms) -> None:
    session = await sign_in(client, sms, new_phone())
    out = await client.execute(
        "mutation($t: String!) { logout(refreshToken: $t) { errors { code } } }",
        {"t": session["refreshToken"]},
    )
    assert out["data"]["logout"]["errors"] == []
    body = await client.execute(REFRESH, {"t": session["refreshToken"]})
    assert body["data"]["refreshToken"]["errors"] == [{"code": "INVALID_TOKEN"}]


async def test_wechat_sign_in_maps_a_code_to_one_member(client: GraphQLClient) -> None:
    query = """mutation($c: String!) { loginWithWechat(code: $c) {
        token member { id nickname } errors { code } } }"""
    first = (await client.execute(query, {"c": "wx-code-abc"}))["data"]["loginWithWechat"]
    again = (await client.execute(query, {"c": "wx-code-abc"}))["data"]["loginWithWechat"]
    other = (await client.execute(query, {"c": "wx-code-xyz"}))["data"]["loginWithWechat"]
    assert first["errors"] == [] and first["token"]
    assert first["member"]["id"] == again["member"]["id"] != other["member"]["id"]


async def test_profile_and_addresses_belong_to_their_member(
    client: GraphQLClient, sms: CapturedSms
) -> None:
    mine = bearer((await sign_in(client, sms, new_phone()))["token"])
    theirs = bearer((await sign_in(client, sms, new_phone()))["token"])
    profile = await client.execute(
        """mutation { updateProfile(input: {nickname: "爱吃排骨", birthday: "1990-05-20"}) {
            member { nickname birthday } errors { code } } }""",
        headers=mine,
    )
    assert profile["data"]["updateProfile"] == {
        "member": {"nickname": "爱吃排骨", "birthday": "1990-05-20"},
        "errors": [],
    }
    save = """mutation($i: SaveAddressInput!) { saveAddress(input: $i) {
        address { id isDefault address } errors { code field } } }"""
    address = {
        "contactName": "张三",
        "contactPhone": "13812345678",
        "address": "深圳市福田区福华三路88号",
        "location": {"lat": 22.5367, "lng": 114.0553},
    }
    added = (await client.execute(save, {"i": address}, mine))["data"]["saveAddress"]
    assert added["errors"] == [] and added["address"]["isDefault"] is True
    bad = (await client.execute(save, {"i": {**address, "contactPhone": "1"}}, mine))["data"]
    assert bad["saveAddress"]["errors"] == [{"code": "INVALID_PHONE", "field": ["contactPhone"]}]
    delete = (
        """mutation($i: DeleteAddressInput!) { deleteAddress(input: $i) { errors { code } } }"""
    )
    refused = await client.execute(delete, {"i": {"id": added["address"]["id"]}}, theirs)
    assert refused["data"]["deleteAddress"]["errors"] == [{"code": "NOT_FOUND"}]
    anonymous = await client.execute(save, {"i": address})
    assert anonymous["data"]["saveAddress"]["errors"][0]["code"] == "UNAUTHENTICATED"
    listed = await client.execute("{ viewer { member { addresses { id } } } }", headers=mine)
    assert listed["data"]["viewer"]["member"]["addresses"] == [{"id": added["address"]["id"]}]


async def test_daily_check_in_builds_a_streak_and_points(
    client: GraphQLClient, sms: CapturedSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = bearer((await sign_in(client, sms, new_phone()))["token"])
    check_in = "mutation { checkIn { streak pointsEarned balance errors { code } } }"
    start = datetime.now(UTC)
    results = []
    for day in range(3):
        monkeypatch.setattr(Context, "now", lambda self, d=day: start + timedelta(days=d))
        results.append((await client.execute(check_in, headers=me))["data"]["checkIn"])
    twice = (await client.execute(check_in, headers=me))["data"]["checkIn"]
    assert [(r["streak"], r["pointsEarned"], r["balance"]) for r in results] == [
        (1, 5, 5),
        (2, 5, 10),
        (3, 15, 25),
    ]
    assert twice["errors"] == [{"code": "ALREADY_CHECKED_IN"}]
    ledger = await client.execute(
        """{ viewer { member { points
            pointsLedger(first: 10) { edges { node { kind delta } } } } } }""",
        headers=me,
    )
    member = ledger["data"]["viewer"]["member"]
    deltas = [e["node"]["delta"] for e in member["pointsLedger"]["edges"]]
    assert sum(deltas) == member["points"] == 25


async def test_codes_are_limited_per_client_address(
    settings: Settings, engine: AsyncEngine, sms: CapturedSms
) -> None:
    strict = settings.model_copy(update={"login_codes_per_ip_per_hour": 2})
    app = create_app(strict, engine, replace(default_services(strict), sms=sms))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        client = GraphQLClient(c)
        answers = [
            (await client.execute(REQUEST_CODE, {"phone": new_phone()}))["data"]["requestLoginCode"]
            for _ in range(3)
        ]
    assert [a["errors"][0]["code"] if a["errors"] else None for a in answers][-1] == "RATE_LIMITED"


async def test_a_wechat_member_binds_a_phone_with_a_code(
    client: GraphQLClient, sms: CapturedSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    wechat = """mutation($c: String!) { loginWithWechat(code: $c) { token errors { code } } }"""
    token = (await client.execute(wechat, {"c": f"wx-{new_phone()}"}))["data"]["loginWithWechat"]
    me = bearer(token["token"])
    phone = new_phone()
    await client.execute(REQUEST_CODE, {"phone": phone})
    bind = """mutation($p: String!, $c: String!) { bindPhone(phone: $p, code: $c) {
        member { phone } errors { code } } }"""
    bound = await client.execute(bind, {"p": phone, "c": sms.codes[phone]}, me)
    assert bound["data"]["bindPhone"] == {
        "member": {"phone": f"{phone[:3]}****{phone[-4:]}"},
        "errors": [],
    }
    # A minute later the number signs in to the same account.
    later = datetime.now(UTC) + timedelta(seconds=61)
    monkeypatch.setattr(Context, "now", lambda self: later)
    session = await sign_in(client, sms, phone)
    me_again = await client.execute(VIEWER, headers=bearer(session["token"]))
    mine = await client.execute(VIEWER, headers=me)
    assert me_again["data"]["viewer"]["member"]["id"] == mine["data"]["viewer"]["member"]["id"]
