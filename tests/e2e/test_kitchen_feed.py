"""A kitchen screen on a real server: stationTicketFeed over graphql-ws hears the ticket of
an order the moment it is accepted, and only its own station's; with several processes, the
order accepted through one reaches a screen on another. Orders from the till (POS) and a
takeaway platform reach the same board and the same screens as the mini-program's."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_staff_token, new_api_key
from dinegraph.settings import Settings
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON, broker_url
from tests.e2e.conftest import running_server
from tests.integration.test_kitchen import new_kitchen_menu
from tests.shop import PAY, PLACE, line, new_member, new_shop, next_noon, place_input
from tests.wsclient import session

FEED = """
subscription Screen($storeId: ID!, $station: ID) {
  stationTicketFeed(storeId: $storeId, station: $station) {
    id orderId stationName shortNumber items { name quantity combo } text(paper: MM58)
  }
}
"""
CREATE = """mutation($input: CreateKitchenStationInput!) {
  createKitchenStation(input: $input) { station { id } errors { code } } }"""
ROUTE = """mutation($input: RouteToKitchenStationInput!) {
  routeToKitchenStation(input: $input) { errors { code } } }"""
MOVE = """mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } } }"""


async def _gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    payload: dict[str, Any] = next(iter(data.values()))
    assert not payload.get("errors"), payload
    return payload


async def test_a_station_screen_receives_the_ticket_when_an_order_is_accepted(
    live_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    await _screen_hears_acceptance(settings, engine, live_server, live_server)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason=SKIP_POSTGRES_REASON)
@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_an_order_accepted_through_process_a_reaches_a_screen_on_process_b(
    settings: Settings, engine: AsyncEngine, broker: str
) -> None:
    url = broker_url(settings, broker)
    with (
        running_server(settings, DINEGRAPH_BROKER_URL=url) as a,
        running_server(settings, DINEGRAPH_BROKER_URL=url) as b,
    ):
        await _screen_hears_acceptance(settings, engine, a, b)


async def _screen_hears_acceptance(
    settings: Settings, engine: AsyncEngine, accepting: str, screen_at: str
) -> None:
    """Stations set up and orders accepted through ``accepting``; the screen on ``screen_at``."""
    shop = await new_shop(engine)
    menu = await new_kitchen_menu(engine, shop.store_ids[0])
    viewer = await identity_db.ensure_staff(
        engine,
        username=f"kitchen-{shop.store_ids[0]}",
        role=StaffRole.STORE_MANAGER,
        store_ids=shop.store_ids[:1],
    )
    token = issue_staff_token(settings, viewer)
    staff = {"Authorization": f"Bearer {token}"}
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=accepting, timeout=30) as client:
        stations = {}
        for name in ("热炒", "凉菜"):
            made = await _gql(
                client, CREATE, {"input": {"storeId": shop.store(), "name": name}}, staff
            )
            stations[name] = made["station"]["id"]
        await _gql(
            client,
            ROUTE,
            {
                "input": {
                    "storeId": shop.store(),
                    "stationId": stations["凉菜"],
                    "categoryIds": [encode_id("Category", menu.cold_category)],
                }
            },
            staff,
        )

        async def accepted_order(*lines: dict[str, Any]) -> str:
            placed = await _gql(
                client,
                PLACE,
                {"input": place_input(*lines, channel="PICKUP", store=shop.store())},
                member,
            )
            order_id = str(placed["order"]["id"])
            await _gql(client, PAY, {"orderId": order_id}, member)
            await _gql(client, MOVE, {"input": {"orderId": order_id, "status": "ACCEPTED"}}, staff)
            return order_id

        # An order already in the kitchen: the screen's first message, which also says the
        # subscription is following the store's tickets.
        first = await accepted_order(line(menu.cold, 1))
        async with session(screen_at, {"authorization": f"Bearer {token}"}) as screen:
            await screen.subscribe(FEED, {"storeId": shop.store(), "station": stations["凉菜"]})
            shown = (await screen.next_data())["stationTicketFeed"]
            assert (shown["orderId"], shown["stationName"]) == (first, "凉菜")

            # Accepted now: a combo's cold part reaches the cold station's screen; the
            # stir-fry's ticket (热炒) does not.
            second = await accepted_order(line(menu.combo, 1), line(menu.wok, 1))
            pushed = (await screen.next_data())["stationTicketFeed"]
            assert (pushed["orderId"], pushed["stationName"]) == (second, "凉菜")
            assert pushed["items"] == [{"name": "拍黄瓜", "quantity": 2, "combo": "商务套餐A"}]
            assert pushed["shortNumber"] in pushed["text"] and "拍黄瓜" in pushed["text"]

            # A stranger to the store is refused with a code, before any ticket.
            async with session(screen_at, {"authorization": member["Authorization"]}) as other:
                await other.subscribe(FEED, {"storeId": shop.store(), "station": None})
                refused = await other.receive()
                assert refused["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


SCREEN = """
subscription Screen($storeId: ID!) {
  stationTicketFeed(storeId: $storeId) {
    orderId stationName source channel shortNumber tableNumber pickupCode note
    items { name quantity combo note } text(paper: MM58)
  }
}
"""
BOARD = """
subscription Board($storeId: ID!) {
  storeOrderFeed(storeId: $storeId) { id status source externalId tableNo pickupCode note }
}
"""
RECORD = """mutation($input: RecordPartnerOrderInput!) {
  recordPartnerOrder(input: $input) { order { id source } replayed errors { code field } } }"""


async def test_till_and_platform_orders_reach_the_board_and_the_station_screens(
    settings: Settings, engine: AsyncEngine
) -> None:
    """A POS dine-in order, a 美团 delivery order and a mini-program pickup at one store: the
    board's feed shows all three as they arrive, and once accepted, the screen following
    every station of the store gets each one's tickets in the same feed, split by station,
    naming the source, the table or the platform's pickup code, and the notes."""
    shop = await new_shop(engine)
    store_id = shop.store_ids[0]
    menu = await new_kitchen_menu(engine, store_id)
    viewer = await identity_db.ensure_staff(
        engine,
        username=f"kitchen-all-{store_id}",
        role=StaffRole.STORE_MANAGER,
        store_ids=[store_id],
    )
    token = issue_staff_token(settings, viewer)
    staff = {"Authorization": f"Bearer {token}"}
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name=f"美团 {store_id}",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=["orders:write"],
        store_ids=[store_id],
    )
    partner = {"X-Api-Key": key.key}
    _, member = await new_member(settings, engine)

    def partner_order(source: str, fulfilment: str, **extra: Any) -> dict[str, Any]:
        return {
            "input": {
                "storeId": shop.store(),
                "source": source,
                "externalId": f"{source}-{uuid.uuid4().hex[:12]}",
                "fulfilment": fulfilment,
                "paidFen": 5600,
                **extra,
            }
        }

    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as client,
            session(url, {"authorization": f"Bearer {token}"}) as board,
            session(url, {"authorization": f"Bearer {token}"}) as screen,
        ):
            # 热炒 first: the default, for whatever is not routed elsewhere.
            await _gql(client, CREATE, {"input": {"storeId": shop.store(), "name": "热炒"}}, staff)
            made = await _gql(
                client, CREATE, {"input": {"storeId": shop.store(), "name": "凉菜"}}, staff
            )
            cold = made["station"]["id"]
            route = {
                "storeId": shop.store(),
                "stationId": cold,
                "categoryIds": [encode_id("Category", menu.cold_category)],
            }
            await _gql(client, ROUTE, {"input": route}, staff)
            await board.subscribe(BOARD, {"storeId": shop.store()})
            await screen.subscribe(SCREEN, {"storeId": shop.store()})

            placed = await _gql(
                client,
                PLACE,
                {
                    "input": place_input(
                        line(menu.wok, 1), channel="PICKUP", store=shop.store(), note="小程序的备注"
                    )
                },
                member,
            )
            mini = str(placed["order"]["id"])
            await _gql(client, PAY, {"orderId": mini}, member)
            till = await _gql(
                client,
                RECORD,
                partner_order(
                    "POS",
                    "DINE_IN",
                    lines=[{"skuId": encode_id("Sku", menu.cold), "quantity": 1}],
                    tableNo="A8",
                ),
                partner,
            )
            meituan = await _gql(
                client,
                RECORD,
                partner_order(
                    "MEITUAN",
                    "DELIVERY",
                    lines=[
                        {"skuId": encode_id("Sku", menu.combo), "quantity": 1, "note": "不要辣"},
                        {"skuId": encode_id("Sku", menu.wok), "quantity": 1},
                    ],
                    pickupCode="美团#23",
                    customerNote="多放餐具",
                ),
                partner,
            )
            pos, mt = str(till["order"]["id"]), str(meituan["order"]["id"])
            sources = {mini: "MINI_PROGRAM", pos: "POS", mt: "MEITUAN"}

            # The board: all three, paid, each with its source.
            seen: dict[str, dict[str, Any]] = {}
            while not (sources.keys() <= seen.keys() and seen[mini]["status"] == "PAID"):
                update = (await board.next_data())["storeOrderFeed"]
                seen[update["id"]] = update
            assert {i: seen[i]["source"] for i in sources} == sources
            assert (seen[pos]["tableNo"], seen[mt]["pickupCode"]) == ("A8", "美团#23")
            assert seen[mt]["note"] == "多放餐具" and seen[mt]["externalId"].startswith("MEITUAN-")

            for order_id in (mini, pos, mt):
                await _gql(
                    client, MOVE, {"input": {"orderId": order_id, "status": "ACCEPTED"}}, staff
                )
            # The screen: one ticket per order and station, in the one feed.
            tickets: dict[tuple[str, str], dict[str, Any]] = {}
            wanted = {(mini, "热炒"), (pos, "凉菜"), (mt, "热炒"), (mt, "凉菜")}
            while not wanted <= tickets.keys():
                ticket = (await screen.next_data())["stationTicketFeed"]
                tickets[(ticket["orderId"], ticket["stationName"])] = ticket
            assert tickets.keys() == wanted
            assert {t["orderId"]: t["source"] for t in tickets.values()} == sources

            at_table = tickets[(pos, "凉菜")]
            assert (at_table["channel"], at_table["tableNumber"]) == ("DINE_IN", "A8")
            assert at_table["shortNumber"] == "桌A8" and "堂食 收银台" in at_table["text"]

            mt_cold, mt_wok = tickets[(mt, "凉菜")], tickets[(mt, "热炒")]
            assert (mt_cold["channel"], mt_cold["pickupCode"]) == ("DELIVERY", "美团#23")
            assert mt_cold["items"] == [
                {"name": "拍黄瓜", "quantity": 2, "combo": "商务套餐A", "note": "不要辣"}
            ]
            assert {"name": "宫保鸡丁", "quantity": 1, "combo": None, "note": ""} in mt_wok["items"]
            text = mt_cold["text"]
            assert "美团#23" in text and "外卖 美团" in text and "[备注] 不要辣" in text
            assert mt_cold["note"] == "多放餐具" and "备注: 多放餐具" in text

            mini_ticket = tickets[(mini, "热炒")]
            assert mini_ticket["note"] == "小程序的备注" and "自取 小程序" in mini_ticket["text"]
