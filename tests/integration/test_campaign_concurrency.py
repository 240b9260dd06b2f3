"""Campaign limits under real concurrency: many clients at once, on the run's database.

Each race checks the answers and then the database: the seats, orders, helps and quota
rows the winners left, and that the losers left nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.tables import (
    bargain_helps,
    bargains,
    campaign_quotas,
    group_buys,
    group_members,
    orders,
    refunds,
)
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.services.campaigns import fail_expired_groups
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.shop import (
    BUY_FLASH,
    JOIN_GROUP,
    OPEN_GROUP,
    PAY,
    level_of,
    new_campaign,
    new_members,
    new_shop,
    new_sku,
)

START_BARGAIN = """
mutation Start($campaignId: ID!) {
  startBargain(campaignId: $campaignId) {
    bargain { id startPrice { fen } floorPrice { fen } helpsNeeded shareCode }
    errors { code }
  }
}
"""
HELP = """
mutation Help($code: String!) {
  helpBargain(shareCode: $code) { bargain { helpsDone } cut { fen } errors { code } }
}
"""


def payload(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The mutation's payload; a GraphQL error (an internal error) fails the test."""
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"][name]
    assert found is not None, body
    return found


def codes(payloads: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["code"] for p in payloads for e in p["errors"])


def raw(global_id: str, type_name: str) -> int:
    return decode_id(global_id, type_name, ["id"])


async def quota_left(engine: AsyncEngine, campaign_id: int, store_id: int, sku_id: int) -> int:
    async with engine.connect() as conn:
        left = await conn.scalar(
            sa.select(campaign_quotas.c.remaining).where(
                campaign_quotas.c.campaign_id == campaign_id,
                campaign_quotas.c.store_id == store_id,
                campaign_quotas.c.sku_id == sku_id,
            )
        )
    assert left is not None
    return int(left)


async def campaign_orders(engine: AsyncEngine, campaign_id: int) -> dict[int, int]:
    """Orders of the campaign per member."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(orders.c.member_id, sa.func.count())
            .where(orders.c.campaign_id == campaign_id)
            .group_by(orders.c.member_id)
        )
        return {int(member): int(count) for member, count in rows}


async def test_fifty_joiners_race_for_the_last_two_seats_and_exactly_two_get_them(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    size = 10
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=5990, stock={store: 30})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "GROUP_BUY",
        sku_id=sku,
        price_fen=3990,
        store_ids=[store],
        now=services.clock(),
        quota=20,
        groupSize=size,
    )
    campaign_id = raw(campaign, "Campaign")
    leader, *early = await new_members(settings, engine, size - 2)
    opened = payload(
        await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader), "startGroupBuy"
    )
    assert opened["errors"] == []
    code = opened["group"]["shareCode"]
    group_id = raw(opened["group"]["id"], "GroupBuy")
    for member in early:
        joined = payload(
            await client.execute(JOIN_GROUP, {"shareCode": code}, member), "joinGroupBuy"
        )
        assert joined["errors"] == [], joined
    assert joined["group"]["seatsLeft"] == 2

    racers = await new_members(settings, engine, 50)
    bodies = await asyncio.gather(
        *(client.execute(JOIN_GROUP, {"shareCode": code}, m) for m in racers)
    )
    results = [payload(b, "joinGroupBuy") for b in bodies]
    won = [r for r in results if r["order"] is not None]
    assert len(won) == 2
    assert all(r["errors"] == [] and r["group"]["id"] == opened["group"]["id"] for r in won)
    assert sorted(r["group"]["seatsLeft"] for r in won) == [0, 1]
    assert codes(results) == Counter({"GROUP_FULL": 48})

    async with engine.connect() as conn:
        group = (await conn.execute(sa.select(group_buys).where(group_buys.c.id == group_id))).one()
        seats = await conn.scalar(
            sa.select(sa.func.count()).where(group_members.c.group_id == group_id)
        )
    assert group.seats_taken == group.size == size and group.status == "OPEN"
    assert seats == size
    placed = await campaign_orders(engine, campaign_id)
    assert sum(placed.values()) == size and set(placed.values()) == {1}
    assert await quota_left(engine, campaign_id, store, sku) == 20 - size
    assert await level_of(engine, store, sku) == 30 - 20  # the quota is held, not the sales


async def test_one_member_joining_a_group_ten_times_at_once_gets_one_seat(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=5990, stock={store: 30})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "GROUP_BUY",
        sku_id=sku,
        price_fen=3990,
        store_ids=[store],
        now=services.clock(),
        quota=20,
        groupSize=5,
    )
    campaign_id = raw(campaign, "Campaign")
    leader, friend = await new_members(settings, engine, 2)
    opened = payload(
        await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader), "startGroupBuy"
    )
    code = opened["group"]["shareCode"]
    group_id = raw(opened["group"]["id"], "GroupBuy")

    bodies = await asyncio.gather(
        *(client.execute(JOIN_GROUP, {"shareCode": code}, friend) for _ in range(10))
    )
    results = [payload(b, "joinGroupBuy") for b in bodies]
    won = [r for r in results if r["order"] is not None]
    assert len(won) == 1 and won[0]["group"]["seatsLeft"] == 3
    assert codes(results) == Counter({"ALREADY_JOINED": 9})

    async with engine.connect() as conn:
        taken = await conn.scalar(
            sa.select(group_buys.c.seats_taken).where(group_buys.c.id == group_id)
        )
        seats = await conn.scalar(
            sa.select(sa.func.count()).where(group_members.c.group_id == group_id)
        )
    assert taken == 2 and seats == 2
    placed = await campaign_orders(engine, campaign_id)
    assert sorted(placed.values()) == [1, 1]  # the leader's and the friend's
    assert await quota_left(engine, campaign_id, store, sku) == 18


async def test_a_thousand_buyers_race_for_a_flash_quota_of_one_hundred(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=2500, stock={store: 150})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=900,
        store_ids=[store],
        now=services.clock(),
        quota=100,
    )
    campaign_id = raw(campaign, "Campaign")
    assert await level_of(engine, store, sku) == 50
    buyers = await new_members(settings, engine, 1000)

    bodies = await asyncio.gather(
        *(client.execute(BUY_FLASH, {"campaignId": campaign}, m) for m in buyers)
    )
    results = [payload(b, "buyFlashSale") for b in bodies]
    won = [r for r in results if r["order"] is not None]
    assert len(won) == 100
    assert all(r["errors"] == [] and r["order"]["total"]["fen"] >= 900 for r in won)
    assert all(r["order"]["lines"][0]["unitPrice"]["fen"] == 900 for r in won)
    assert len({r["order"]["id"] for r in won}) == 100
    assert codes(results) == Counter({"SOLD_OUT": 900})

    placed = await campaign_orders(engine, campaign_id)
    assert len(placed) == 100 and set(placed.values()) == {1}  # no member has two
    assert await quota_left(engine, campaign_id, store, sku) == 0
    assert await level_of(engine, store, sku) == 50  # 150 less the 100 held


async def test_one_member_buying_a_flash_sale_twenty_times_at_once_gets_one_order(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=2500, stock={store: 500})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=900,
        store_ids=[store],
        now=services.clock(),
        quota=400,
        perMemberLimit=1,
    )
    campaign_id = raw(campaign, "Campaign")
    (buyer,) = await new_members(settings, engine, 1)
    bodies = await asyncio.gather(
        *(client.execute(BUY_FLASH, {"campaignId": campaign}, buyer) for _ in range(20))
    )
    results = [payload(b, "buyFlashSale") for b in bodies]
    assert sum(r["order"] is not None for r in results) == 1
    assert codes(results) == Counter({"CAMPAIGN_LIMIT_REACHED": 19})
    placed = await campaign_orders(engine, campaign_id)
    assert list(placed.values()) == [1]
    assert await quota_left(engine, campaign_id, store, sku) == 399


async def test_thirty_helpers_race_for_five_bargain_helps_and_exactly_five_cut(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=8800, stock={store: 20})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "BARGAIN",
        sku_id=sku,
        price_fen=1000,
        store_ids=[store],
        now=services.clock(),
        quota=5,
        bargainHelps=5,
    )
    owner, *helpers = await new_members(settings, engine, 31)
    started = payload(
        await client.execute(START_BARGAIN, {"campaignId": campaign}, owner), "startBargain"
    )
    bargain = started["bargain"]
    assert bargain["helpsNeeded"] == 5
    start, floor = bargain["startPrice"]["fen"], bargain["floorPrice"]["fen"]
    assert (start, floor) == (8800, 1000)
    bargain_id = raw(bargain["id"], "Bargain")

    bodies = await asyncio.gather(
        *(client.execute(HELP, {"code": bargain["shareCode"]}, h) for h in helpers)
    )
    results = [payload(b, "helpBargain") for b in bodies]
    won = [r for r in results if r["cut"] is not None]
    assert len(won) == 5 and all(r["errors"] == [] for r in won)
    assert sorted(r["bargain"]["helpsDone"] for r in won) == [1, 2, 3, 4, 5]
    assert sum(r["cut"]["fen"] for r in won) == start - floor
    assert codes(results) == Counter({"BARGAIN_CLOSED": 25})

    async with engine.connect() as conn:
        done = await conn.scalar(
            sa.select(bargains.c.helps_done).where(bargains.c.id == bargain_id)
        )
        helps = (
            await conn.execute(
                sa.select(bargain_helps.c.step_no, bargain_helps.c.cut_fen).where(
                    bargain_helps.c.bargain_id == bargain_id
                )
            )
        ).all()
    assert done == 5
    assert sorted(step for step, _ in helps) == [0, 1, 2, 3, 4]
    assert sum(cut for _, cut in helps) == start - floor
    assert sorted(cut for _, cut in helps) == sorted(r["cut"]["fen"] for r in won)


async def test_four_concurrent_expiry_sweeps_fail_a_group_and_refund_each_member_once(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=5990, stock={store: 20})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "GROUP_BUY",
        sku_id=sku,
        price_fen=3990,
        store_ids=[store],
        now=services.clock(),
        quota=10,
        groupSize=5,
        groupHours=1,
    )
    campaign_id = raw(campaign, "Campaign")
    leader, *friends = await new_members(settings, engine, 4)
    opened = payload(
        await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader), "startGroupBuy"
    )
    code = opened["group"]["shareCode"]
    group_id = raw(opened["group"]["id"], "GroupBuy")
    order_of = {raw(opened["order"]["id"], "Order"): leader}
    for friend in friends:
        joined = payload(
            await client.execute(JOIN_GROUP, {"shareCode": code}, friend), "joinGroupBuy"
        )
        assert joined["errors"] == []
        order_of[raw(joined["order"]["id"], "Order")] = friend
    *paying, unpaid = order_of  # three pay; the last joiner never does
    for order_id in paying:
        paid = payload(
            await client.execute(
                PAY, {"orderId": encode_id("Order", order_id)}, order_of[order_id]
            ),
            "payOrder",
        )
        assert paid["errors"] == [] and paid["order"]["status"] == "GROUPING"
    assert await quota_left(engine, campaign_id, store, sku) == 6

    later = services.clock() + timedelta(hours=2)
    sweeps = await asyncio.gather(
        *(
            fail_expired_groups(
                later, services.orders, uow=SqlUnitOfWork(engine, calls=services.calls)
            )
            for _ in range(4)
        )
    )
    failed = [g for sweep in sweeps for g in sweep.groups]
    assert len(failed) == len(set(failed))  # no group failed by two sweeps
    assert failed.count(group_id) == 1
    refunded = [(order.id, amount) for sweep in sweeps for order, amount in sweep.refunds]
    assert len(refunded) == len({order_id for order_id, _ in refunded})
    ours = sorted((o, a) for o, a in refunded if o in order_of)
    assert [o for o, _ in ours] == sorted(paying)

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(refunds.c.order_id, refunds.c.amount_fen).where(
                    refunds.c.order_id.in_(list(order_of))
                )
            )
        ).all()
        totals = dict(
            (
                await conn.execute(
                    sa.select(orders.c.id, orders.c.total_fen).where(orders.c.id.in_(paying))
                )
            ).all()
        )
        statuses = (
            (await conn.execute(sa.select(orders.c.status).where(orders.c.id.in_(list(order_of)))))
            .scalars()
            .all()
        )
        group = (await conn.execute(sa.select(group_buys).where(group_buys.c.id == group_id))).one()
    assert sorted((o, a) for o, a in rows) == ours  # one refund row per paid order
    assert ours == sorted(totals.items())  # each refunded in full
    assert set(statuses) == {"CANCELLED"}
    assert group.status == "FAILED"
    assert unpaid not in dict(rows)
    assert await quota_left(engine, campaign_id, store, sku) == 10
