"""The mini-program's 猜你喜欢 and behaviour documents (clients/miniprogram/recommendations
.graphql, track-events.graphql), sent verbatim by operation name to a real `dinegraph serve`
on the demo chain: a demo member's home page (on a rainy day too), a product page, the cart,
the page after an order, events recorded once, a visitor's events taken over as they sign
in (auth.graphql's LoginWithWechat with deviceId)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import members
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings
from tests.e2e.conftest import run_cli, running_server
from tests.e2e.test_miniprogram_documents import MiniProgram
from tests.shop import next_noon


@pytest.fixture(scope="module")
def noon_server(settings: Settings) -> Iterator[str]:
    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        yield url


async def _demo_member_token(settings: Settings, engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        member_id = await conn.scalar(
            sa.select(members.c.id).where(members.c.wechat_openid == "demo-member-1")
        )
    assert member_id is not None
    return issue_member_token(settings, member_id)


async def _on_sale(app: MiniProgram, store_id: str) -> dict[str, str]:
    menu = (await app.send("StoreMenu", {"storeId": store_id, "channel": "PICKUP"}))["menu"]
    return {
        p["id"]: p["name"]
        for c in menu["categories"]
        for p in c["products"]
        if any(not s["stock"]["soldOut"] for s in p["skus"])
    }


async def test_a_demo_members_home_page_a_product_page_the_cart_and_after_an_order(
    noon_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=noon_server, timeout=30) as client:
        app = MiniProgram(client)
        stores = await app.send("NearbyStores", {"lat": 22.5367, "lng": 114.0553, "first": 1})
        store_id = stores["stores"]["edges"][0]["node"]["id"]
        on_sale = await _on_sale(app, store_id)
        app.token = await _demo_member_token(settings, engine)
        home = (await app.send("Recommendations", {"scene": "HOME", "storeId": store_id}))[
            "recommendations"
        ]
        assert len(home) == 10
        assert all(r["reason"] and r["product"]["id"] in on_sale for r in home)
        personal = {"ORDER_AGAIN", "TASTE", "ALSO_LIKED", "BOUGHT_TOGETHER"}
        assert {r["reasonKind"] for r in home} & personal
        ribs = next(pid for pid, name in on_sale.items() if name == "鲜做糖醋排骨")
        page = (
            await app.send(
                "Recommendations", {"scene": "PRODUCT", "storeId": store_id, "productId": ribs}
            )
        )["recommendations"]
        together = [r for r in page if r["reasonKind"] == "BOUGHT_TOGETHER"]
        assert together and together[0]["reason"] == "常与鲜做糖醋排骨一起购买"
        assert ribs not in {r["product"]["id"] for r in page}
        cart = (
            await app.send(
                "Recommendations", {"scene": "CART", "storeId": store_id, "cart": [ribs]}
            )
        )["recommendations"]
        assert cart and all(r["reason"] and r["product"]["id"] in on_sale for r in cart)
        assert ribs not in {r["product"]["id"] for r in cart}
        rainy = (
            await app.send(
                "Recommendations",
                {"scene": "HOME", "storeId": store_id, "context": {"weather": "RAIN"}},
            )
        )["recommendations"]
        assert "雨天热汤" in {r["reason"] for r in rainy}
        done = (await app.send("Recommendations", {"scene": "ORDER_DONE", "storeId": store_id}))[
            "recommendations"
        ]
        assert done and all(r["reason"] and r["product"]["id"] in on_sale for r in done)


async def test_events_are_recorded_once_and_can_be_cleared(
    noon_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=noon_server, timeout=30) as client:
        app = MiniProgram(client)
        stores = await app.send("NearbyStores", {"lat": 22.5367, "lng": 114.0553, "first": 1})
        store_id = stores["stores"]["edges"][0]["node"]["id"]
        product = next(iter(await _on_sale(app, store_id)))
        device = f"wx-device-{uuid.uuid4().hex}"
        events: list[dict[str, Any]] = [
            {
                "clientEventId": f"e-{uuid.uuid4().hex}",
                "kind": "VIEW_PRODUCT",
                "productId": product,
                "storeId": store_id,
            },
            {"clientEventId": f"e-{uuid.uuid4().hex}", "kind": "SEARCH", "query": "酸菜鱼"},
        ]
        sent = {"input": {"deviceId": device, "events": events}}
        first = (await app.send("TrackEvents", sent))["trackEvents"]
        assert (first["accepted"], first["duplicates"], first["errors"]) == (2, 0, [])
        again = (await app.send("TrackEvents", sent))["trackEvents"]
        assert (again["accepted"], again["duplicates"]) == (0, 2)
        anonymous = (
            await app.send(
                "Recommendations", {"scene": "HOME", "storeId": store_id, "deviceId": device}
            )
        )["recommendations"]
        assert anonymous and all(r["reason"] for r in anonymous)

        async with engine.begin() as conn:
            member_id = await conn.scalar(
                members.insert()
                .values(wechat_openid=f"e2e-{uuid.uuid4().hex}", nickname="新会员", tier="NORMAL")
                .returning(members.c.id)
            )
        assert member_id is not None
        app.token = issue_member_token(settings, member_id)
        like = {"clientEventId": f"e-{uuid.uuid4().hex}", "kind": "FAVOURITE", "productId": product}
        signed_in = (
            await app.send("TrackEvents", {"input": {"deviceId": device, "events": [like]}})
        )["trackEvents"]
        assert (signed_in["accepted"], signed_in["merged"]) == (1, 2)
        mine = (await app.send("MyBehaviour", {"first": 10}))["myBehaviour"]
        assert sorted(e["kind"] for e in mine) == ["FAVOURITE", "SEARCH", "VIEW_PRODUCT"]
        cleared = (await app.send("ClearMyBehaviour"))["clearMyBehaviour"]
        assert cleared == {"cleared": 3, "errors": []}
        assert (await app.send("MyBehaviour"))["myBehaviour"] == []


async def test_a_visitor_signing_in_with_the_device_id_sees_their_own_home_page_at_once(
    noon_server: str,
) -> None:
    async with httpx.AsyncClient(base_url=noon_server, timeout=30) as client:
        app = MiniProgram(client)
        stores = await app.send("NearbyStores", {"lat": 22.5367, "lng": 114.0553, "first": 1})
        store_id = stores["stores"]["edges"][0]["node"]["id"]
        on_sale = await _on_sale(app, store_id)
        soups = [pid for pid, name in on_sale.items() if "汤" in name][:2]
        assert soups, on_sale
        device = f"wx-device-{uuid.uuid4().hex}"
        events = [
            {"clientEventId": f"e-{uuid.uuid4().hex}", "kind": kind, "productId": soup}
            for soup in soups
            for kind in ("VIEW_PRODUCT", "FAVOURITE", "ADD_TO_CART")
        ]
        tracked = await app.send("TrackEvents", {"input": {"deviceId": device, "events": events}})
        assert tracked["trackEvents"]["accepted"] == len(events)
        login = (
            await app.send(
                "LoginWithWechat",
                {"code": f"wx-{uuid.uuid4().hex}", "phoneCode": None, "deviceId": device},
            )
        )["loginWithWechat"]
        assert login["errors"] == [] and login["token"]
        app.token = login["token"]
        # Before any trackEvents signed in: the sign-in took the visitor's events over.
        mine = (await app.send("MyBehaviour", {"first": 20}))["myBehaviour"]
        assert len(mine) == len(events)
        home = (await app.send("Recommendations", {"scene": "HOME", "storeId": store_id}))[
            "recommendations"
        ]
        personal = {"TASTE", "ALSO_LIKED", "BOUGHT_TOGETHER", "ORDER_AGAIN"}
        assert {r["reasonKind"] for r in home} & personal, home
        refused = (
            await app.send("LoginWithWechat", {"code": f"wx-{uuid.uuid4().hex}", "deviceId": "x"})
        )["loginWithWechat"]
        assert refused["token"] is None
        assert refused["errors"][0]["code"] == "INVALID_INPUT"
        assert refused["errors"][0]["field"] == ["deviceId"]


def test_build_recommendations_makes_a_new_model_version(settings: Settings) -> None:
    built = run_cli(settings, "build-recommendations")
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("recommendation model ")
    again = run_cli(settings, "build-recommendations")
    first = int(built.stdout.split()[2].rstrip(":"))
    assert int(again.stdout.split()[2].rstrip(":")) > first
    assert " 0 orders" not in built.stdout  # the demo chain's history
