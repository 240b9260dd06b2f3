"""A visitor's behaviour events become the member's as they sign in with the device id they
were tracked by (SMS or WeChat), in the sign-in's transaction: the home page's 猜你喜欢
right after sign-in already follows what they did signed out."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.db.tables import behaviour_events, members, products
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient
from tests.integration.test_members import REQUEST_CODE, CapturedSms, bearer, new_phone

STORE_1 = encode_id("Store", 1)

# The contract documents of clients/miniprogram/auth.graphql, with deviceId.
SESSION = "token member { id } errors { code field }"
LOGIN_SMS = f"""mutation($phone: String!, $code: String!, $deviceId: String) {{
  login(phone: $phone, code: $code, deviceId: $deviceId) {{ {SESSION} }} }}"""
LOGIN_WECHAT = f"""mutation($code: String!, $deviceId: String) {{
  loginWithWechat(code: $code, deviceId: $deviceId) {{ {SESSION} }} }}"""
TRACK = """mutation($input: TrackEventsInput!) {
  trackEvents(input: $input) { accepted merged errors { code field } } }"""
HOME = """query($store: ID, $device: String) {
  recommendations(scene: HOME, storeId: $store, deviceId: $device, first: 10) {
    product { name } reasonKind } }"""
MINE = "{ myBehaviour(first: 100) { clientEventId kind product { name } } }"
POPULARITY = {"POPULAR_NOW", "POPULAR"}


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


async def _product(engine: AsyncEngine, name: str) -> str:
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(products.c.id).where(products.c.name == name))
    assert found is not None
    return encode_id("Product", int(found))


def _event(kind: str, product: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "clientEventId": event_id or f"ev-{uuid.uuid4().hex}",
        "kind": kind,
        "productId": product,
    }


async def _browse_soups(client: GraphQLClient, engine: AsyncEngine, device: str) -> list[str]:
    """A visitor looks at soups signed out; the ids of what they did."""
    soup = await _product(engine, "花胶炖鸡汤")
    events = [
        _event("VIEW_PRODUCT", soup),
        _event("FAVOURITE", soup),
        _event("ADD_TO_CART", soup),
    ]
    body = await client.execute(TRACK, {"input": {"deviceId": device, "events": events}})
    assert body["data"]["trackEvents"]["accepted"] == 3, body
    return [e["clientEventId"] for e in events]


async def _device_rows(engine: AsyncEngine, device: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).where(behaviour_events.c.actor == f"d:{device}")
        )
    return int(found or 0)


def _dev_openid(code: str) -> str:
    """The openid the development WeChat adapter gives a wx.login code."""
    return "dev-" + hashlib.sha256(code.encode()).hexdigest()[:24]


async def _sms_code(client: GraphQLClient, sms: CapturedSms, phone: str) -> str:
    asked = await client.execute(REQUEST_CODE, {"phone": phone})
    assert asked["data"]["requestLoginCode"]["errors"] == []
    return sms.codes[phone]


async def test_signing_in_by_sms_with_the_device_id_takes_the_visitors_events_at_once(
    client: GraphQLClient, engine: AsyncEngine, sms: CapturedSms
) -> None:
    device = f"device-{uuid.uuid4().hex}"
    browsed = await _browse_soups(client, engine, device)
    as_visitor = await client.execute(HOME, {"store": STORE_1, "device": device})
    assert {r["reasonKind"] for r in as_visitor["data"]["recommendations"]} - POPULARITY
    phone = new_phone()
    code = await _sms_code(client, sms, phone)
    body = await client.execute(LOGIN_SMS, {"phone": phone, "code": code, "deviceId": device})
    session = body["data"]["login"]
    assert session["errors"] == [] and session["token"], body
    member = bearer(session["token"])
    # No trackEvents call yet: the events are the member's from the sign-in itself.
    mine = await client.execute(MINE, headers=member)
    assert sorted(e["clientEventId"] for e in mine["data"]["myBehaviour"]) == sorted(browsed)
    assert await _device_rows(engine, device) == 0
    home = await client.execute(HOME, {"store": STORE_1}, member)
    shown = home["data"]["recommendations"]
    assert shown and {r["reasonKind"] for r in shown} - POPULARITY, shown
    # The device is a visitor again afterwards, with nothing of the member's.
    after = await client.execute(HOME, {"store": STORE_1, "device": device})
    assert {r["reasonKind"] for r in after["data"]["recommendations"]} <= POPULARITY
    # trackEvents still merges whatever the device reported since.
    soup = await _product(engine, "花胶炖鸡汤")
    await client.execute(
        TRACK, {"input": {"deviceId": device, "events": [_event("VIEW_PRODUCT", soup)]}}
    )
    later = await client.execute(
        TRACK, {"input": {"deviceId": device, "events": [_event("FAVOURITE", soup)]}}, member
    )
    assert later["data"]["trackEvents"]["merged"] == 1


async def test_signing_in_with_wechat_merges_and_an_event_sent_both_ways_is_kept_once(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    wx_code = f"wx-{uuid.uuid4().hex}"
    first = (await client.execute(LOGIN_WECHAT, {"code": wx_code}))["data"]["loginWithWechat"]
    assert first["errors"] == []
    soup = await _product(engine, "花胶炖鸡汤")
    shared = f"ev-{uuid.uuid4().hex}"
    await client.execute(
        TRACK,
        {"input": {"events": [_event("VIEW_PRODUCT", soup, shared)]}},
        bearer(first["token"]),
    )
    device = f"device-{uuid.uuid4().hex}"
    both = [_event("VIEW_PRODUCT", soup, shared), _event("ADD_TO_CART", soup)]
    await client.execute(TRACK, {"input": {"deviceId": device, "events": both}})
    again = await client.execute(LOGIN_WECHAT, {"code": wx_code, "deviceId": device})
    session = again["data"]["loginWithWechat"]
    assert session["errors"] == [] and session["member"]["id"] == first["member"]["id"]
    mine = await client.execute(MINE, headers=bearer(session["token"]))
    ids = [e["clientEventId"] for e in mine["data"]["myBehaviour"]]
    assert sorted(ids) == sorted({shared, both[1]["clientEventId"]})
    assert await _device_rows(engine, device) == 0


async def test_a_bad_device_id_is_refused_before_anything_changes(
    client: GraphQLClient, engine: AsyncEngine, sms: CapturedSms
) -> None:
    phone = new_phone()
    code = await _sms_code(client, sms, phone)
    for bad in ("x", "a" * 65, "bad device!", "设备-12345678"):
        body = await client.execute(LOGIN_SMS, {"phone": phone, "code": code, "deviceId": bad})
        assert body["data"]["login"] == {
            "token": None,
            "member": None,
            "errors": [{"code": "INVALID_INPUT", "field": ["deviceId"]}],
        }, bad
    # The code was neither used nor counted as a wrong try: it still signs in.
    body = await client.execute(LOGIN_SMS, {"phone": phone, "code": code})
    assert body["data"]["login"]["errors"] == [] and body["data"]["login"]["token"]
    wx_code = f"wx-{uuid.uuid4().hex}"
    refused = await client.execute(LOGIN_WECHAT, {"code": wx_code, "deviceId": "x"})
    assert refused["data"]["loginWithWechat"]["errors"] == [
        {"code": "INVALID_INPUT", "field": ["deviceId"]}
    ]
    async with engine.connect() as conn:
        made = await conn.scalar(
            sa.select(sa.func.count()).where(members.c.wechat_openid == _dev_openid(wx_code))
        )
    assert made == 0


async def test_a_refused_sign_in_leaves_the_visitors_events_on_the_device(
    client: GraphQLClient, engine: AsyncEngine, sms: CapturedSms
) -> None:
    device = f"device-{uuid.uuid4().hex}"
    await _browse_soups(client, engine, device)
    phone = new_phone()
    code = await _sms_code(client, sms, phone)
    wrong = "000000" if code != "000000" else "111111"
    body = await client.execute(LOGIN_SMS, {"phone": phone, "code": wrong, "deviceId": device})
    assert body["data"]["login"]["errors"][0]["code"] == "INVALID_CODE"
    assert await _device_rows(engine, device) == 3


async def test_sign_ins_and_batches_racing_for_one_device_move_each_event_once(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    wx_code = f"wx-{uuid.uuid4().hex}"
    first = (await client.execute(LOGIN_WECHAT, {"code": wx_code}))["data"]["loginWithWechat"]
    member = bearer(first["token"])
    device = f"device-{uuid.uuid4().hex}"
    browsed = await _browse_soups(client, engine, device)
    soup = await _product(engine, "花胶炖鸡汤")
    late = _event("FAVOURITE", soup)
    answers = await asyncio.gather(
        client.execute(LOGIN_WECHAT, {"code": wx_code, "deviceId": device}),
        client.execute(LOGIN_WECHAT, {"code": wx_code, "deviceId": device}),
        client.execute(TRACK, {"input": {"deviceId": device, "events": [late]}}, member),
    )
    assert [a["data"]["loginWithWechat"]["errors"] for a in answers[:2]] == [[], []]
    tracked = answers[2]["data"]["trackEvents"]
    assert tracked["errors"] == [] and tracked["accepted"] == 1
    mine = await client.execute(MINE, headers=member)
    ids = [e["clientEventId"] for e in mine["data"]["myBehaviour"]]
    assert sorted(ids) == sorted([*browsed, late["clientEventId"]])
    assert await _device_rows(engine, device) == 0
