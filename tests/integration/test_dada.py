"""The 达达 adapter against ``FakeDada``: signed requests, one order per delivery however
often it is sent, refusals for good against outages worth another try; and through the
relay of calls out, an outage then recovery places the order once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.calls import SqlCallStore
from dinegraph.db.engine import create_engine
from dinegraph.db.tables import outbound_calls
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import CallRefused, OutboundCall, RetryLater
from dinegraph.domain.delivery import CallOff, Delivery, DeliveryStatus, Provider
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.ports import DispatchRequest
from dinegraph.domain.services.dispatch import dispatch_call, request_of
from dinegraph.integrations.dada import DadaPlatform, callback_token, sign
from dinegraph.outbound import CallRelay, RelayPolicy
from dinegraph.settings import Settings
from tests.databases import fresh_database
from tests.fakes.dada import FakeDada

REQUEST = DispatchRequest(
    delivery_id=41,
    order_id=7,
    store_name="味知堂 福田店",
    pickup=GeoPoint(22.54, 114.05),
    dropoff=GeoPoint(22.55, 114.06),
    address="1号楼 101",
    contact_name="王女士",
    contact_phone="13900000000",
    store_code="SZ-FT-01",
    cargo_fen=5800,
)


@pytest.fixture
def dada() -> Iterator[FakeDada]:
    with FakeDada().running() as fake:
        yield fake


def adapter(fake: FakeDada, *, secret: str | None = None, timeout: float = 5) -> DadaPlatform:
    return DadaPlatform(
        base_url=fake.url,
        app_key=fake.app_key,
        app_secret=secret or fake.app_secret,
        source_id=fake.source_id,
        city_code="0755",
        callback_url="https://example.invalid/dada",
        callback_key=b"test-callback-key",
        timeout_seconds=timeout,
    )


def test_the_signature_is_dada_s_md5_of_sorted_fields_between_the_secret() -> None:
    fields = {"v": "1.0", "app_key": "k", "body": "{}", "signature": "ignored"}
    expected = hashlib.md5(b"sapp_keykbody{}v1.0s").hexdigest().upper()
    assert sign(fields, "s") == expected


async def test_an_order_is_placed_once_however_often_it_is_sent(dada: FakeDada) -> None:
    platform = adapter(dada)
    assert await platform.dispatch(REQUEST) is None  # Dada names the courier later
    assert dada.placed() == ["delivery-41"]
    order = dada.orders["delivery-41"]
    assert (order["shop_no"], order["city_code"], order["cargo_price"]) == ("SZ-FT-01", "0755", 58)
    assert (order["receiver_phone"], order["receiver_lat"]) == ("13900000000", 22.55)
    # Dada's callbacks carry no secret: the URL given with the order holds its token.
    token = callback_token(b"test-callback-key", "delivery-41")
    assert order["callback"] == f"https://example.invalid/dada?token={token}"
    # The answer was lost and the call made again: Dada has it, so that is success.
    assert await platform.dispatch(REQUEST) is None
    assert dada.placed() == ["delivery-41"]
    assert [p for p, _ in dada.requests] == [
        "/api/order/addOrder",
        "/api/order/addOrder",
        "/api/order/status/query",
    ]

    await platform.cancel(41)
    assert dada.status["delivery-41"] == 5
    assert dada.cancel_reasons["delivery-41"] == (10000, "顾客已退款")  # other, in words
    await platform.cancel(41)  # again: already cancelled is success
    with pytest.raises(CallRefused) as refused:
        await platform.cancel(99)  # never placed
    assert refused.value.reason == "DADA_2005"


async def test_an_order_dada_cancelled_or_let_expire_is_published_again(dada: FakeDada) -> None:
    """Our delivery still waits for a courier while Dada has given its order up (the callback
    saying so lost): the dispatch made again re-adds it under the same origin id."""
    platform = adapter(dada)
    await platform.dispatch(REQUEST)
    for given_up in (5, 7):  # cancelled, expired
        dada.status["delivery-41"] = given_up
        dada.requests.clear()
        assert await platform.dispatch(REQUEST) is None
        assert [p for p, _ in dada.requests] == [
            "/api/order/addOrder",  # refused: Dada keeps the origin id
            "/api/order/status/query",
            "/api/order/reAddOrder",
        ]
        assert dada.status["delivery-41"] == 1  # waiting for a rider again
    assert dada.placed() == ["delivery-41"]
    # An order Dada still has in hand is not published twice.
    dada.requests.clear()
    await platform.dispatch(REQUEST)
    assert "/api/order/reAddOrder" not in [p for p, _ in dada.requests]


async def test_an_order_no_rider_took_is_called_off_with_dada_s_reason(dada: FakeDada) -> None:
    platform = adapter(dada)
    await platform.dispatch(REQUEST)
    await platform.cancel(41, CallOff.NO_RIDER)
    assert dada.cancel_reasons["delivery-41"] == (1, "没有配送员接单")


async def test_refusals_are_for_good_and_outages_are_worth_another_try(dada: FakeDada) -> None:
    with pytest.raises(CallRefused) as refused:
        await adapter(dada, secret="not-the-secret").dispatch(REQUEST)
    assert refused.value.reason == "DADA_2003"
    assert dada.placed() == []

    dada.down = True
    with pytest.raises(RetryLater) as later:
        await adapter(dada).dispatch(REQUEST)
    assert later.value.reason == "DADA_HTTP_503"
    dada.down, dada.busy = False, True
    with pytest.raises(RetryLater) as later:
        await adapter(dada).dispatch(REQUEST)
    assert later.value.reason == "DADA_BUSY"
    dada.busy = False

    dada.hold_next_order()
    with pytest.raises(RetryLater) as later:
        await adapter(dada, timeout=0.3).dispatch(REQUEST)
    assert later.value.reason == "DADA_TIMEOUT"
    assert await asyncio.to_thread(dada.abandoned.wait, 10)
    assert dada.placed() == []

    closed = DadaPlatform(
        base_url="http://127.0.0.1:9",
        app_key="k",
        app_secret="s",
        source_id="1",
        city_code="0755",
        callback_url="",
        callback_key=b"k",
    )
    with pytest.raises(RetryLater) as later:
        await closed.dispatch(REQUEST)
    assert later.value.reason == "DADA_UNREACHABLE"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url)
    yield engine
    await engine.dispose()


async def test_through_an_outage_the_relay_places_the_order_once(
    dada: FakeDada, engine: AsyncEngine
) -> None:
    clock = [datetime(2026, 12, 2, 12, 0, tzinfo=UTC)]
    relay = CallRelay(RelayPolicy(backoff_seconds=5, timeout_seconds=5))
    relay.bind(SqlCallStore(engine), lambda: clock[0])
    platform = adapter(dada)

    async def place(call: OutboundCall) -> None:
        await platform.dispatch(request_of(call.payload))

    relay.register("delivery.dispatch", place)
    delivery = Delivery(
        id=41,
        order_id=7,
        store_id=1,
        member_id=1,
        provider=Provider.DADA,
        status=DeliveryStatus.PENDING,
        courier=None,
        rider_id=None,
        position=None,
        position_at=None,
        received_at=None,
        destination=REQUEST.dropoff,
        origin=REQUEST.pickup,
        eta_seconds=None,
        version=1,
        created_at=clock[0],
        updated_at=clock[0],
    )
    dada.down = True
    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(dispatch_call(delivery, REQUEST))
        await uow.commit()
    for _ in range(3):  # Dada stays down for three attempts
        clock[0] += timedelta(minutes=5)
        await relay.sweep()
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(outbound_calls))).one()
    assert (row.status, row.attempts, row.last_error) == ("PENDING", 4, "DADA_HTTP_503")
    assert dada.placed() == []

    dada.down = False
    clock[0] += timedelta(minutes=5)
    assert await relay.sweep() == 1
    clock[0] += timedelta(days=1)
    assert await relay.sweep() == 0
    assert dada.placed() == ["delivery-41"]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(outbound_calls))).one()
    assert (row.status, row.attempts, row.payload) == ("DONE", 5, None)
