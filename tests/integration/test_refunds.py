"""Refunds the member can follow: request, the store's decision, the money's progress."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.tables import orders, outbound_calls, points_ledger, refunds
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import CallRefused
from dinegraph.domain.ports import RefundProgress
from dinegraph.domain.refunds import REFUND_CALL, RefundToSend
from dinegraph.domain.services.refunds import (
    RefundSettled,
    RefundSubmitted,
    refund_settled,
    refund_submitted,
)
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_orders import (
    REFUND,
    claimed_coupon,
    coupon_status,
    manager_of,
    move,
    placed,
)
from tests.shop import (
    PAY,
    Shop,
    level_of,
    line,
    new_member,
    new_shop,
    new_sku,
    next_noon,
    place_input,
)

REFUND_FIELDS = (
    "id status amountFen amount { fen } reason refusalReason requestedBy lines { lineId quantity }"
)
REQUEST = f"""
mutation Request($input: RequestRefundInput!) {{
  requestRefund(input: $input) {{
    refund {{ {REFUND_FIELDS} }}
    order {{ id status version refunded {{ fen }} }}
    errors {{ code field }}
  }}
}}
"""
APPROVE = f"""
mutation Approve($input: ApproveRefundInput!) {{
  approveRefund(input: $input) {{
    refund {{ {REFUND_FIELDS} }}
    order {{ id status version refunded {{ fen }} }}
    errors {{ code field }}
  }}
}}
"""
REFUSE = f"""
mutation Refuse($input: RefuseRefundInput!) {{
  refuseRefund(input: $input) {{
    refund {{ {REFUND_FIELDS} }}
    order {{ id status version }}
    errors {{ code field }}
  }}
}}
"""
ORDER_REFUNDS = f"""
query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id status version refunded {{ fen }} total {{ fen }}
    refunds {{ {REFUND_FIELDS} requestedAt updatedAt providerRefundId }}
  }}
}}
"""
STORE_REQUESTS = """
query Requests($storeId: ID!, $status: [RefundStatus!]) {
  storeRefundRequests(storeId: $storeId, status: $status, first: 10) {
    edges { node { id status reason order { id } } }
    pageInfo { hasNextPage }
  }
}
"""


@dataclass(frozen=True)
class Paid:
    shop: Shop
    sku: int
    order_id: str
    member_id: int
    member: dict[str, str]
    staff: dict[str, str]


async def paid_order(
    client: GraphQLClient,
    settings: Settings,
    engine: AsyncEngine,
    *,
    units: int = 2,
    coupon: str | None = None,
    member: tuple[int, dict[str, str]] | None = None,
) -> Paid:
    """A paid pickup order of ``units`` of a 1000-fen SKU (10 in stock) at a new store."""
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1000, stock={shop.store_ids[0]: 10})
    member_id, headers = member or await new_member(settings, engine)
    order_id = await placed(
        client,
        headers,
        place_input(line(sku, units), channel="PICKUP", store=shop.store(), coupon=coupon),
    )
    paid = await client.execute(PAY, {"orderId": order_id}, headers)
    assert paid["data"]["payOrder"]["errors"] == [], paid
    staff = await manager_of(settings, engine, shop)
    return Paid(shop, sku, order_id, member_id, headers, staff)


async def run(
    client: GraphQLClient, query: str, values: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    body = await client.execute(query, {"input": values}, headers)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


async def order_refunds(client: GraphQLClient, headers: dict[str, str], order_id: str) -> Any:
    body = await client.execute(ORDER_REFUNDS, {"id": order_id}, headers)
    assert "errors" not in body, body
    return body["data"]["order"]


async def refund_rows(engine: AsyncEngine, order_id: str) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(refunds.c.status, refunds.c.amount_fen)
            .where(refunds.c.order_id == decode_id(order_id, "Order", []))
            .order_by(refunds.c.id)
        )
        return [(str(r.status), int(r.amount_fen)) for r in rows]


def ask(order_id: str, key: str = "ask-1", reason: str = "少了一份", **more: Any) -> dict[str, Any]:
    return {"orderId": order_id, "reason": reason, "idempotencyKey": key, **more}


# --- the member asks, the store decides ------------------------------------------------


async def test_a_member_asks_the_store_approves_and_the_money_comes_back(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    store = o.shop.store_ids[0]
    assert await level_of(engine, store, o.sku) == 8
    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    assert asked["errors"] == []
    refund = asked["refund"]
    assert (refund["status"], refund["amountFen"], refund["requestedBy"]) == (
        "REQUESTED",
        2200,  # everything: two dishes and their packaging
        "MEMBER",
    )
    assert refund["lines"] == [{"lineId": 1, "quantity": 2}]
    # Asking changes nothing yet but the order's version (its followers hear of it).
    assert asked["order"]["status"] == "PAID" and asked["order"]["refunded"]["fen"] == 0
    assert await level_of(engine, store, o.sku) == 8
    board = await client.execute(STORE_REQUESTS, {"storeId": o.shop.store()}, o.staff)
    edges = board["data"]["storeRefundRequests"]["edges"]
    assert [(e["node"]["id"], e["node"]["order"]["id"]) for e in edges] == [
        (refund["id"], o.order_id)
    ]

    approved = await run(client, APPROVE, {"refundId": refund["id"]}, o.staff)
    assert approved["errors"] == []
    assert approved["refund"]["status"] == "APPROVED"
    assert approved["order"]["status"] == "REFUNDED"
    assert approved["order"]["refunded"]["fen"] == 2200
    assert await level_of(engine, store, o.sku) == 10  # not started: back on the shelf
    # The development payment adapter accepts and settles at once: the member sees it.
    found = await order_refunds(client, o.member, o.order_id)
    (mine,) = found["refunds"]
    assert mine["status"] == "REFUNDED" and mine["providerRefundId"] is None
    # Approval, submission and settlement each made a version of the order.
    assert found["version"] == approved["order"]["version"] + 2
    staff_view = await order_refunds(client, o.staff, o.order_id)
    assert staff_view["refunds"][0]["providerRefundId"].startswith("dev-")
    async with engine.connect() as conn:
        reference = await conn.scalar(
            sa.select(refunds.c.reference).where(
                refunds.c.id == decode_id(refund["id"], "Refund", [])
            )
        )
    assert (await refund_call_row(engine, str(reference))).status == "DONE"
    board = await client.execute(STORE_REQUESTS, {"storeId": o.shop.store()}, o.staff)
    assert board["data"]["storeRefundRequests"]["edges"] == []
    done = await client.execute(
        STORE_REQUESTS, {"storeId": o.shop.store(), "status": ["REFUNDED"]}, o.staff
    )
    assert [e["node"]["id"] for e in done["data"]["storeRefundRequests"]["edges"]] == [refund["id"]]


async def test_a_refused_request_shows_its_reason_and_changes_nothing_else(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    refund_id = asked["refund"]["id"]
    blank = await run(client, REFUSE, {"refundId": refund_id, "reason": "  "}, o.staff)
    assert blank["errors"] == [{"code": "REQUIRED", "field": ["reason"]}]
    refused = await run(client, REFUSE, {"refundId": refund_id, "reason": "已出餐"}, o.staff)
    assert refused["errors"] == []
    assert (refused["refund"]["status"], refused["refund"]["refusalReason"]) == (
        "REFUSED",
        "已出餐",
    )
    assert refused["order"]["version"] == asked["order"]["version"] + 1
    found = await order_refunds(client, o.member, o.order_id)
    assert found["status"] == "PAID" and found["refunded"]["fen"] == 0
    assert [(r["status"], r["refusalReason"]) for r in found["refunds"]] == [("REFUSED", "已出餐")]
    assert await level_of(engine, o.shop.store_ids[0], o.sku) == 8
    # Decided once: neither approving nor refusing it again changes anything.
    again = await run(client, APPROVE, {"refundId": refund_id}, o.staff)
    assert again["errors"] == [{"code": "INVALID_TRANSITION", "field": ["refundId"]}]
    # A refused member may ask again.
    second = await run(client, REQUEST, ask(o.order_id, key="ask-2"), o.member)
    assert second["errors"] == [] and second["refund"]["status"] == "REQUESTED"


async def test_one_request_waits_at_a_time_and_a_key_replays_its_request(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine, units=3)
    partial = ask(o.order_id, lines=[{"lineId": 1, "quantity": 1}])
    first = await run(client, REQUEST, partial, o.member)
    assert first["errors"] == [] and first["refund"]["amountFen"] == 1000
    replay = await run(client, REQUEST, partial, o.member)
    assert replay["errors"] == [] and replay["refund"]["id"] == first["refund"]["id"]
    reused = await run(
        client, REQUEST, {**partial, "lines": [{"lineId": 1, "quantity": 2}]}, o.member
    )
    assert reused["errors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": ["idempotencyKey"]}]
    other = await run(client, REQUEST, ask(o.order_id, key="ask-2"), o.member)
    assert other["errors"] == [{"code": "REFUND_PENDING", "field": ["orderId"]}]
    direct = await run(
        client, REFUND, {"orderId": o.order_id, "reason": "缺货", "idempotencyKey": "s1"}, o.staff
    )
    assert direct["errors"] == [{"code": "REFUND_PENDING", "field": ["orderId"]}]
    assert await refund_rows(engine, o.order_id) == [("REQUESTED", 1000)]


async def test_bad_requests_and_decisions_change_nothing(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    _, stranger = await new_member(settings, engine)
    cases: list[tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = [
        (ask(o.order_id, reason=" "), o.member, {"code": "REQUIRED", "field": ["reason"]}),
        (ask(o.order_id, reason="x" * 201), o.member, {"code": "TOO_LONG", "field": ["reason"]}),
        (ask(o.order_id, key=" "), o.member, {"code": "REQUIRED", "field": ["idempotencyKey"]}),
        (ask(o.order_id), stranger, {"code": "NOT_FOUND", "field": ["orderId"]}),
        (ask(o.order_id), o.staff, {"code": "FORBIDDEN", "field": ["orderId"]}),
        (ask(o.order_id), {}, {"code": "UNAUTHENTICATED", "field": None}),
        (
            ask(o.order_id, lines=[{"lineId": 1, "quantity": 3}]),
            o.member,
            {"code": "OUT_OF_RANGE", "field": ["lines", "0", "quantity"]},
        ),
        (
            ask(o.order_id, lines=[{"lineId": 9, "quantity": 1}]),
            o.member,
            {"code": "NOT_FOUND", "field": ["lines", "0", "lineId"]},
        ),
        (ask(encode_id("Order", 2**31 - 1)), o.member, {"code": "NOT_FOUND", "field": ["orderId"]}),
        (ask("nope"), o.member, {"code": "INVALID_ID", "field": ["orderId"]}),
    ]
    for values, headers, error in cases:
        answer = await run(client, REQUEST, values, headers)
        assert answer["errors"] == [error], (values, answer)
        assert answer["refund"] is None
    # An unpaid order has nothing to refund.
    unpaid = await placed(
        client,
        o.member,
        place_input(line(o.sku, 1), channel="PICKUP", store=o.shop.store()),
    )
    answer = await run(client, REQUEST, ask(unpaid), o.member)
    assert answer["errors"] == [{"code": "INVALID_TRANSITION", "field": ["orderId"]}]

    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    refund_id = asked["refund"]["id"]
    other_store = await manager_of(settings, engine, await new_shop(engine))
    deciders: list[tuple[dict[str, str], dict[str, Any]]] = [
        (o.member, {"code": "FORBIDDEN", "field": ["refundId"]}),
        (stranger, {"code": "NOT_FOUND", "field": ["refundId"]}),
        (other_store, {"code": "FORBIDDEN", "field": ["refundId"]}),
        ({}, {"code": "UNAUTHENTICATED", "field": None}),
    ]
    for headers, error in deciders:
        decisions: list[tuple[str, dict[str, Any]]] = [
            (APPROVE, {"refundId": refund_id}),
            (REFUSE, {"refundId": refund_id, "reason": "不行"}),
        ]
        for query, values in decisions:
            answer = await run(client, query, values, headers)
            assert answer["errors"] == [error], (headers, answer)
    wrong_kind = await run(client, APPROVE, {"refundId": o.order_id}, o.staff)
    assert wrong_kind["errors"] == [{"code": "INVALID_ID", "field": ["refundId"]}]
    assert await refund_rows(engine, o.order_id) == [("REQUESTED", 2200)]
    assert await level_of(engine, o.shop.store_ids[0], o.sku) == 7  # 2 paid, 1 unpaid held
    # Strangers see neither the order nor its refunds, by any path.
    assert (await client.execute(ORDER_REFUNDS, {"id": o.order_id}, stranger))["data"] == {
        "order": None
    }
    node = await client.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": refund_id}, stranger
    )
    assert node["data"] == {"node": None}
    mine = await client.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": refund_id}, o.member
    )
    assert mine["data"] == {"node": {"id": refund_id}}
    board = await client.execute(STORE_REQUESTS, {"storeId": o.shop.store()}, other_store)
    assert board["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_approval_plans_again_against_the_order_as_it_is_now(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    member = await new_member(settings, engine)
    coupon = await claimed_coupon(client, gql, credentials, member[1], amountOffFen=400)
    o = await paid_order(client, settings, engine, coupon=coupon, member=member)
    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    assert asked["refund"]["amountFen"] == 1800  # 2000 less the coupon's 400, and packaging
    # The kitchen starts before the store decides: the food is not put back on the shelf,
    # and the coupon, used on food made, is not given back.
    for status in ("ACCEPTED", "PREPARING"):
        assert (await move(client, o.staff, o.order_id, status))["errors"] == []
    approved = await run(client, APPROVE, {"refundId": asked["refund"]["id"]}, o.staff)
    assert approved["errors"] == [] and approved["order"]["status"] == "REFUNDED"
    assert await level_of(engine, o.shop.store_ids[0], o.sku) == 8
    assert await coupon_status(engine, coupon) == "USED"


async def test_an_approval_the_order_no_longer_allows_is_refused(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    # The member cancels meanwhile (before the store accepted): refunded in full by that.
    cancelled = await move(client, o.member, o.order_id, "CANCELLED")
    assert cancelled["errors"] == []
    approved = await run(client, APPROVE, {"refundId": asked["refund"]["id"]}, o.staff)
    assert approved["errors"] == [{"code": "INVALID_TRANSITION", "field": ["refundId"]}]
    assert [status for status, _ in await refund_rows(engine, o.order_id)] == [
        "REQUESTED",
        "REFUNDED",  # the cancel's refund, settled by the development adapter
    ]
    assert await level_of(engine, o.shop.store_ids[0], o.sku) == 10  # released once


async def test_a_refund_approved_after_completion_takes_back_points(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    for status in ("ACCEPTED", "PREPARING", "READY", "PICKED_UP", "COMPLETED"):
        assert (await move(client, o.staff, o.order_id, status))["errors"] == []
    partial = ask(o.order_id, reason="有一份凉了", lines=[{"lineId": 1, "quantity": 1}])
    asked = await run(client, REQUEST, partial, o.member)
    approved = await run(client, APPROVE, {"refundId": asked["refund"]["id"]}, o.staff)
    assert approved["errors"] == [] and approved["order"]["refunded"]["fen"] == 1000
    assert approved["order"]["status"] == "COMPLETED"
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(points_ledger.c.kind, points_ledger.c.delta)
                .where(points_ledger.c.member_id == o.member_id)
                .order_by(points_ledger.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("EARN", 22), ("REFUND", -10)]


# --- the provider's side ----------------------------------------------------------------


class HeldPayments:
    """A provider that has not answered yet: the refunds it was sent, nothing reported.
    ``answer`` makes it refuse (``CallRefused``) or fail (an outage) instead."""

    name = "held"

    def __init__(self) -> None:
        self.sent: list[RefundToSend] = []
        self.answer: Exception | None = None

    async def refund(self, refund: RefundToSend, progress: RefundProgress) -> None:
        self.sent.append(refund)
        if self.answer is not None:
            raise self.answer


@dataclass(frozen=True)
class Held:
    client: GraphQLClient
    payments: HeldPayments
    services: Services


@pytest.fixture
async def held(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Held]:
    payments = HeldPayments()
    services = default_services(settings)
    services = replace(
        services, clock=Clock(next_noon()), orders=replace(services.orders, payments=payments)
    )
    app = create_app(settings, engine, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Held(GraphQLClient(http), payments, services)


async def refund_call_row(engine: AsyncEngine, reference: str) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbound_calls).where(
                    outbound_calls.c.kind == REFUND_CALL, outbound_calls.c.key == reference
                )
            )
        ).all()
    assert len(rows) == 1, rows
    return rows[0]


async def test_the_provider_reports_progress_once_each_and_a_refusal_is_failed(
    held: Held, settings: Settings, engine: AsyncEngine
) -> None:
    client, payments = held.client, held.payments
    o = await paid_order(client, settings, engine)
    direct = await run(
        client,
        REFUND,
        {
            "orderId": o.order_id,
            "reason": "门店缺货",
            "idempotencyKey": "s-1",
            "lines": [{"lineId": 1, "quantity": 1}],
        },
        o.staff,
    )
    assert direct["errors"] == []
    (sent,) = payments.sent
    order_id = decode_id(o.order_id, "Order", [])
    assert (sent.order_id, sent.refund_fen, sent.total_fen, sent.reason) == (
        order_id,
        1000,
        2200,
        "门店缺货",
    )
    assert sent.reference.startswith(f"R{order_id}-") and len(sent.reference) <= 64
    assert set(sent.payload) == {
        "refundId",
        "orderId",
        "outTradeNo",
        "refundFen",
        "totalFen",
        "reason",
    }
    before = await order_refunds(client, o.staff, o.order_id)
    assert [r["status"] for r in before["refunds"]] == ["APPROVED"]
    at = next_noon()
    unit = SqlUnitOfWork(engine)
    for _ in range(2):  # a repeated report changes nothing
        moved = await refund_submitted(RefundSubmitted(sent.reference, "wx-1", at), uow=unit)
        assert moved.status.value == "SUBMITTED"
    middle = await order_refunds(client, o.staff, o.order_id)
    assert middle["version"] == before["version"] + 1
    assert middle["refunds"][0]["providerRefundId"] == "wx-1"
    for _ in range(2):
        done = await refund_settled(
            RefundSettled(sent.reference, False, None, at + timedelta(minutes=1)), uow=unit
        )
        assert done.status.value == "FAILED"
    # A late acceptance after the final word changes nothing either.
    late = await refund_submitted(RefundSubmitted(sent.reference, "wx-1", at), uow=unit)
    assert late.status.value == "FAILED"
    after = await order_refunds(client, o.member, o.order_id)
    assert after["version"] == middle["version"] + 1
    assert [r["status"] for r in after["refunds"]] == ["FAILED"]
    # The refund was granted: the order counts it and its stock came back at approval.
    assert after["refunded"]["fen"] == 1000
    async with engine.connect() as conn:
        refunded = await conn.scalar(
            sa.select(orders.c.refunded_fen).where(orders.c.id == order_id)
        )
    assert refunded == 1000


async def test_a_staff_refund_with_the_longest_key_gives_the_units_back(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    o = await paid_order(client, settings, engine)
    values = {
        "orderId": o.order_id,
        "reason": "缺货",
        "idempotencyKey": "k" * 64,
        "lines": [{"lineId": 1, "quantity": 1}],
    }
    for _ in range(2):  # the same key again refunds nothing more
        refunded = await run(client, REFUND, values, o.staff)
        assert refunded["errors"] == [] and refunded["order"]["refunded"]["fen"] == 1000
    assert await level_of(engine, o.shop.store_ids[0], o.sku) == 9
    assert await refund_rows(engine, o.order_id) == [("REFUNDED", 1000)]


async def test_an_approved_refund_is_a_call_out_made_once_retried_and_failed_when_refused(
    held: Held, settings: Settings, engine: AsyncEngine
) -> None:
    client, payments, services = held.client, held.payments, held.services
    o = await paid_order(client, settings, engine)
    asked = await run(client, REQUEST, ask(o.order_id), o.member)
    assert payments.sent == []  # a request sends nothing
    payments.answer = ConnectionError("the provider is down")
    approved = await run(client, APPROVE, {"refundId": asked["refund"]["id"]}, o.staff)
    assert approved["errors"] == [] and approved["order"]["status"] == "REFUNDED"
    (sent,) = payments.sent
    row = await refund_call_row(engine, sent.reference)
    assert (row.status, row.attempts) == ("PENDING", 1)  # to be tried again
    assert row.payload == dict(sent.payload)
    found = await order_refunds(client, o.member, o.order_id)
    assert [r["status"] for r in found["refunds"]] == ["APPROVED"]

    # The provider is back but refuses this refund for good: FAILED, for head office.
    payments.answer = CallRefused("NOT_ENOUGH")
    services.clock.advance(timedelta(seconds=services.calls.policy.backoff_seconds))
    await services.calls.committed([row.id])  # as the sweep would, this call alone
    assert len(payments.sent) == 2 and {s.reference for s in payments.sent} == {sent.reference}
    row = await refund_call_row(engine, sent.reference)
    assert (row.status, row.last_error) == ("FAILED", "NOT_ENOUGH")
    found = await order_refunds(client, o.member, o.order_id)
    assert [r["status"] for r in found["refunds"]] == ["FAILED"]
    assert found["refunded"]["fen"] == 2200  # granted: head office follows the money up
