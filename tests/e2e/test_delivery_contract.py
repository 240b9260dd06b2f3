"""The delivery contract, verbatim, on a real server: an order is dispatched when ready, its
member follows the courier live, and the carrying platform reports positions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import courier_positions, deliveries, orders
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import run_cli, running_server
from tests.e2e.test_order_contract import _delivery_skus, _gql, _place_input
from tests.shop import PAY, PLACE, new_member, next_noon
from tests.wsclient import session

TRACK = """
subscription Track($orderId: ID!) {
  courierUpdates(orderId: $orderId) { status position { lat lng } etaSeconds courier { name } version }
}
"""
REPORT = """
mutation Report($input: ReportCourierPositionInput!) {
  reportCourierPosition(input: $input) { errors { code message } }
}
"""
ORDER_DELIVERY = "query($id: ID!) { order(id: $id) { delivery { id status } } }"
CARRIER = "query($id: ID!) { order(id: $id) { delivery { provider } } }"
STORE_MAP = """
subscription($storeId: ID!) {
  storeDeliveryFeed(storeId: $storeId) { deliveryId status position { lat lng } version }
}
"""
MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""
START = next_noon()


@pytest.fixture(scope="module")
def delivery_server(settings: Settings) -> Iterator[str]:
    with running_server(settings, DINEGRAPH_CLOCK_START=START.isoformat()) as url:
        yield url


def _device_time(seconds: float) -> str:
    """A courier device's clock, in the server's frame (it started at START)."""
    return (START + timedelta(seconds=seconds)).isoformat()


async def test_follow_the_courier_as_the_platform_reports(
    delivery_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    _, member = await new_member(settings, engine)
    staff = credentials.hq_admin
    async with httpx.AsyncClient(base_url=delivery_server, timeout=10) as client:
        sku = (await _delivery_skus(client))[0]
        placed = await _gql(client, PLACE, {"input": _place_input(sku, "e2e-delivery")}, member)
        order = placed["placeOrder"]["order"]
        assert (await _gql(client, PAY, {"orderId": order["id"]}, member))["payOrder"][
            "errors"
        ] == []
        for status in ("ACCEPTED", "PREPARING", "READY"):
            moved = await _gql(
                client, MOVE, {"input": {"orderId": order["id"], "status": status}}, staff
            )
            assert moved["updateOrderStatus"]["errors"] == []
        found = await _gql(client, ORDER_DELIVERY, {"id": order["id"]}, member)
        delivery = found["order"]["delivery"]
        assert delivery["status"] == "ASSIGNED"
        # The platform that carries it: routing picks the best store (its queue counts, and
        # other tests' orders fill queues), and the demo stores use 达达 or 顺丰同城.
        carrier = await _gql(client, CARRIER, {"id": order["id"]}, staff)
        made = run_cli(
            settings,
            "create-api-key",
            "--name",
            "carrier",
            "--scopes",
            "delivery:write",
            "--partner",
            carrier["order"]["delivery"]["provider"],
        )
        assert made.returncode == 0, made.stderr
        platform_key = {"X-Api-Key": made.stdout.strip().splitlines()[-1]}

        token = member["Authorization"].removeprefix("Bearer ")
        staff_token = staff["Authorization"].removeprefix("Bearer ")
        async with (
            session(delivery_server, {"authorization": f"Bearer {token}"}) as mine,
            session(delivery_server, {"authorization": f"Bearer {staff_token}"}) as board,
            session(delivery_server, {"apiKey": platform_key["X-Api-Key"]}) as platform,
        ):
            await mine.subscribe(TRACK, {"orderId": order["id"]})
            first = (await mine.next_data())["courierUpdates"]
            assert first["status"] == "ASSIGNED" and first["position"] is None
            assert first["courier"]["name"] and first["etaSeconds"] > 0
            await board.subscribe(STORE_MAP, {"storeId": order["store"]["id"]})
            on_map = (await board.next_data())["storeDeliveryFeed"]
            while on_map["deliveryId"] != delivery["id"]:
                on_map = (await board.next_data())["storeDeliveryFeed"]
            await platform.subscribe(TRACK, {"orderId": order["id"]})
            assert (await platform.next_data())["courierUpdates"]["version"] == first["version"]

            near_store = {"lat": 22.5372, "lng": 114.0556}
            body = await client.post(
                "/graphql",
                json={
                    "query": REPORT,
                    "variables": {
                        "input": {
                            "deliveryId": delivery["id"],
                            **near_store,
                            "recordedAt": _device_time(1),
                        }
                    },
                },
                headers=platform_key,
            )
            reported: dict[str, Any] = body.json()
            assert reported["data"]["reportCourierPosition"] == {"errors": []}
            update = (await mine.next_data())["courierUpdates"]
            assert update["position"] == near_store
            assert update["version"] == first["version"] + 1
            assert update["etaSeconds"] > 0
            seen = (await board.next_data())["storeDeliveryFeed"]
            while seen["deliveryId"] != delivery["id"]:
                seen = (await board.next_data())["storeDeliveryFeed"]
            assert (seen["position"], seen["version"]) == (near_store, update["version"])
            assert (await platform.next_data())["courierUpdates"]["version"] == update["version"]

        _, stranger = await new_member(settings, engine)
        other = stranger["Authorization"].removeprefix("Bearer ")
        async with session(delivery_server, {"authorization": f"Bearer {other}"}) as theirs:
            await theirs.subscribe(TRACK, {"orderId": order["id"]})
            refused = await theirs.receive()
            assert refused["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_following_before_dispatch_sends_the_empty_state_first_then_the_dispatch(
    delivery_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=delivery_server, timeout=10) as client:
        sku = (await _delivery_skus(client))[0]
        placed = await _gql(client, PLACE, {"input": _place_input(sku, "e2e-early")}, member)
        order = placed["placeOrder"]["order"]
        paid = await _gql(client, PAY, {"orderId": order["id"]}, member)
        assert paid["payOrder"]["errors"] == []
        token = member["Authorization"].removeprefix("Bearer ")
        async with session(delivery_server, {"authorization": f"Bearer {token}"}) as mine:
            await mine.subscribe(TRACK, {"orderId": order["id"]})
            first = (await mine.next_data())["courierUpdates"]
            assert first == {
                "status": None,
                "position": None,
                "etaSeconds": None,
                "courier": None,
                "version": 0,
            }
            for status in ("ACCEPTED", "PREPARING", "READY"):
                moved = await _gql(
                    client,
                    MOVE,
                    {"input": {"orderId": order["id"], "status": status}},
                    credentials.hq_admin,
                )
                assert moved["updateOrderStatus"]["errors"] == []
            dispatched = (await mine.next_data())["courierUpdates"]
            assert dispatched["status"] in {"PENDING", "ASSIGNED"} and dispatched["version"] > 0


async def test_simulate_drives_orders_through_the_whole_flow(
    delivery_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    ran = run_cli(
        settings,
        "simulate",
        "--url",
        delivery_server,
        "--orders-per-minute",
        "60",
        "--minutes",
        "0.04",
        "--speed-kmh",
        "60",
        "--report-every",
        "1",
        "--cook-seconds",
        "0",
        "--farthest-m",
        "150",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    done = ran.stdout.strip().splitlines()[-1]
    placed, delivered = (int(n) for n in re.findall(r"\d+", done))
    assert done.startswith("done:") and placed >= 1 and delivered == placed, ran.stdout
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(deliveries.c.status, sa.func.count(courier_positions.c.id))
                .join(courier_positions, courier_positions.c.delivery_id == deliveries.c.id)
                .join(orders, orders.c.id == deliveries.c.order_id)
                .where(orders.c.status == "COMPLETED")
                .group_by(deliveries.c.id, deliveries.c.status)
            )
        ).all()
    assert len(rows) >= placed
    assert all(status == "DELIVERED" and reports >= 1 for status, reports in rows)
