"""Deliveries: dispatch, partner reports, ETA, privacy, replay and pruning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db import identity as identity_db
from dinegraph.db.tables import courier_positions, riders, stores
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.services.delivery import prune_positions
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import new_api_key
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
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

MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""
DELIVERY = """
query($id: ID!) {
  order(id: $id) {
    status
    delivery { id status provider etaSeconds version position { lat lng }
               courier { name phone } dropoff { detail contactPhone } }
  }
}
"""
REPORT = """
mutation Report($input: ReportCourierPositionInput!) {
  reportCourierPosition(input: $input) {
    delivery { etaSeconds version position { lat lng } } accepted errors { code field }
  }
}
"""
STATUS = """
mutation($input: ReportDeliveryStatusInput!) {
  reportDeliveryStatus(input: $input) { delivery { status courier { name phone } } errors { code } }
}
"""


@pytest.fixture(scope="module")
async def shop_gql(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    """The noon app, without the per-delivery rate limit (one test puts it back)."""
    async with shop_client(settings, engine, courier_report_min_interval_seconds=0) as client:
        yield client


async def partner_key(engine: AsyncEngine, partner: str, scopes: list[str]) -> dict[str, str]:
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name=f"{partner} callbacks",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=scopes,
        store_ids=None,
        partner=partner,
    )
    return {"X-Api-Key": key.key}


async def ready_order(
    client: GraphQLClient,
    settings: Settings,
    engine: AsyncEngine,
    staff: dict[str, str],
    shop: Shop,
    north_m: float = 2000,
) -> str:
    """A paid delivery order moved by staff to READY (which dispatches it)."""
    sku = await new_sku(engine, price_fen=3000, stock={shop.store_ids[0]: 10})
    _, member = await new_member(settings, engine)
    body = await client.execute(
        PLACE, {"input": place_input(line(sku, 1), address=shop.near(north_m))}, member
    )
    order_id = str(body["data"]["placeOrder"]["order"]["id"])
    await client.execute(PAY, {"orderId": order_id}, member)
    for status in ("ACCEPTED", "PREPARING", "READY"):
        moved = await client.execute(
            MOVE, {"input": {"orderId": order_id, "status": status}}, staff
        )
        assert moved["data"]["updateOrderStatus"]["errors"] == [], moved
    return order_id


async def delivery_of(client: GraphQLClient, order_id: str, headers: dict[str, str]) -> Any:
    body = await client.execute(DELIVERY, {"id": order_id}, headers)
    assert "errors" not in body, body
    return body["data"]["order"]


def at(services: Services, seconds: float = 0) -> str:
    """A device time ``seconds`` into a trip that began ten minutes ago."""
    return (services.clock() - timedelta(minutes=10) + timedelta(seconds=seconds)).isoformat()


async def report(
    client: GraphQLClient,
    partner: dict[str, str],
    delivery: str,
    point: tuple[float, float],
    recorded_at: str,
) -> Any:
    body = await client.execute(
        REPORT,
        {
            "input": {
                "deliveryId": delivery,
                "lat": point[0],
                "lng": point[1],
                "recordedAt": recorded_at,
            }
        },
        partner,
    )
    return body["data"]["reportCourierPosition"]


async def test_a_ready_delivery_order_goes_to_its_store_s_platform_and_gets_a_courier(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    found = await delivery_of(client, order_id, credentials.hq_admin)
    delivery = found["delivery"]
    assert (delivery["status"], delivery["provider"]) == ("ASSIGNED", "DADA")
    assert delivery["courier"]["name"].endswith("师傅")
    assert len(delivery["courier"]["phone"]) == 11  # staff see the whole number
    assert delivery["etaSeconds"] > 300  # still to pick up, then 2 km to ride
    assert delivery["dropoff"] == {"detail": "1号楼 101", "contactPhone": "13900000000"}


async def test_couriers_report_positions_and_the_eta_follows(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    dada = await partner_key(engine, "DADA", ["delivery:write"])
    lat, lng = shop.centre
    moved = await client.execute(
        STATUS,
        {"input": {"deliveryId": delivery["id"], "status": "PICKED_UP"}},
        dada,
    )
    assert moved["data"]["reportDeliveryStatus"]["errors"] == []
    assert (await delivery_of(client, order_id, credentials.hq_admin))["status"] == "DELIVERING"
    first = await report(client, dada, delivery["id"], (lat + 0.005, lng), at(services, 1))
    assert first["errors"] == [] and first["accepted"] is True
    second = await report(client, dada, delivery["id"], (lat + 0.012, lng), at(services, 120))
    assert second["errors"] == [] and second["accepted"] is True
    assert second["delivery"]["etaSeconds"] < first["delivery"]["etaSeconds"]
    assert second["delivery"]["version"] == first["delivery"]["version"] + 1
    # An older report is kept for the replay but never moves the courier back.
    late = await report(client, dada, delivery["id"], (lat + 0.001, lng), at(services, 30))
    assert late["accepted"] is False and late["errors"] == []
    assert late["delivery"]["position"] == {"lat": lat + 0.012, "lng": lng}
    done = await client.execute(
        STATUS, {"input": {"deliveryId": delivery["id"], "status": "DELIVERED"}}, dada
    )
    assert done["data"]["reportDeliveryStatus"]["delivery"]["status"] == "DELIVERED"
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert found["status"] == "DELIVERED" and found["delivery"]["etaSeconds"] is None
    track = await client.execute(
        """query($id: ID!) { delivery(id: $id) { track(first: 10) {
             edges { node { position { lat } recordedAt } } } } }""",
        {"id": delivery["id"]},
        credentials.hq_admin,
    )
    lats = [e["node"]["position"]["lat"] for e in track["data"]["delivery"]["track"]["edges"]]
    assert lats == [lat + 0.005, lat + 0.001, lat + 0.012]  # in recording order
    after = await report(client, dada, delivery["id"], (lat, lng), at(services, 200))
    assert after["errors"][0]["code"] == "INVALID_TRANSITION"  # the trip is over


async def test_bad_reports_are_refused_with_a_code(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]["id"]
    dada = await partner_key(engine, "DADA", ["delivery:write"])
    sf = await partner_key(engine, "SF_INTRA_CITY", ["delivery:write"])
    reader = await partner_key(engine, "DADA", ["stock:read"])
    lat, lng = shop.centre
    ok = await report(client, dada, delivery, (lat + 0.001, lng), at(services, 1))
    assert ok["errors"] == []
    cases = [
        (sf, (lat, lng), at(services, 5), "WRONG_PROVIDER"),
        (reader, (lat, lng), at(services, 5), "FORBIDDEN"),
        (credentials.hq_admin, (lat, lng), at(services, 5), "FORBIDDEN"),
        (dada, (91.0, lng), at(services, 5), "INVALID_COORDINATES"),
        (dada, (lat + 1.0, lng), at(services, 5), "IMPLAUSIBLE_POSITION"),  # 110 km away
        (dada, (lat + 0.05, lng), at(services, 10), "IMPLAUSIBLE_POSITION"),  # 5 km in 9 s
        (dada, (lat, lng), at(services, 4200), "INVALID_INPUT"),  # an hour ahead of us
    ]
    for headers, point, when, code in cases:
        refused = await report(client, headers, delivery, point, when)
        assert refused["errors"][0]["code"] == code, (code, refused)
    after = await delivery_of(client, order_id, credentials.hq_admin)
    assert after["delivery"]["position"] == {"lat": lat + 0.001, "lng": lng}


async def test_reports_for_one_delivery_are_rate_limited(
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    async with shop_client(settings, engine, courier_report_min_interval_seconds=30) as (
        client,
        limited,
    ):
        shop = await new_shop(engine)
        order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
        delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]["id"]
        dada = await partner_key(engine, "DADA", ["delivery:write"])
        lat, lng = shop.centre
        first = await report(client, dada, delivery, (lat + 0.001, lng), at(limited, 1))
        again = await report(client, dada, delivery, (lat + 0.002, lng), at(limited, 5))
        assert first["errors"] == []
        assert again["errors"][0]["code"] == "RATE_LIMITED"


async def test_customers_see_the_courier_with_no_phone_and_no_address(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=3000, stock={shop.store_ids[0]: 10})
    _, member = await new_member(settings, engine)
    body = await client.execute(
        PLACE, {"input": place_input(line(sku, 1), address=shop.near(900))}, member
    )
    order_id = body["data"]["placeOrder"]["order"]["id"]
    await client.execute(PAY, {"orderId": order_id}, member)
    for status in ("ACCEPTED", "PREPARING", "READY"):
        await client.execute(
            MOVE, {"input": {"orderId": order_id, "status": status}}, credentials.hq_admin
        )
    seen = (await delivery_of(client, order_id, member))["delivery"]
    # Not even masked: customers call through the platform's privacy number (contactCourier).
    assert seen["courier"]["name"] and seen["courier"]["phone"] is None
    assert seen["dropoff"] is None  # their own address is on the order, not the trip
    operator = (await delivery_of(client, order_id, credentials.operator))["delivery"]
    assert operator["dropoff"] is None


async def test_own_riders_are_sent_nearest_idle_first_and_freed_on_delivery(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    async with SqlUnitOfWork(engine) as uow:
        conn = uow._conn
        assert conn is not None
        await conn.execute(
            stores.update().where(stores.c.id == store).values(delivery_provider="OWN_RIDER")
        )
        lat, lng = shop.centre
        await conn.execute(
            riders.insert(),
            [
                {
                    "store_id": store,
                    "name": "远骑手",
                    "phone": "13700000011",
                    "active": True,
                    "busy": False,
                    "lat": lat + 0.03,
                    "lng": lng,
                },
                {
                    "store_id": store,
                    "name": "近骑手",
                    "phone": "13700000012",
                    "active": True,
                    "busy": False,
                    "lat": None,
                    "lng": None,
                },
            ],
        )
        await uow.commit()
    staff = credentials.hq_admin
    first = await ready_order(client, settings, engine, staff, shop)
    second = await ready_order(client, settings, engine, staff, shop)
    third = await ready_order(client, settings, engine, staff, shop)
    names = [
        (await delivery_of(client, o, staff))["delivery"]["courier"] for o in (first, second, third)
    ]
    assert [n["name"] if n else None for n in names] == ["近骑手", "远骑手", None]
    waiting = (await delivery_of(client, third, staff))["delivery"]
    assert waiting["status"] == "PENDING"
    riders_app = await partner_key(engine, "OWN_RIDER", ["delivery:write"])
    done_id = (await delivery_of(client, first, staff))["delivery"]["id"]
    for status in ("PICKED_UP", "DELIVERED"):
        body = await client.execute(
            STATUS, {"input": {"deliveryId": done_id, "status": status}}, riders_app
        )
        assert body["data"]["reportDeliveryStatus"]["errors"] == []
    again = await client.execute(
        """mutation($input: DispatchDeliveryInput!) { dispatchDelivery(input: $input) {
             delivery { status courier { name } } errors { code } } }""",
        {"input": {"orderId": third}},
        staff,
    )
    payload = again["data"]["dispatchDelivery"]
    assert payload["errors"] == [] and payload["delivery"]["courier"]["name"] == "近骑手"


async def test_racing_reports_never_move_a_courier_backwards(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]["id"]
    dada = await partner_key(engine, "DADA", ["delivery:write"])
    lat, lng = shop.centre
    # 30 reports a few metres apart, 2 s apart in time, all sent at once in shuffled order.
    points = [(n, (lat + n * 0.0001, lng), at(services, 2 * n + 1)) for n in range(30)]
    shuffled = points[1::2] + points[::2]
    results = await asyncio.gather(
        *(report(client, dada, delivery, p, when) for _, p, when in shuffled)
    )
    codes = {e["code"] for r in results for e in r["errors"]}
    assert codes <= {"RATE_LIMITED"}  # two reports of one delivery in the same instant
    found = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    accepted = [n for (n, _, _), r in zip(shuffled, results, strict=True) if r["accepted"]]
    assert found["position"]["lat"] == lat + max(accepted) * 0.0001  # the newest accepted
    versions = [r["delivery"]["version"] for r in results if r["accepted"]]
    assert len(set(versions)) == len(versions)


async def test_positions_older_than_the_retention_are_pruned(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]["id"]
    dada = await partner_key(engine, "DADA", ["delivery:write"])
    lat, lng = shop.centre
    assert (await report(client, dada, delivery, (lat, lng), at(services, 1)))["errors"] == []

    async def kept() -> int:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(courier_positions)
                    .where(courier_positions.c.delivery_id == decode_id(delivery, "Delivery", []))
                )
                or 0
            )

    assert await kept() == 1
    week = timedelta(days=7)
    await prune_positions(services.clock() + timedelta(days=6), week, uow=SqlUnitOfWork(engine))
    assert await kept() == 1
    await prune_positions(services.clock() + timedelta(days=8), week, uow=SqlUnitOfWork(engine))
    assert await kept() == 0


async def test_head_office_sets_a_store_s_carrier_and_managers_add_riders(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    set_provider = """mutation($input: SetDeliveryProviderInput!) {
        setStoreDeliveryProvider(input: $input) { provider errors { code } } }"""
    variables = {"input": {"storeId": shop.store(), "provider": "OWN_RIDER"}}
    refused = await client.execute(set_provider, variables, credentials.manager_store_1)
    assert refused["data"]["setStoreDeliveryProvider"]["errors"][0]["code"] == "FORBIDDEN"
    done = await client.execute(set_provider, variables, credentials.hq_admin)
    assert done["data"]["setStoreDeliveryProvider"] == {"provider": "OWN_RIDER", "errors": []}
    store = await client.execute(
        "query($id: ID!) { store(id: $id) { deliveryProvider } }", {"id": shop.store()}
    )
    assert store["data"]["store"]["deliveryProvider"] == "OWN_RIDER"
    add = """mutation($input: AddRiderInput!) {
        addRider(input: $input) { riderId errors { code } } }"""
    rider = {"storeId": shop.store(), "name": "新骑手", "phone": "13700000099"}
    other = await client.execute(add, {"input": rider}, credentials.manager_store_1)
    assert other["data"]["addRider"]["errors"][0]["code"] == "FORBIDDEN"
    bad = await client.execute(add, {"input": {**rider, "phone": "123"}}, credentials.hq_admin)
    assert bad["data"]["addRider"]["errors"][0]["code"] == "INVALID_PHONE"
    added = await client.execute(add, {"input": rider}, credentials.hq_admin)
    assert added["data"]["addRider"]["errors"] == []
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    courier = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]["courier"]
    assert courier == {"name": "新骑手", "phone": "13700000099"}


async def test_a_full_refund_calls_the_trip_off(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    order_id = await ready_order(client, settings, engine, credentials.hq_admin, shop)
    delivery = (await delivery_of(client, order_id, credentials.hq_admin))["delivery"]
    assert delivery["status"] == "ASSIGNED"
    refund = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
        order { status } errors { code } } }"""
    body = await client.execute(
        refund,
        {"input": {"orderId": order_id, "reason": "顾客不要了", "idempotencyKey": "r"}},
        credentials.hq_admin,
    )
    assert body["data"]["refundOrder"] == {"order": {"status": "REFUNDED"}, "errors": []}
    found = await delivery_of(client, order_id, credentials.hq_admin)
    assert found["delivery"]["status"] == "FAILED"
    assert found["delivery"]["version"] == delivery["version"] + 1
    dada = await partner_key(engine, "DADA", ["delivery:write"])
    lat, lng = shop.centre
    late = await report(client, dada, delivery["id"], (lat, lng), at(services, 1))
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"
