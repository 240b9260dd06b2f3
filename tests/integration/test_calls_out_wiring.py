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
from dinegraph.domain.delivery import Courier, Provider
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.ports import DispatchRequest
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

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        self.check()
        self.dispatched.append(request.delivery_id)
        return Courier("赵师傅", "13900001111")

    async def cancel(self, delivery_id: int) -> None:
        self.check()
        self.cancelled.append(delivery_id)


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
    assert platform.cancelled == [delivery_id]
    assert (await call_row(engine, "delivery.cancel", key)).status == "DONE"
    services.clock.advance(timedelta(days=1))
    await services.calls.sweep()
    assert platform.dispatched == [delivery_id] and platform.cancelled == [delivery_id]
