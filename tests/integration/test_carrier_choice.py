"""Choosing the carrier: a store's platforms quote at dispatch, its rule picks one, the
quotes and the choice are kept; a platform that refuses the order hands it to the next.
Against the development couriers and against ``FakeDada`` + ``FakeSfIntraCity``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.personal import event_sealer
from dinegraph.db.tables import delivery_quotes, stores
from dinegraph.events.brokers import create_broker
from dinegraph.resolvers.ids import decode_id
from dinegraph.schedules import hand_on_round
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.fakes.dada import FakeDada
from tests.fakes.sf_intra_city import FakeSfIntraCity
from tests.integration.test_delivery import delivery_of, ready_order
from tests.shop import Shop, new_shop, shop_client

SET = """mutation($input: SetDeliveryProviderInput!) {
  setStoreDeliveryProvider(input: $input) { provider errors { code field } } }"""
STORE = "query($id: ID!) { store(id: $id) { deliveryProvider deliveryPlatforms carrierRule } }"


async def carriers(
    client: GraphQLClient, staff: dict[str, str], shop: Shop, platforms: list[str], rule: str
) -> Any:
    variables = {
        "input": {
            "storeId": shop.store(),
            "provider": platforms[0] if platforms else "DADA",
            "platforms": platforms,
            "rule": rule,
        }
    }
    body = await client.execute(SET, variables, staff)
    return body["data"]["setStoreDeliveryProvider"]


async def quotes_of(engine: AsyncEngine, delivery_id: int) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                delivery_quotes.c.provider,
                delivery_quotes.c.fee_fen,
                delivery_quotes.c.rank,
                delivery_quotes.c.refused,
                delivery_quotes.c.chosen,
            )
            .where(delivery_quotes.c.delivery_id == delivery_id)
            .order_by(delivery_quotes.c.id)
        )
        return [tuple(r) for r in rows]


async def settled(client: GraphQLClient, order_id: str, staff: dict[str, str]) -> Any:
    """The delivery once its dispatch call has run (it goes after the commit)."""
    deadline = time.monotonic() + 20
    while True:
        delivery = (await delivery_of(client, order_id, staff))["delivery"]
        if delivery["status"] != "PENDING" or time.monotonic() > deadline:
            return delivery
        await asyncio.sleep(0.02)


async def test_the_store_s_rule_picks_among_the_quotes_and_they_are_kept(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    both = ["DADA", "SF_INTRA_CITY"]
    assert await carriers(client, credentials.hq_admin, shop, both, "FASTEST") == {
        "provider": "DADA",
        "errors": [],
    }
    store = await client.execute(STORE, {"id": shop.store()})
    assert store["data"]["store"] == {
        "deliveryProvider": "DADA",
        "deliveryPlatforms": both,
        "carrierRule": "FASTEST",
    }
    # The development couriers quote a little dearer and quicker down the list: SF is the
    # fastest, Dada the cheapest.
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = await settled(client, order_id, credentials.hq_admin)
    quotes = await quotes_of(engine, decode_id(delivery["id"], "Delivery", []))
    assert (delivery["provider"], delivery["status"]) == ("SF_INTRA_CITY", "ASSIGNED"), quotes
    assert [(p, rank, chosen) for p, _, rank, _, chosen in quotes] == [
        ("DADA", 1, False),
        ("SF_INTRA_CITY", 0, True),
    ]
    assert quotes[0][1] < quotes[1][1]  # Dada quoted less

    assert (await carriers(client, credentials.hq_admin, shop, both, "CHEAPEST"))["errors"] == []
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = await settled(client, order_id, credentials.hq_admin)
    assert (delivery["provider"], delivery["status"]) == ("DADA", "ASSIGNED")


async def test_bad_platform_lists_are_refused_and_change_nothing(
    client: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    for platforms in (["DADA", "OWN_RIDER"], ["DADA", "DADA"]):
        answer = await carriers(client, credentials.hq_admin, shop, platforms, "CHEAPEST")
        assert answer == {
            "provider": None,
            "errors": [{"code": "INVALID_INPUT", "field": ["platforms"]}],
        }
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(stores).where(stores.c.id == shop.store_ids[0]))).one()
    assert (row.delivery_platforms, row.carrier_rule) == ("", "PREFERRED")
    refused = await carriers(client, credentials.manager_store_1, shop, ["DADA"], "CHEAPEST")
    assert refused["errors"][0]["code"] == "FORBIDDEN"


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
        sf_base_url=sf.url,
        sf_dev_id=sf.dev_id,
        sf_dev_key=SecretStr(sf.dev_key),
        sf_shop_id="3243279847393",
    ) as client:
        yield client


async def placed_at(fake: FakeDada | FakeSfIntraCity, order: str) -> None:
    deadline = time.monotonic() + 20
    while order not in fake.placed():
        assert time.monotonic() < deadline, fake.requests
        await asyncio.sleep(0.02)


async def test_the_cheapest_platform_refuses_and_the_next_one_carries_it(
    real_gql: tuple[GraphQLClient, Services],
    fakes: tuple[FakeDada, FakeSfIntraCity],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = real_gql
    dada, sf = fakes
    shop = await new_shop(engine)
    both = ["DADA", "SF_INTRA_CITY"]
    assert (await carriers(client, credentials.hq_admin, shop, both, "CHEAPEST"))["errors"] == []
    dada.fee_fen, sf.fee_fen = 900, 800
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    number = decode_id(delivery["id"], "Delivery", [])
    await placed_at(sf, f"delivery-{number}")  # SF quoted less: it got the order
    assert f"delivery-{number}" not in dada.placed()
    assert await quotes_of(engine, number) == [
        ("DADA", 900, 1, None, False),
        ("SF_INTRA_CITY", 800, 0, None, True),
    ]
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (found["provider"], found["status"]) == ("SF_INTRA_CITY", "PENDING")

    # Next time SF quotes less but refuses the order itself: Dada carries it.
    sf.refuse_create = True
    try:
        order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
        delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
        number = decode_id(delivery["id"], "Delivery", [])
        await placed_at(dada, f"delivery-{number}")
    finally:
        sf.refuse_create = False
    assert f"delivery-{number}" not in sf.placed()
    quotes = await quotes_of(engine, number)
    assert quotes == [
        ("DADA", 900, 1, None, True),
        ("SF_INTRA_CITY", 800, 0, "SF_2003", False),
    ]
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (found["provider"], found["status"]) == ("DADA", "PENDING")

    # A platform that will not quote is not tried at all.
    sf.refuse_orders = True
    try:
        order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
        delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
        number = decode_id(delivery["id"], "Delivery", [])
        await placed_at(dada, f"delivery-{number}")
    finally:
        sf.refuse_orders = False
    assert [q[3] for q in await quotes_of(engine, number)] == [None, "SF_2003"]
    assert f"delivery-{number}" not in sf.placed()


async def test_no_rider_in_time_calls_the_platform_off_and_asks_the_next(
    real_gql: tuple[GraphQLClient, Services],
    fakes: tuple[FakeDada, FakeSfIntraCity],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, services = real_gql
    dada, sf = fakes
    shop = await new_shop(engine)
    both = ["DADA", "SF_INTRA_CITY"]
    assert (await carriers(client, credentials.hq_admin, shop, both, "CHEAPEST"))["errors"] == []
    dada.fee_fen, sf.fee_fen = 900, 800
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    number = decode_id(delivery["id"], "Delivery", [])
    await placed_at(sf, f"delivery-{number}")
    broker = create_broker("memory://", SqlOutbox(engine), event_sealer(engine))
    # Four minutes on, SF still has no rider: too soon to give up on it. (Earlier tests'
    # deliveries waiting longer may be handed on meanwhile.)
    services.clock.advance(timedelta(minutes=4))
    await hand_on_round(engine, broker, services, 300)
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert found["provider"] == "SF_INTRA_CITY"
    services.clock.advance(timedelta(minutes=2))
    assert await hand_on_round(engine, broker, services, 300) >= 1
    await placed_at(dada, f"delivery-{number}")  # the next platform is asked
    deadline = time.monotonic() + 20
    while sf.status.get(f"delivery-{number}") != 2:  # and SF's order called off
        assert time.monotonic() < deadline, sf.requests
        await asyncio.sleep(0.02)
    assert sf.cancel_reasons[f"delivery-{number}"] == (313, "无骑手接单，改由其他平台配送")
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (found["provider"], found["status"]) == ("DADA", "PENDING")
    assert await quotes_of(engine, number) == [
        ("DADA", 900, 1, None, True),
        ("SF_INTRA_CITY", 800, 0, "NO_RIDER", False),
    ]
    # Dada is the last platform: past its time too, the delivery waits there.
    services.clock.advance(timedelta(minutes=6))
    await hand_on_round(engine, broker, services, 300)
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (found["provider"], found["status"]) == ("DADA", "PENDING")
    assert f"delivery-{number}" in dada.placed() and dada.status[f"delivery-{number}"] == 1
