"""The orders contract, verbatim, on a real server: place, pay, live updates, the sweep,
and a signed payment notification over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.payments import sign
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import derived_key
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import SETTLE, ServerClock, running_server
from tests.shop import PAY, PLACE, new_member, next_noon
from tests.wsclient import session

ORDER_UPDATES = """
subscription Track($orderId: ID!) { orderUpdates(orderId: $orderId) { id status version } }
"""
STORE_FEED = """
subscription Board($storeId: ID!) {
  storeOrderFeed(storeId: $storeId) { id status version kitchenTicket { text } }
}
"""
MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""
ORDER = "query($id: ID!) { order(id: $id) { id status total { fen } } }"
DEADLINE = "query($id: ID!) { order(id: $id) { status placedAt payBy } }"
# Near 味知堂·福田中心店 (demo store 1).
ADDRESS = {
    "lat": 22.5391,
    "lng": 114.0571,
    "detail": "福华三路 中心城 3 栋 1201",
    "contactName": "王先生",
    "contactPhone": "13800138000",
}


@pytest.fixture(scope="module")
def order_server(settings: Settings) -> Iterator[str]:
    """A real server at noon, whose unpaid orders expire after fifteen seconds (time enough
    for the other tests to pay on a loaded machine)."""
    with running_server(
        settings,
        DINEGRAPH_CLOCK_START=next_noon().isoformat(),
        DINEGRAPH_PAYMENT_TIMEOUT_MINUTES="0.25",
        DINEGRAPH_ORDER_SWEEP_SECONDS="0.5",
    ) as url:
        yield url


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
    return data


async def _delivery_skus(client: httpx.AsyncClient, channel: str = "DELIVERY") -> list[str]:
    """Dishes store 1 sells for delivery (or ``channel``), made to order (no stock to run out)."""
    data = await _gql(
        client,
        """query($s: ID!, $c: Channel!) { menu(storeId: $s, channel: $c) {
            categories { products { skus { id stock { available soldOut } } } } } }""",
        {"s": encode_id("Store", 1), "c": channel},
        {},
    )
    return [
        sku["id"]
        for category in data["menu"]["categories"]
        for product in category["products"]
        for sku in product["skus"]
        if sku["stock"]["available"] is None and not sku["stock"]["soldOut"]
    ]


def _place_input(sku: str, key: str) -> dict[str, Any]:
    return {
        "idempotencyKey": key,
        "channel": "DELIVERY",
        "address": ADDRESS,
        "lines": [{"skuId": sku, "quantity": 2}],
        "note": "少辣",
    }


async def test_place_pay_and_follow_the_order_live(
    order_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=order_server, timeout=30) as client:
        sku = (await _delivery_skus(client))[0]
        placed = await _gql(client, PLACE, {"input": _place_input(sku, "e2e-1")}, member)
        payload = placed["placeOrder"]
        assert payload["errors"] == []
        order = payload["order"]
        assert order["status"] == "PENDING_PAYMENT"
        assert order["lines"] == [{"sku": {"id": sku}, "quantity": 2}]
        assert order["total"]["fen"] > 0
        store = order["store"]["id"]
        token = member["Authorization"].removeprefix("Bearer ")
        staff = credentials.hq_admin["Authorization"].removeprefix("Bearer ")
        async with (
            session(order_server, {"authorization": f"Bearer {token}"}) as mine,
            session(order_server, {"authorization": f"Bearer {staff}"}) as board,
        ):
            await mine.subscribe(ORDER_UPDATES, {"orderId": order["id"]})
            first = (await mine.next_data())["orderUpdates"]
            assert (first["id"], first["status"], first["version"]) == (
                order["id"],
                "PENDING_PAYMENT",
                1,
            )
            await board.subscribe(STORE_FEED, {"storeId": store})
            # Whether the board joins before the payment commits or after, it shows the
            # order paid: its feed listens first, then reads the open orders.
            paid = await _gql(client, PAY, {"orderId": order["id"]}, member)
            assert paid["payOrder"] == {
                "order": {"id": order["id"], "status": "PAID"},
                "errors": [],
            }
            assert (await mine.next_data())["orderUpdates"]["status"] == "PAID"
            on_board = (await board.next_data())["storeOrderFeed"]
            while on_board["id"] != order["id"]:  # other open orders of the store come first
                on_board = (await board.next_data())["storeOrderFeed"]
            assert on_board["status"] == "PAID"
            assert (
                "2 x" in on_board["kitchenTicket"]["text"]
                and "少辣" in on_board["kitchenTicket"]["text"]
            )
            moved = await _gql(
                client,
                MOVE,
                {"input": {"orderId": order["id"], "status": "ACCEPTED"}},
                credentials.hq_admin,
            )
            assert moved["updateOrderStatus"]["errors"] == []
            update = (await mine.next_data())["orderUpdates"]
            assert (update["status"], update["version"]) == ("ACCEPTED", 3)
        # Someone else's order is not theirs to follow.
        _, stranger = await new_member(settings, engine)
        other = stranger["Authorization"].removeprefix("Bearer ")
        async with session(order_server, {"authorization": f"Bearer {other}"}) as theirs:
            await theirs.subscribe(ORDER_UPDATES, {"orderId": order["id"]})
            refused = await theirs.receive()
            # Errors before the first value arrive in a `next` with errors.
            assert refused["type"] == "next", refused
            assert refused["payload"]["data"] is None
            assert refused["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_the_server_cancels_unpaid_orders_by_itself(
    order_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=order_server, timeout=30) as client:
        sku = (await _delivery_skus(client))[0]
        placed = await _gql(client, PLACE, {"input": _place_input(sku, "e2e-unpaid")}, member)
        order_id = placed["placeOrder"]["order"]["id"]
        found = (await _gql(client, DEADLINE, {"id": order_id}, member))["order"]
        clock, pay_by = ServerClock(found["placedAt"]), datetime.fromisoformat(found["payBy"])
        status = found["status"]
        while status == "PENDING_PAYMENT" and clock.now() < pay_by + SETTLE:
            await asyncio.sleep(0.5)
            status = (await _gql(client, ORDER, {"id": order_id}, member))["order"]["status"]
        assert status == "CANCELLED", f"still {status} {SETTLE} after its payment deadline"
        late = await _gql(client, PAY, {"orderId": order_id}, member)
        assert late["payOrder"]["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_a_provider_notifies_payment_over_http(
    order_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    key = derived_key(settings, b"payment-notify")
    async with httpx.AsyncClient(base_url=order_server, timeout=30) as client:
        sku = (await _delivery_skus(client))[0]
        placed = await _gql(client, PLACE, {"input": _place_input(sku, "e2e-notify")}, member)
        order = placed["placeOrder"]["order"]
        body = json.dumps(
            {
                "provider": "wechatpay",
                "orderId": order["id"],
                "transactionId": f"wx-{order['id']}",
                "amountFen": order["total"]["fen"],
            }
        ).encode()
        headers = {"content-type": "application/json"}
        unsigned = await client.post("/payments/notify", content=body, headers=headers)
        assert unsigned.status_code == 401
        headers["dinegraph-signature"] = sign(key, body, int(time.time()))
        for _ in range(2):  # providers repeat notifications; the second changes nothing
            answer = await client.post("/payments/notify", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"orderId": order["id"], "status": "PAID"}
        found = await _gql(client, ORDER, {"id": order["id"]}, member)
        assert found["order"]["status"] == "PAID"
