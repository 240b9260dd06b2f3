"""Order rules under real concurrency: many clients at once, on the run's database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import orders, stock_ledger, store_loads
from dinegraph.domain.orders import KITCHEN_QUEUE
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_coupons import new_template
from tests.shop import (
    PAY,
    PLACE,
    level_of,
    line,
    new_members,
    new_shop,
    new_sku,
    place_input,
)

MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""


async def held_units(engine: AsyncEngine, store_id: int, sku_id: int) -> int:
    async with engine.connect() as conn:
        total = await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(stock_ledger.c.delta), 0)).where(
                stock_ledger.c.store_id == store_id, stock_ledger.c.sku_id == sku_id
            )
        )
    return int(total or 0)


async def test_300_orders_race_for_100_units_and_exactly_100_are_placed(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=990, stock={store: 100})
    buyers = await new_members(settings, engine, 300)

    async def buy(member: dict[str, str]) -> dict[str, Any]:
        body = await client.execute(
            PLACE, {"input": place_input(line(sku, 1), address=shop.near(300))}, member
        )
        payload: dict[str, Any] = body["data"]["placeOrder"]
        return payload

    results = await asyncio.gather(*(buy(m) for m in buyers))
    placed = [r for r in results if r["order"] is not None]
    refused = [e["code"] for r in results for e in r["errors"]]
    assert len(placed) == 100
    # Refused by the hold (OUT_OF_STOCK), or by routing once the level read 0.
    assert len(refused) == 200
    assert set(refused) <= {"OUT_OF_STOCK", "NO_STORE_CAN_SERVE"}
    assert await level_of(engine, store, sku) == 0
    assert await held_units(engine, store, sku) == -100  # the ledger agrees with the level
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(orders).where(orders.c.store_id == store)
        )
    assert count == 100


async def test_concurrent_replays_of_one_key_place_one_order(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=990, stock={shop.store_ids[0]: 50})
    (member,) = await new_members(settings, engine, 1)
    values = place_input(line(sku, 2), channel="PICKUP", store=shop.store(), key=uuid.uuid4().hex)
    bodies = await asyncio.gather(
        *(client.execute(PLACE, {"input": values}, member) for _ in range(25))
    )
    ids = {b["data"]["placeOrder"]["order"]["id"] for b in bodies}
    assert len(ids) == 1
    assert all(b["data"]["placeOrder"]["errors"] == [] for b in bodies)
    assert await level_of(engine, shop.store_ids[0], sku) == 48


async def test_payment_racing_cancellation_leaves_each_order_one_way(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=990, stock={store: 40})
    buyers = await new_members(settings, engine, 40)
    order_ids: list[str] = []
    for member in buyers:
        body = await client.execute(
            PLACE,
            {"input": place_input(line(sku, 1), channel="PICKUP", store=shop.store())},
            member,
        )
        order_ids.append(body["data"]["placeOrder"]["order"]["id"])

    async def pay(order_id: str, member: dict[str, str]) -> Any:
        return await client.execute(PAY, {"orderId": order_id}, member)

    async def cancel(order_id: str, member: dict[str, str]) -> Any:
        return await client.execute(
            MOVE, {"input": {"orderId": order_id, "status": "CANCELLED"}}, member
        )

    await asyncio.gather(
        *(
            step(order_id, member)
            for order_id, member in zip(order_ids, buyers, strict=True)
            for step in (pay, cancel)
        )
    )
    async with engine.connect() as conn:
        statuses = (
            await conn.execute(
                sa.select(orders.c.status, sa.func.count())
                .where(orders.c.store_id == store)
                .group_by(orders.c.status)
            )
        ).all()
    by_status: dict[str, int] = dict(statuses)
    # Cancelling first wins over paying; paying first, the cancel refunds: either way final.
    assert set(by_status) <= {"PAID", "CANCELLED"}
    assert sum(by_status.values()) == 40
    paid = by_status.get("PAID", 0)
    assert await level_of(engine, store, sku) == 40 - paid
    async with engine.connect() as conn:
        load = await conn.scalar(
            sa.select(store_loads.c.pending_orders).where(store_loads.c.store_id == store)
        )
    assert (load or 0) == paid


async def test_the_kitchen_queue_count_stays_exact_under_concurrent_moves(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=500, stock={store: 100})
    buyers = await new_members(settings, engine, 30)

    async def order_and_pay(member: dict[str, str]) -> str:
        body = await client.execute(
            PLACE,
            {"input": place_input(line(sku, 1), channel="PICKUP", store=shop.store())},
            member,
        )
        order_id = str(body["data"]["placeOrder"]["order"]["id"])
        await client.execute(PAY, {"orderId": order_id}, member)
        return order_id

    ids = await asyncio.gather(*(order_and_pay(m) for m in buyers))

    async def advance(order_id: str, steps: int) -> None:
        for status in ("ACCEPTED", "PREPARING", "READY", "PICKED_UP")[:steps]:
            await client.execute(
                MOVE, {"input": {"orderId": order_id, "status": status}}, credentials.hq_admin
            )

    # Each order moved by two racing staff tablets at once: every move is made once.
    await asyncio.gather(
        *(advance(order_id, n % 5) for n, order_id in enumerate(ids) for _ in range(2))
    )
    async with engine.connect() as conn:
        queued = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(orders)
            .where(
                orders.c.store_id == store, orders.c.status.in_([s.value for s in KITCHEN_QUEUE])
            )
        )
        load = await conn.scalar(
            sa.select(store_loads.c.pending_orders).where(store_loads.c.store_id == store)
        )
    assert queued == load
    assert queued == sum(1 for n in range(30) if n % 5 < 3)


async def test_orders_that_lose_the_nearest_store_s_last_unit_are_routed_again(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 600))
    near, far = shop.store_ids
    sku = await new_sku(engine, price_fen=990, stock={near: 1, far: 100})
    buyers = await new_members(settings, engine, 20)
    bodies = await asyncio.gather(
        *(
            client.execute(
                PLACE, {"input": place_input(line(sku, 1), address=shop.near(50))}, member
            )
            for member in buyers
        )
    )
    stores = [b["data"]["placeOrder"]["order"]["store"]["id"] for b in bodies]
    assert all(b["data"]["placeOrder"]["errors"] == [] for b in bodies)
    assert stores.count(shop.store(0)) == 1 and stores.count(shop.store(1)) == 19
    assert await level_of(engine, near, sku) == 0 and await level_of(engine, far, sku) == 81


async def test_one_coupon_in_two_concurrent_orders_is_used_by_one(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=990, stock={shop.store_ids[0]: 50})
    (member,) = await new_members(settings, engine, 1)
    template = await new_template(gql, credentials, amountOffFen=100)
    claim = "mutation($t: ID!) { claimCoupon(templateId: $t) { coupon { id } } }"
    coupon = (await client.execute(claim, {"t": template}, member))["data"]["claimCoupon"]
    bodies = await asyncio.gather(
        *(
            client.execute(
                PLACE,
                {
                    "input": place_input(
                        line(sku, 1), address=shop.near(50), coupon=coupon["coupon"]["id"]
                    )
                },
                member,
            )
            for _ in range(8)
        )
    )
    payloads = [b["data"]["placeOrder"] for b in bodies]
    assert sum(p["order"] is not None for p in payloads) == 1
    codes = {e["code"] for p in payloads for e in p["errors"]}
    assert codes == {"COUPON_NOT_APPLICABLE"}
    assert await level_of(engine, shop.store_ids[0], sku) == 49  # the losers hold nothing
