"""Reaching the courier: the platform's privacy number, asked of 达达 (``status/query``)
and 顺丰同城 (``getorderstatus``) when the member calls, never the rider's own number;
refusals, outages and timeouts coded; the member's own fields show no phone at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.tables import riders, stores
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import CallRefused, RetryLater
from dinegraph.domain.delivery import CourierContact, privacy_contact
from dinegraph.integrations.dada import DadaPlatform
from dinegraph.integrations.sf_intra_city import SfIntraCityPlatform
from dinegraph.integrations.sf_intra_city import sign as sf_sign
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.fakes.dada import FakeDada
from tests.fakes.sf_intra_city import FakeSfIntraCity
from tests.integration.test_carrier_choice import carriers
from tests.integration.test_delivery import MOVE, delivery_of
from tests.shop import (
    PAY,
    PLACE,
    Shop,
    line,
    new_member,
    new_shop,
    new_sku,
    place_input,
    shop_client,
)

CONTACT = """
mutation($id: ID!) {
  contactCourier(deliveryId: $id) {
    contact { number extension expiresAt } delivery { status } errors { code field }
  }
}
"""
SF_SHOP = "3243279847393"


def test_a_privacy_number_is_read_as_the_platforms_write_it() -> None:
    assert privacy_contact("17000001234") == CourierContact("17000001234")
    assert privacy_contact("17000001234,5678") == CourierContact("17000001234", "5678")
    assert privacy_contact("17000001234转5678") == CourierContact("17000001234", "5678")
    assert privacy_contact(" 17000001234-5678 ") == CourierContact("17000001234", "5678")
    assert privacy_contact("") is None
    assert privacy_contact("暂无") is None
    assert privacy_contact("17000001234,分机") is None


# --- the adapters against their platforms' local protocol servers ---------------------


@pytest.fixture
def dada() -> Iterator[FakeDada]:
    with FakeDada().running() as fake:
        yield fake


@pytest.fixture
def sf() -> Iterator[FakeSfIntraCity]:
    with FakeSfIntraCity().running() as fake:
        yield fake


def dada_adapter(
    fake: FakeDada, *, privacy: bool = True, secret: str | None = None, wait: float = 5
) -> DadaPlatform:
    return DadaPlatform(
        base_url=fake.url,
        app_key=fake.app_key,
        app_secret=secret or fake.app_secret,
        source_id=fake.source_id,
        city_code="0755",
        callback_url="https://example.invalid/dada",
        callback_key=b"test-callback-key",
        privacy_numbers=privacy,
        contact_timeout_seconds=wait,
    )


def sf_adapter(
    fake: FakeSfIntraCity, *, privacy: bool = True, key: str | None = None, wait: float = 5
) -> SfIntraCityPlatform:
    return SfIntraCityPlatform(
        base_url=fake.url,
        dev_id=fake.dev_id,
        dev_key=key or fake.dev_key,
        shop_id=SF_SHOP,
        privacy_numbers=privacy,
        contact_timeout_seconds=wait,
    )


async def test_dada_answers_the_rider_s_privacy_number_while_a_rider_carries_it(
    dada: FakeDada,
) -> None:
    dada.status["delivery-1"] = 1  # waiting for a rider
    assert await dada_adapter(dada).courier_contact(1) is None
    dada.take("delivery-1", phone="13100001111", contact="17000001234,5678")
    contact = await dada_adapter(dada).courier_contact(1)
    assert contact == CourierContact("17000001234", "5678")
    assert dada.requests[-1] == ("/api/order/status/query", "delivery-1")
    dada.status["delivery-1"] = 4  # delivered: nobody to call
    assert await dada_adapter(dada).courier_contact(1) is None
    # Without privacy numbers on the account, the rider's number is never asked for.
    asked = len(dada.requests)
    dada.status["delivery-1"] = 3
    assert await dada_adapter(dada, privacy=False).courier_contact(1) is None
    assert len(dada.requests) == asked


async def test_dada_refusals_outages_and_timeouts_are_told_apart(dada: FakeDada) -> None:
    with pytest.raises(CallRefused, match="DADA_2005"):  # no such order at Dada
        await dada_adapter(dada).courier_contact(2)
    dada.take("delivery-2", contact="17000001234,5678")
    with pytest.raises(CallRefused, match="DADA_2003"):  # Dada refuses a bad signature
        await dada_adapter(dada, secret="not-the-secret").courier_contact(2)
    dada.busy = True
    with pytest.raises(RetryLater, match="DADA_BUSY"):
        await dada_adapter(dada).courier_contact(2)
    dada.busy, dada.down = False, True
    with pytest.raises(RetryLater, match="DADA_HTTP_503"):
        await dada_adapter(dada).courier_contact(2)
    dada.down, dada.delay_seconds = False, 1.0
    with pytest.raises(RetryLater, match="DADA_TIMEOUT"):
        await dada_adapter(dada, wait=0.2).courier_contact(2)


async def test_sf_answers_the_rider_s_privacy_number_while_a_rider_carries_it(
    sf: FakeSfIntraCity,
) -> None:
    sf.status["delivery-3"] = 1  # created, no rider yet
    assert await sf_adapter(sf).courier_contact(3) is None
    sf.take("delivery-3", phone="13200002222", contact="17000005678,1234")
    assert await sf_adapter(sf).courier_contact(3) == CourierContact("17000005678", "1234")
    assert sf.requests[-1] == ("getorderstatus", "delivery-3")
    sf.status["delivery-3"] = 17  # delivered
    assert await sf_adapter(sf).courier_contact(3) is None
    asked = len(sf.requests)
    sf.status["delivery-3"] = 15
    assert await sf_adapter(sf, privacy=False).courier_contact(3) is None
    assert len(sf.requests) == asked


async def test_sf_refusals_outages_and_timeouts_are_told_apart(sf: FakeSfIntraCity) -> None:
    with pytest.raises(CallRefused, match="SF_2002"):  # no such order at SF
        await sf_adapter(sf).courier_contact(4)
    sf.take("delivery-4", contact="17000005678,1234")
    with pytest.raises(CallRefused, match="SF_1002"):  # SF refuses a bad signature
        await sf_adapter(sf, key="not-the-key").courier_contact(4)
    sf.down = True
    with pytest.raises(RetryLater, match="SF_HTTP_503"):
        await sf_adapter(sf).courier_contact(4)
    sf.down, sf.delay_seconds = False, 1.0
    with pytest.raises(RetryLater, match="SF_TIMEOUT"):
        await sf_adapter(sf, wait=0.2).courier_contact(4)


# --- contactCourier, through GraphQL, on the platforms' local protocol servers ----------


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeDada, FakeSfIntraCity]]:
    with FakeDada().running() as dada, FakeSfIntraCity().running() as sf:
        yield dada, sf


@pytest.fixture(scope="module")
async def real_gql(
    settings: Settings, engine: AsyncEngine, fakes: tuple[FakeDada, FakeSfIntraCity]
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    dada, sf = fakes
    async with shop_client(
        settings,
        engine,
        dada_base_url=dada.url,
        dada_app_key=dada.app_key,
        dada_app_secret=SecretStr(dada.app_secret),
        dada_source_id=dada.source_id,
        dada_privacy_numbers=True,
        sf_base_url=sf.url,
        sf_dev_id=sf.dev_id,
        sf_dev_key=SecretStr(sf.dev_key),
        sf_shop_id=SF_SHOP,
        sf_privacy_numbers=True,
        courier_contact_timeout_seconds=0.5,
    ) as client:
        yield client


async def member_order(
    client: GraphQLClient,
    settings: Settings,
    engine: AsyncEngine,
    staff: dict[str, str],
    shop: Shop,
) -> tuple[str, dict[str, str]]:
    """A paid delivery order moved to READY (which dispatches it), and its member."""
    sku = await new_sku(engine, price_fen=3000, stock={shop.store_ids[0]: 10})
    _, member = await new_member(settings, engine)
    body = await client.execute(
        PLACE, {"input": place_input(line(sku, 1), address=shop.near(2000))}, member
    )
    order_id = str(body["data"]["placeOrder"]["order"]["id"])
    await client.execute(PAY, {"orderId": order_id}, member)
    for status in ("ACCEPTED", "PREPARING", "READY"):
        moved = await client.execute(
            MOVE, {"input": {"orderId": order_id, "status": status}}, staff
        )
        assert moved["data"]["updateOrderStatus"]["errors"] == [], moved
    return order_id, member


async def placed(fake: FakeDada | FakeSfIntraCity, order: str) -> None:
    deadline = time.monotonic() + 20
    while order not in fake.placed():
        assert time.monotonic() < deadline, fake.requests
        await asyncio.sleep(0.02)


async def contact(client: GraphQLClient, delivery: str, headers: dict[str, str]) -> Any:
    body = await client.execute(CONTACT, {"id": delivery}, headers)
    assert "errors" not in body, body
    return body["data"]["contactCourier"]


def code(answer: Any) -> str:
    assert answer["contact"] is None, answer
    return str(answer["errors"][0]["code"])


async def test_the_member_calls_a_dada_rider_on_the_privacy_number_only(
    real_gql: tuple[GraphQLClient, Services],
    fakes: tuple[FakeDada, FakeSfIntraCity],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = real_gql
    dada, _ = fakes
    shop = await new_shop(engine)  # its carrier: DADA
    staff = credentials.hq_admin
    order_id, member = await member_order(client, settings, engine, staff, shop)
    delivery = (await delivery_of(client, order_id, staff))["delivery"]["id"]
    origin = f"delivery-{decode_id(delivery, 'Delivery', [])}"
    await placed(dada, origin)
    assert code(await contact(client, delivery, member)) == "NOT_AVAILABLE"  # no rider yet

    dada.take(origin, name="李骑士", phone="13100001111", contact="17000001234,5678")
    callback = f"/delivery/dada/callback?{dada.callback_query(origin)}"
    pushed = await client.http.post(callback, json=dada.callback_fields(origin, 2))
    assert pushed.status_code == 200, pushed.text
    answer = await contact(client, delivery, member)
    assert answer["errors"] == []
    assert answer["contact"] == {"number": "17000001234", "extension": "5678", "expiresAt": None}
    assert answer["delivery"]["status"] == "ASSIGNED"
    # The rider's own number (from the callback) is the store's to see, never the member's.
    mine = (await delivery_of(client, order_id, member))["delivery"]["courier"]
    assert mine == {"name": "李骑士", "phone": None}
    theirs = (await delivery_of(client, order_id, staff))["delivery"]["courier"]
    assert theirs == {"name": "李骑士", "phone": "13100001111"}
    assert (await contact(client, delivery, staff))["contact"]["number"] == "17000001234"

    _, stranger = await new_member(settings, engine)
    assert code(await contact(client, delivery, stranger)) == "NOT_FOUND"
    assert code(await contact(client, delivery, credentials.partner)) == "NOT_FOUND"

    dada.down = True
    try:
        assert code(await contact(client, delivery, member)) == "PROVIDER_UNAVAILABLE"
    finally:
        dada.down = False
    dada.delay_seconds = 1.5  # past DINEGRAPH_COURIER_CONTACT_TIMEOUT_SECONDS
    try:
        assert code(await contact(client, delivery, member)) == "PROVIDER_UNAVAILABLE"
    finally:
        dada.delay_seconds = 0

    for status in (100, 3, 4):  # at the store, on its way, delivered
        dada.status[origin] = status
        pushed = await client.http.post(callback, json=dada.callback_fields(origin, status))
        assert pushed.status_code == 200, pushed.text
    assert code(await contact(client, delivery, member)) == "NOT_AVAILABLE"  # it is over


async def test_the_member_calls_an_sf_rider_on_the_privacy_number_only(
    real_gql: tuple[GraphQLClient, Services],
    fakes: tuple[FakeDada, FakeSfIntraCity],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = real_gql
    _, sf = fakes
    shop = await new_shop(engine)
    staff = credentials.hq_admin
    assert (await carriers(client, staff, shop, ["SF_INTRA_CITY"], "PREFERRED"))["errors"] == []
    order_id, member = await member_order(client, settings, engine, staff, shop)
    delivery = (await delivery_of(client, order_id, staff))["delivery"]["id"]
    order = f"delivery-{decode_id(delivery, 'Delivery', [])}"
    await placed(sf, order)
    sf.take(order, name="王骑士", phone="13200002222", contact="17000005678,1234")
    body = sf.push_body(sf.push_fields(order, 10, None))
    pushed = await client.http.post(
        "/delivery/sf/callback", content=body, params={"sign": sign_sf(sf, body)}
    )
    assert pushed.json()["error_code"] == 0, pushed.text
    answer = await contact(client, delivery, member)
    assert answer["contact"] == {"number": "17000005678", "extension": "1234", "expiresAt": None}
    mine = (await delivery_of(client, order_id, member))["delivery"]["courier"]
    assert mine == {"name": "王骑士", "phone": None}
    sf.status[order] = 2  # SF cancelled it meanwhile: it has no rider to reach
    assert code(await contact(client, delivery, member)) == "NOT_AVAILABLE"


def sign_sf(fake: FakeSfIntraCity, body: bytes) -> str:
    return sf_sign(body, fake.dev_id, fake.dev_key)


async def test_own_riders_are_reached_through_the_store_not_contactcourier(
    real_gql: tuple[GraphQLClient, Services],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = real_gql
    shop = await new_shop(engine)
    async with SqlUnitOfWork(engine) as uow:
        conn = uow._conn
        assert conn is not None
        await conn.execute(
            stores.update()
            .where(stores.c.id == shop.store_ids[0])
            .values(delivery_provider="OWN_RIDER")
        )
        await conn.execute(
            riders.insert().values(
                store_id=shop.store_ids[0],
                name="店骑手",
                phone="13700000021",
                active=True,
                busy=False,
            )
        )
        await uow.commit()
    staff = credentials.hq_admin
    order_id, member = await member_order(client, settings, engine, staff, shop)
    found = (await delivery_of(client, order_id, member))["delivery"]
    assert found["status"] == "ASSIGNED" and found["courier"]["phone"] is None
    assert code(await contact(client, found["id"], member)) == "NOT_AVAILABLE"
