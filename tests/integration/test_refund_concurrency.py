"""Refund decisions under real concurrency, on the run's database: of two racing writes of
one refund or one order, one is made and nothing is refunded twice."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import orders, refunds, stock_ledger, stock_movements
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient
from tests.integration.test_orders import REFUND, manager_of, placed
from tests.integration.test_refunds import APPROVE, REFUSE, REQUEST, ask, run
from tests.shop import PAY, level_of, line, new_members, new_shop, new_sku, place_input

ORDERS = 12


async def paid_orders(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine, count: int = ORDERS
) -> tuple[int, int, list[tuple[str, dict[str, str]]], dict[str, str]]:
    """``count`` paid pickup orders of 2 units each at one store (stock 100)."""
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=1000, stock={store: 100})
    buyers = await new_members(settings, engine, count)
    made: list[tuple[str, dict[str, str]]] = []
    for member in buyers:
        order_id = await placed(
            client, member, place_input(line(sku, 2), channel="PICKUP", store=shop.store())
        )
        assert (await client.execute(PAY, {"orderId": order_id}, member))["data"]["payOrder"][
            "errors"
        ] == []
        made.append((order_id, member))
    return store, sku, made, await manager_of(settings, engine, shop)


async def requested(client: GraphQLClient, made: list[tuple[str, dict[str, str]]]) -> list[str]:
    ids: list[str] = []
    for order_id, member in made:
        asked = await run(client, REQUEST, ask(order_id), member)
        assert asked["errors"] == [], asked
        ids.append(asked["refund"]["id"])
    return ids


async def refund_state(engine: AsyncEngine, order_id: str) -> tuple[int, list[str]]:
    """What the order counts as refunded, and its refunds' statuses."""
    raw = decode_id(order_id, "Order", [])
    async with engine.connect() as conn:
        refunded = await conn.scalar(sa.select(orders.c.refunded_fen).where(orders.c.id == raw))
        statuses = (
            await conn.scalars(
                sa.select(refunds.c.status).where(refunds.c.order_id == raw).order_by(refunds.c.id)
            )
        ).all()
    return int(refunded or 0), [str(s) for s in statuses]


async def released(engine: AsyncEngine, store_id: int, sku_id: int) -> int:
    """Units put back on the shelf by refunds (their ledger rows)."""
    async with engine.connect() as conn:
        total = await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(stock_ledger.c.delta), 0))
            .select_from(stock_ledger.join(stock_movements))
            .where(
                stock_ledger.c.store_id == store_id,
                stock_ledger.c.sku_id == sku_id,
                stock_movements.c.reference.like("order:%:refund:%"),
            )
        )
    return int(total or 0)


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_approve_racing_refuse_decides_each_request_once(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    store, sku, made, staff = await paid_orders(client, settings, engine)
    refund_ids = await requested(client, made)
    decisions = await asyncio.gather(
        *(
            run(client, query, values, staff)
            for refund_id in refund_ids
            for query, values in (
                (APPROVE, {"refundId": refund_id}),
                (REFUSE, {"refundId": refund_id, "reason": "已出餐"}),
            )
        )
    )
    approvals, refusals = decisions[0::2], decisions[1::2]
    approved = 0
    for (order_id, _), approval, refusal in zip(made, approvals, refusals, strict=True):
        # Exactly one decision was made; the other found it decided.
        assert sorted([codes(approval), codes(refusal)]) == [[], ["INVALID_TRANSITION"]]
        refunded, statuses = await refund_state(engine, order_id)
        if codes(approval) == []:
            approved += 1
            assert (refunded, statuses) == (2200, ["REFUNDED"])
        else:
            assert (refunded, statuses) == (0, ["REFUSED"])
    assert await released(engine, store, sku) == 2 * approved
    assert await level_of(engine, store, sku) == 100 - 2 * ORDERS + 2 * approved


async def test_racing_approvals_of_one_request_refund_it_once(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    store, sku, made, staff = await paid_orders(client, settings, engine)
    refund_ids = await requested(client, made)
    results = await asyncio.gather(
        *(
            run(client, APPROVE, {"refundId": refund_id}, staff)
            for refund_id in refund_ids
            for _ in range(3)
        )
    )
    for n, (order_id, _) in enumerate(made):
        mine = results[3 * n : 3 * n + 3]
        assert sorted(codes(r) for r in mine) == [
            [],
            ["INVALID_TRANSITION"],
            ["INVALID_TRANSITION"],
        ]
        assert await refund_state(engine, order_id) == (2200, ["REFUNDED"])
    assert await released(engine, store, sku) == 2 * ORDERS
    assert await level_of(engine, store, sku) == 100


async def test_a_request_racing_a_staff_refund_leaves_one_refund(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    store, sku, made, staff = await paid_orders(client, settings, engine)
    results = await asyncio.gather(
        *(
            step
            for order_id, member in made
            for step in (
                run(client, REQUEST, ask(order_id), member),
                run(
                    client,
                    REFUND,
                    {"orderId": order_id, "reason": "缺货", "idempotencyKey": "staff"},
                    staff,
                ),
            )
        )
    )
    requests, direct = results[0::2], results[1::2]
    refunded_by_staff = 0
    for (order_id, _), asked, refunded in zip(made, requests, direct, strict=True):
        amount, statuses = await refund_state(engine, order_id)
        if codes(refunded) == []:
            # The staff refund went first: the request, read again, finds nothing left.
            refunded_by_staff += 1
            assert codes(asked) in (["INVALID_TRANSITION"], ["NOTHING_TO_REFUND"])
            assert (amount, statuses) == (2200, ["REFUNDED"])
        else:
            # The request went first: staff are told to decide it instead.
            assert codes(refunded) == ["REFUND_PENDING"] and codes(asked) == []
            assert (amount, statuses) == (0, ["REQUESTED"])
    assert await released(engine, store, sku) == 2 * refunded_by_staff
