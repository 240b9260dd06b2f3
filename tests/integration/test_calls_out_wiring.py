"""The calls out the app makes: the text of a login code, a courier asked for and called
off. Each is recorded with its commit and made after it; an outage delays it, a refusal
fails it for an operator, and neither makes it twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.tables import outbound_calls
from dinegraph.domain.delivery import CallOff, Courier, CourierContact, Provider
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.ports import DeliveryQuote, DispatchRequest
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_delivery import delivery_of, ready_order
from tests.integration.test_members import REQUEST_CODE, new_phone
from tests.shop import new_shop, next_noon


class Outage:
    """A provider that refuses with ``error`` while it is set."""

    def __init__(self) -> None:
        self.error: ErrorCode | None = None

    def check(self) -> None:
        if self.error is not None:
            raise DomainError(self.error)


class FlakySms(Outage):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    async def send_login_code(self, phone: str, code: str) -> None:
        self.check()
        self.sent.append((phone, code))


class FlakyPlatform(Outage):
    def __init__(self) -> None:
        super().__init__()
        self.dispatched: list[int] = []
        self.cancelled: list[int] = []
        self.reasons: list[CallOff] = []

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        self.check()
        self.dispatched.append(request.delivery_id)
        return Courier("赵师傅", "13900001111")

    async def cancel(self, delivery_id: int, why: CallOff = CallOff.REFUNDED) -> None:
        self.check()
        self.cancelled.append(delivery_id)
        self.reasons.append(why)

    async def quote(self, request: DispatchRequest) -> DeliveryQuote:
        self.check()
        return DeliveryQuote(800, 1800)

    async def courier_contact(self, delivery_id: int) -> CourierContact | None:
        return None


@pytest.fixture
def sms() -> FlakySms:
    return FlakySms()


@pytest.fixture
def platform() -> FlakyPlatform:
    return FlakyPlatform()


@pytest.fixture
async def app_client(
    settings: Settings, engine: AsyncEngine, sms: FlakySms, platform: FlakyPlatform
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    services = default_services(settings)
    orders = services.orders
    platforms = {Provider.DADA: platform}
    services = replace(
        services,
        sms=sms,
        clock=Clock(next_noon()),
        orders=replace(orders, delivery=replace(orders.delivery, platforms=platforms)),
    )
    app = create_app(settings, engine, services)
    # Calls other tests left due on the shared database (an unpaid order cancelled by a
    # sweep run on a bare unit of work) are made first, so each test counts its own.
    await services.calls.sweep()
    sms.sent.clear()
    platform.dispatched.clear()
    platform.cancelled.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield GraphQLClient(c), services


async def call_row(engine: AsyncEngine, kind: str, key: str) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbound_calls).where(
                    outbound_calls.c.kind == kind, outbound_calls.c.key == key
                )
            )
        ).all()
    assert len(rows) == 1, rows
    return rows[0]


async def sms_row(engine: AsyncEngine, phone: str) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbound_calls).where(outbound_calls.c.kind == "sms.login_code")
            )
        ).all()
    mine = [r for r in rows if isinstance(r.payload, dict) and r.payload["phone"] == phone]
    assert len(mine) == 1, rows
    return mine[0]


async def test_a_login_code_is_texted_after_an_outage_once(
    app_client: tuple[GraphQLClient, Services], sms: FlakySms, engine: AsyncEngine
) -> None:
    client, services = app_client
    phone = new_phone()
    sms.error = ErrorCode.RATE_LIMITED
    body = await client.execute(REQUEST_CODE, {"phone": phone})
    assert body["data"]["requestLoginCode"]["errors"] == []  # the code waits for the gateway
    row = await sms_row(engine, phone)
    assert (row.status, row.attempts, row.last_error) == ("PENDING", 1, "RATE_LIMITED")
    assert sms.sent == []

    sms.error = None
    assert await services.calls.sweep() == 0  # not due before its backoff
    services.clock.advance(timedelta(seconds=services.calls.policy.backoff_seconds))
    assert await services.calls.sweep() == 1
    assert [p for p, _ in sms.sent] == [phone]
    row = await call_row(engine, "sms.login_code", row.key)
    assert (row.status, row.attempts, row.payload) == ("DONE", 2, None)
    services.clock.advance(timedelta(hours=1))
    assert await services.calls.sweep() == 0
    assert len(sms.sent) == 1


async def test_a_refused_text_fails_at_once_and_an_expired_code_is_not_sent(
    app_client: tuple[GraphQLClient, Services], sms: FlakySms, engine: AsyncEngine
) -> None:
    client, services = app_client
    phone = new_phone()
    sms.error = ErrorCode.INVALID_PHONE
    assert (await client.execute(REQUEST_CODE, {"phone": phone}))["data"]["requestLoginCode"][
        "errors"
    ] == []
    row = await sms_row(engine, phone)
    assert (row.status, row.attempts, row.last_error) == ("FAILED", 1, "INVALID_PHONE")
    assert row.payload["phone"] == phone  # kept for the operator

    # An operator retries it after the code expired: nothing is texted.
    sms.error = None
    services.clock.advance(timedelta(minutes=6))
    assert await services.calls.retry(row.id) is not None
    assert await services.calls.sweep() == 1
    row = await call_row(engine, "sms.login_code", row.key)
    assert (row.status, row.last_error) == (
        "FAILED",
        "EXPIRED: the code expired before it could be sent",
    )
    assert sms.sent == []


async def test_a_courier_is_asked_for_through_an_outage_and_called_off_once(
    app_client: tuple[GraphQLClient, Services],
    platform: FlakyPlatform,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, services = app_client
    shop = await new_shop(engine)
    platform.error = ErrorCode.RATE_LIMITED
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (delivery["status"], delivery["provider"]) == ("PENDING", "DADA")
    delivery_id = decode_id(delivery["id"], "Delivery", ["id"])
    key = f"delivery-{delivery_id}"
    row = await call_row(engine, "delivery.dispatch", key)
    assert (row.status, row.last_error) == ("PENDING", "RATE_LIMITED")
    assert row.payload["contactPhone"] == "13900000000"

    platform.error = None
    services.clock.advance(timedelta(seconds=services.calls.policy.backoff_seconds))
    assert await services.calls.sweep() == 1
    assert platform.dispatched == [delivery_id]
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (delivery["status"], delivery["courier"]) == (
        "ASSIGNED",
        {"name": "赵师傅", "phone": "13900001111"},
    )
    row = await call_row(engine, "delivery.dispatch", key)
    assert (row.status, row.payload) == ("DONE", None)

    refund = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
        order { status } errors { code } } }"""
    body = await client.execute(
        refund,
        {"input": {"orderId": order_id, "reason": "顾客不要了", "idempotencyKey": "r"}},
        credentials.hq_admin,
    )
    assert body["data"]["refundOrder"]["errors"] == []
    assert (platform.cancelled, platform.reasons) == ([delivery_id], [CallOff.REFUNDED])
    assert (await call_row(engine, "delivery.cancel", key)).status == "DONE"
    services.clock.advance(timedelta(days=1))
    await services.calls.sweep()
    assert platform.dispatched == [delivery_id] and platform.cancelled == [delivery_id]


CALLS = """
query Calls($status: [OutboundCallStatus!], $kind: String, $first: Int, $after: String) {
  outboundCalls(status: $status, kind: $kind, first: $first, after: $after) {
    edges { cursor node { id kind key status attempts lastError nextAttemptAt createdAt doneAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RETRY = """
mutation Retry($input: RetryOutboundCallInput!) {
  retryOutboundCall(input: $input) {
    call { id status attempts lastError } errors { code field message }
  }
}
"""


async def test_head_office_sees_stuck_calls_and_retries_one(
    app_client: tuple[GraphQLClient, Services],
    sms: FlakySms,
    engine: AsyncEngine,
    credentials: Credentials,
) -> None:
    client, services = app_client
    hq = credentials.hq_admin
    sms.error = ErrorCode.INVALID_PHONE
    phones = [new_phone() for _ in range(3)]
    for phone in phones:
        await client.execute(REQUEST_CODE, {"phone": phone})
    keys = [(await sms_row(engine, p)).key for p in phones]

    body = await client.execute(
        CALLS, {"status": ["FAILED"], "kind": "sms.login_code", "first": 2}, hq
    )
    page = body["data"]["outboundCalls"]
    nodes = [e["node"] for e in page["edges"]]
    assert [n["key"] for n in nodes] == [keys[2], keys[1]]  # newest first
    assert nodes[0]["status"] == "FAILED" and nodes[0]["lastError"] == "INVALID_PHONE"
    assert nodes[0]["attempts"] == 1 and nodes[0]["doneAt"] is None
    assert page["pageInfo"]["hasNextPage"] is True
    body = await client.execute(
        CALLS,
        {"status": ["FAILED"], "kind": "sms.login_code", "after": page["pageInfo"]["endCursor"]},
        hq,
    )
    later = [e["node"]["key"] for e in body["data"]["outboundCalls"]["edges"]]
    assert later[0] == keys[0] and keys[1] not in later and keys[2] not in later
    none = await client.execute(CALLS, {"status": ["DONE"], "kind": "nobody.calls"}, hq)
    assert none["data"]["outboundCalls"]["edges"] == []

    # Only head office: operators, store managers and members are refused, with a code.
    for who, code in (
        (credentials.operator, "FORBIDDEN"),
        (credentials.manager_store_1, "FORBIDDEN"),
        (credentials.member, "FORBIDDEN"),
        ({}, "UNAUTHENTICATED"),
    ):
        refused = await client.execute(CALLS, {}, who)
        assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == code
        answer = await client.execute(RETRY, {"input": {"id": nodes[0]["id"]}}, who)
        assert answer["data"]["retryOutboundCall"]["errors"][0]["code"] == code
    bad = await client.execute(CALLS, {"after": "bm90LWEtY3Vyc29y"}, hq)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    bad = await client.execute(CALLS, {"first": 101}, hq)
    assert bad["errors"][0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"
    node = await client.execute(
        "query($id: ID!) { node(id: $id) { ... on OutboundCall { key } } }",
        {"id": nodes[0]["id"]},
        hq,
    )
    assert node["data"]["node"] == {"key": keys[2]}

    sms.error = None
    answer = (await client.execute(RETRY, {"input": {"id": nodes[0]["id"]}}, hq))["data"][
        "retryOutboundCall"
    ]
    assert answer["errors"] == []
    assert answer["call"]["status"] == "PENDING" and answer["call"]["attempts"] == 0
    assert await services.calls.sweep() >= 1
    assert [p for p, _ in sms.sent] == [phones[2]]
    assert (await call_row(engine, "sms.login_code", keys[2])).status == "DONE"

    # A call that is not FAILED, an unknown call and a wrong id change nothing.
    for id, code in (
        (nodes[0]["id"], "INVALID_TRANSITION"),
        ("T3V0Ym91bmRDYWxsOjk5OTk5OTk=", "NOT_FOUND"),  # OutboundCall:9999999
        ("nonsense", "INVALID_ID"),
    ):
        answer = (await client.execute(RETRY, {"input": {"id": id}}, hq))["data"][
            "retryOutboundCall"
        ]
        assert answer["call"] is None and answer["errors"][0]["code"] == code
    assert (await call_row(engine, "sms.login_code", keys[2])).status == "DONE"
    assert sms.sent == [(phones[2], sms.sent[0][1])]
