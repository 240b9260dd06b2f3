"""A kitchen screen on a real server: stationTicketFeed over graphql-ws hears the ticket of
an order the moment it is accepted, and only its own station's; with several processes, the
order accepted through one reaches a screen on another."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_staff_token
from dinegraph.settings import Settings
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON
from tests.e2e.conftest import running_server
from tests.e2e.test_many_processes import _broker_url
from tests.integration.test_kitchen import new_kitchen_menu
from tests.shop import PAY, PLACE, line, new_member, new_shop, place_input
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
    url = _broker_url(settings, broker)
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
