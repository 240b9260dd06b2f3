"""Platforms' pushes at ``/delivery/sf/callback`` and ``/delivery/dada/callback``: an SF
store's ready order is placed at ``FakeSfIntraCity`` through the calls out; SF's signed
pushes then name the rider, move it and end the trip, as the partner mutations would;
replays change nothing; bad signatures, old pushes and foreign orders are refused."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import dada_callback_key
from dinegraph.context import Services
from dinegraph.db.tables import stores
from dinegraph.integrations.dada import callback_token
from dinegraph.integrations.sf_intra_city import sign
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Mode, Settings
from tests.conftest import PRODUCTION_ADAPTER_VALUES, Credentials, GraphQLClient
from tests.fakes.sf_intra_city import FakeSfIntraCity
from tests.integration.test_delivery import delivery_of, ready_order
from tests.shop import Shop, new_shop, shop_client


@pytest.fixture(scope="module")
def sf() -> Iterator[FakeSfIntraCity]:
    with FakeSfIntraCity().running() as fake:
        yield fake


@pytest.fixture(scope="module")
async def sf_gql(
    settings: Settings, engine: AsyncEngine, sf: FakeSfIntraCity
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    async with shop_client(
        settings,
        engine,
        courier_report_min_interval_seconds=0,
        sf_base_url=sf.url,
        sf_dev_id=sf.dev_id,
        sf_dev_key=SecretStr(sf.dev_key),
        sf_shop_id="3243279847393",
    ) as client:
        yield client


async def carried_by(engine: AsyncEngine, shop: Shop, provider: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(stores)
            .where(stores.c.id == shop.store_ids[0])
            .values(delivery_provider=provider)
        )


async def placed(sf: FakeSfIntraCity, order: str) -> None:
    """Waits until SF has the order (the call out goes after the commit)."""
    deadline = time.monotonic() + 20
    while order not in sf.placed():
        assert time.monotonic() < deadline, sf.requests
        await asyncio.sleep(0.02)


async def push(
    http: httpx.AsyncClient, sf: FakeSfIntraCity, fields: dict[str, Any], *, key: str = ""
) -> httpx.Response:
    body = sf.push_body(fields)
    signature = sign(body, sf.dev_id, key or sf.dev_key)
    return await http.post(
        "/delivery/sf/callback",
        content=body,
        params={"sign": signature},
        headers={"content-type": "application/json"},
    )


async def test_sf_pushes_name_the_rider_move_it_and_end_the_trip(
    sf_gql: tuple[GraphQLClient, Services],
    sf: FakeSfIntraCity,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = sf_gql
    shop = await new_shop(engine)
    await carried_by(engine, shop, "SF_INTRA_CITY")
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (delivery["provider"], delivery["status"]) == ("SF_INTRA_CITY", "PENDING")
    shop_order = f"delivery-{decode_id(delivery['id'], 'Delivery', [])}"
    await placed(sf, shop_order)
    assert sf.orders[shop_order]["receive"]["user_phone"] == "13900000000"

    lat, lng = shop.centre
    taken = {
        "url_index": "rider_status",
        "shop_order_id": shop_order,
        "order_status": 10,
        "operator_name": "顺丰骑士",
        "operator_phone": "13800001111",
    }
    answer = await push(client.http, sf, taken)
    assert (answer.status_code, answer.json()["error_code"]) == (200, 0)
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert found["status"] == "ASSIGNED"
    assert found["courier"] == {"name": "顺丰骑士", "phone": "13800001111"}
    version = found["version"]
    again = await push(client.http, sf, taken)  # told twice: acknowledged, nothing new
    assert again.json()["error_code"] == 0
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert found["version"] == version

    at_store = {"shop_order_id": shop_order, "order_status": 12, "rider_lat": lat, "rider_lng": lng}
    assert (await push(client.http, sf, at_store)).json()["error_code"] == 0
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert found["delivery"]["status"] == "ARRIVED_AT_STORE"
    assert found["delivery"]["position"] == {"lat": lat, "lng": lng}

    picked = {"shop_order_id": shop_order, "order_status": 15}
    assert (await push(client.http, sf, picked)).json()["error_code"] == 0
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert (found["status"], found["delivery"]["status"]) == ("DELIVERING", "PICKED_UP")
    # A late push of an earlier step changes nothing, and is acknowledged.
    assert (await push(client.http, sf, {**taken, "order_status": 12})).json()["error_code"] == 0
    done = {"shop_order_id": shop_order, "order_status": 17}
    assert (await push(client.http, sf, done)).json()["error_code"] == 0
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert (found["status"], found["delivery"]["status"]) == ("DELIVERED", "DELIVERED")


async def test_sf_pushes_badly_signed_old_or_not_ours_are_refused(
    sf_gql: tuple[GraphQLClient, Services],
    sf: FakeSfIntraCity,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = sf_gql
    shop = await new_shop(engine)
    await carried_by(engine, shop, "SF_INTRA_CITY")
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    shop_order = f"delivery-{decode_id(delivery['id'], 'Delivery', [])}"
    taken = {
        "shop_order_id": shop_order,
        "order_status": 10,
        "operator_name": "顺丰骑士",
        "operator_phone": "13800001111",
    }
    bad = await push(client.http, sf, taken, key="not-the-key")
    assert (bad.status_code, bad.json()["error_code"]) == (401, 1002)
    old = await push(client.http, sf, {**taken, "push_time": int(time.time()) - 3600})
    assert (old.status_code, old.json()["error_code"]) == (400, 1003)
    foreign = await push(client.http, sf, {**taken, "shop_order_id": "someone-else-1"})
    assert foreign.status_code == 404
    # A delivery carried by another platform is not SF's to move.
    other = await new_shop(engine)
    other_order = await ready_order(client, settings, engine, credentials.hq_admin, other)
    theirs = (await delivery_of(client, other_order, credentials.hq_admin))["delivery"]
    not_sf = await push(
        client.http,
        sf,
        {**taken, "shop_order_id": f"delivery-{decode_id(theirs['id'], 'Delivery', [])}"},
    )
    assert (not_sf.status_code, not_sf.json()["error_msg"]) == (404, "WRONG_PROVIDER")
    # A step missed (delivered before anyone took it): refused, SF sends it again later.
    skipped = await push(client.http, sf, {**taken, "order_status": 17})
    assert skipped.status_code == 409
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (found["status"], found["courier"]) == ("PENDING", None)


def dada_push(fields: dict[str, Any]) -> bytes:
    values = sorted(str(fields[k]) for k in ("client_id", "order_id", "update_time"))
    signature = hashlib.md5("".join(values).encode()).hexdigest()
    return orjson.dumps({**fields, "signature": signature})


async def test_dada_callbacks_move_its_deliveries(
    sf_gql: tuple[GraphQLClient, Services],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = sf_gql
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    # The development Dada adapter names a courier at once; Dada's callbacks go on.
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert (delivery["provider"], delivery["status"]) == ("DADA", "ASSIGNED")
    origin = f"delivery-{decode_id(delivery['id'], 'Delivery', [])}"
    fields = {
        "client_id": "275934409",
        "order_id": origin,
        "order_status": 3,
        "cancel_reason": "",
        "cancel_from": 0,
        "update_time": int(time.time()),
        "dm_id": 666,
        "dm_name": "达达骑士",
        "dm_mobile": "13546670420",
    }
    # Dada posts to the callback URL given with the order, with that order's token.
    url = f"/delivery/dada/callback?token={callback_token(dada_callback_key(settings), origin)}"
    for wrong in ("/delivery/dada/callback", f"{url}0"):  # no token, or another's
        forged = await client.http.post(wrong, content=dada_push(fields))
        assert forged.status_code == 401, forged.text
    other = f"delivery-{decode_id(delivery['id'], 'Delivery', []) + 1}"
    theirs = callback_token(dada_callback_key(settings), other)
    forged = await client.http.post(
        f"/delivery/dada/callback?token={theirs}", content=dada_push(fields)
    )
    assert forged.status_code == 401
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert found["delivery"]["status"] == "ASSIGNED"  # nothing forged moved it
    answer = await client.http.post(url, content=dada_push(fields))
    assert answer.status_code == 200, answer.text
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert (found["status"], found["delivery"]["status"]) == ("DELIVERING", "PICKED_UP")
    replay = await client.http.post(url, content=dada_push(fields))
    assert replay.status_code == 200
    tampered = orjson.loads(dada_push(fields))
    tampered["order_status"] = 4
    tampered["order_id"] = origin + "0"
    refused = await client.http.post(url, content=orjson.dumps(tampered))
    assert refused.status_code == 401
    old = {**fields, "order_status": 4, "update_time": int(time.time()) - 3600}
    stale = await client.http.post(url, content=dada_push(old))
    assert stale.status_code == 400
    done = {**fields, "order_status": 4}
    assert (await client.http.post(url, content=dada_push(done))).status_code == 200
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert (found["status"], found["delivery"]["status"]) == ("DELIVERED", "DELIVERED")


async def test_production_sets_stores_only_to_the_platforms_it_serves(
    credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    set_provider = """mutation($input: SetDeliveryProviderInput!) {
        setStoreDeliveryProvider(input: $input) { provider errors { code field } } }"""
    async with shop_client(settings, engine, mode=Mode.PRODUCTION, **PRODUCTION_ADAPTER_VALUES) as (
        production,
        _,
    ):
        for provider, answer in (
            (  # not in DINEGRAPH_DELIVERY_PLATFORMS (达达 and 顺丰同城 here), no adapter
                "MEITUAN",
                {"provider": None, "errors": [{"code": "NOT_AVAILABLE", "field": ["provider"]}]},
            ),
            ("SF_INTRA_CITY", {"provider": "SF_INTRA_CITY", "errors": []}),
            ("OWN_RIDER", {"provider": "OWN_RIDER", "errors": []}),
            ("DADA", {"provider": "DADA", "errors": []}),
        ):
            variables = {"input": {"storeId": shop.store(), "provider": provider}}
            body = await production.execute(set_provider, variables, credentials.hq_admin)
            assert body["data"]["setStoreDeliveryProvider"] == answer, provider
    async with engine.connect() as conn:
        carrier = await conn.scalar(
            sa.select(stores.c.delivery_provider).where(stores.c.id == shop.store_ids[0])
        )
    assert carrier == "DADA"
