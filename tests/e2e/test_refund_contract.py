"""The refund contract on a real server: the member asks, the store approves or refuses,
and `orderUpdates` pushes each step over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import running_server
from tests.shop import PAY, PLACE, new_member, next_noon
from tests.wsclient import Session, session

TRACK = """
subscription Track($orderId: ID!) {
  orderUpdates(orderId: $orderId) {
    id status version refunded { fen }
    refunds { id status amountFen reason refusalReason lines { lineId quantity } }
  }
}
"""
REQUEST = """
mutation RequestRefund($input: RequestRefundInput!) {
  requestRefund(input: $input) {
    refund { id status amountFen requestedBy }
    errors { code message field }
  }
}
"""
APPROVE = """
mutation ApproveRefund($input: ApproveRefundInput!) {
  approveRefund(input: $input) { refund { id status } errors { code message field } }
}
"""
REFUSE = """
mutation RefuseRefund($input: RefuseRefundInput!) {
  refuseRefund(input: $input) { refund { id status refusalReason } errors { code message field } }
}
"""
REQUESTS = """
query RefundRequests($storeId: ID!) {
  storeRefundRequests(storeId: $storeId) { edges { node { id status reason order { id } } } }
}
"""
LIFECYCLE = ["REQUESTED", "APPROVED", "SUBMITTED", "REFUNDED"]


@pytest.fixture(scope="module")
def refund_server(settings: Settings) -> Iterator[str]:
    """A real server at noon, on the development payment adapter."""
    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
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


async def _paid_pickup(client: httpx.AsyncClient, member: dict[str, str], key: str) -> str:
    """A paid pickup order of a dish made to order at demo store 1."""
    menu = await _gql(
        client,
        """query($s: ID!) { menu(storeId: $s, channel: PICKUP) {
            categories { products { skus { id stock { available soldOut } } } } } }""",
        {"s": encode_id("Store", 1)},
        {},
    )
    sku = next(
        s["id"]
        for c in menu["menu"]["categories"]
        for p in c["products"]
        for s in p["skus"]
        if s["stock"]["available"] is None and not s["stock"]["soldOut"]
    )
    placed = await _gql(
        client,
        PLACE,
        {
            "input": {
                "idempotencyKey": key,
                "channel": "PICKUP",
                "storeId": encode_id("Store", 1),
                "lines": [{"skuId": sku, "quantity": 2}],
            }
        },
        member,
    )
    assert placed["placeOrder"]["errors"] == [], placed
    order_id = str(placed["placeOrder"]["order"]["id"])
    paid = await _gql(client, PAY, {"orderId": order_id}, member)
    assert paid["payOrder"]["errors"] == [], paid
    return order_id


def _bearer(headers: dict[str, str]) -> dict[str, str]:
    return {"authorization": headers["Authorization"]}


async def _next_order(mine: Session, version: int) -> dict[str, Any]:
    """The next update of the order: pushed only when its version grew."""
    update: dict[str, Any] = (await mine.next_data())["orderUpdates"]
    assert update["version"] > version, update
    return update


async def test_the_member_asks_the_store_approves_and_each_step_is_pushed(
    refund_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    _, member = await new_member(settings, engine)
    staff = credentials.manager_store_1
    async with (
        httpx.AsyncClient(base_url=refund_server, timeout=30) as client,
        session(refund_server, _bearer(member)) as mine,
    ):
        order_id = await _paid_pickup(client, member, "e2e-refund-approve")
        await mine.subscribe(TRACK, {"orderId": order_id})
        now = (await mine.next_data())["orderUpdates"]
        assert (now["status"], now["refunds"]) == ("PAID", [])

        asked = await _gql(
            client,
            REQUEST,
            {"input": {"orderId": order_id, "reason": "不想要了", "idempotencyKey": "ask-1"}},
            member,
        )
        assert asked["requestRefund"]["errors"] == [], asked
        refund = asked["requestRefund"]["refund"]
        assert (refund["status"], refund["requestedBy"]) == ("REQUESTED", "MEMBER")
        pushed = await _next_order(mine, now["version"])
        assert [(r["id"], r["status"], r["reason"]) for r in pushed["refunds"]] == [
            (refund["id"], "REQUESTED", "不想要了")
        ]
        assert pushed["status"] == "PAID" and pushed["refunded"]["fen"] == 0

        waiting = await _gql(client, REQUESTS, {"storeId": encode_id("Store", 1)}, staff)
        assert refund["id"] in {e["node"]["id"] for e in waiting["storeRefundRequests"]["edges"]}

        approved = await _gql(client, APPROVE, {"input": {"refundId": refund["id"]}}, staff)
        assert approved["approveRefund"] == {
            "refund": {"id": refund["id"], "status": "APPROVED"},
            "errors": [],
        }
        # Approval, the provider's acceptance and its settlement each make versions; a client
        # that reads slower than they come gets the latest, never an older state.
        seen: list[str] = []
        latest = pushed
        # Two versions at approval (the refund counted, the order REFUNDED), then one each. A
        # push is the order as it is when sent: one made for the acceptance may already show
        # the refund settled, so the pushes are read up to the last version, not the status.
        while latest["version"] < pushed["version"] + 4:
            latest = await _next_order(mine, latest["version"])
            seen.append(latest["refunds"][0]["status"])
        assert seen == sorted(seen, key=LIFECYCLE.index) and set(seen) <= set(LIFECYCLE[1:])
        assert latest["version"] == pushed["version"] + 4 and seen[-1] == "REFUNDED"
        assert latest["status"] == "REFUNDED"
        assert latest["refunded"]["fen"] == refund["amountFen"]


async def test_the_member_asks_and_the_store_refuses_with_a_reason(
    refund_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    _, member = await new_member(settings, engine)
    staff = credentials.manager_store_1
    async with (
        httpx.AsyncClient(base_url=refund_server, timeout=30) as client,
        session(refund_server, _bearer(member)) as mine,
    ):
        order_id = await _paid_pickup(client, member, "e2e-refund-refuse")
        await mine.subscribe(TRACK, {"orderId": order_id})
        now = (await mine.next_data())["orderUpdates"]
        asked = await _gql(
            client,
            REQUEST,
            {
                "input": {
                    "orderId": order_id,
                    "reason": "少了一份",
                    "idempotencyKey": "ask-1",
                    "lines": [{"lineId": 1, "quantity": 1}],
                }
            },
            member,
        )
        refund = asked["requestRefund"]["refund"]
        pushed = await _next_order(mine, now["version"])
        assert pushed["refunds"][0]["lines"] == [{"lineId": 1, "quantity": 1}]
        refused = await _gql(
            client,
            REFUSE,
            {"input": {"refundId": refund["id"], "reason": "已核实份量无误"}},
            staff,
        )
        assert refused["refuseRefund"]["errors"] == [], refused
        update = await _next_order(mine, pushed["version"])
        assert [(r["status"], r["refusalReason"]) for r in update["refunds"]] == [
            ("REFUSED", "已核实份量无误")
        ]
        assert update["status"] == "PAID" and update["refunded"]["fen"] == 0
        # Decided: approving it now is not allowed.
        late = await _gql(client, APPROVE, {"input": {"refundId": refund["id"]}}, staff)
        assert late["approveRefund"]["errors"][0]["code"] == "INVALID_TRANSITION"
