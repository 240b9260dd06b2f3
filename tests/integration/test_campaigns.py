"""Campaigns end to end through the API: set-up and its validation, the quota held from
stock, group-buys, bargains, flash sales, share codes, the expiry sweep and reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.tables import orders, stock_ledger
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.services.campaigns import close_campaigns, fail_expired_groups
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.shop import (
    BUY_FLASH,
    CREATE_CAMPAIGN,
    JOIN_GROUP,
    OPEN_GROUP,
    PAY,
    campaign_input,
    level_of,
    new_campaign,
    new_member,
    new_members,
    new_shop,
    new_sku,
)

GROUP = """
query Group($id: ID!) {
  groupBuy(id: $id) {
    status size seatsTaken seatsLeft seatsPaid version shareCode
    members { nickname isLeader paid }
  }
}
"""
ORDER = "query Order($id: ID!) { order(id: $id) { status total { fen } } }"
START_BARGAIN = """
mutation Start($campaignId: ID!) {
  startBargain(campaignId: $campaignId) {
    bargain { id status price { fen } startPrice { fen } floorPrice { fen }
              helpsNeeded helpsDone shareCode }
    errors { code field }
  }
}
"""
HELP = """
mutation Help($code: String!) {
  helpBargain(shareCode: $code) {
    bargain { price { fen } helpsDone status } cut { fen } errors { code }
  }
}
"""
BUY_BARGAIN = """
mutation Buy($id: ID!) {
  buyBargain(bargainId: $id) { bargain { status } order { id total { fen } } errors { code } }
}
"""
REPORT = """
query Report($id: ID!) {
  campaignReport(campaignId: $id) {
    participants groupsFormed groupsSucceeded groupsFailed bargainsStarted bargainHelps
    orders gmv { fen } invitations newMembers
  }
}
"""


async def _ledger_sum(engine: AsyncEngine, store_id: int, sku_id: int) -> int:
    async with engine.connect() as conn:
        total = await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(stock_ledger.c.delta), 0)).where(
                stock_ledger.c.store_id == store_id, stock_ledger.c.sku_id == sku_id
            )
        )
    return int(total or 0)


async def test_a_campaign_holds_its_quota_from_stock_and_gives_the_rest_back_when_it_ends(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 500))
    first, second = shop.store_ids
    sku = await new_sku(engine, price_fen=3000, stock={first: 50, second: 5})
    now = services.clock()

    short = campaign_input(
        "FLASH_SALE", sku_id=sku, price_fen=990, store_ids=[first, second], now=now, quota=10
    )
    refused = await client.execute(CREATE_CAMPAIGN, {"input": short}, credentials.operator)
    errors = refused["data"]["createCampaign"]["errors"]
    assert errors[0]["code"] == "OUT_OF_STOCK" and errors[0]["field"] == ["storeIds", "1"]
    assert await level_of(engine, first, sku) == 50  # nothing held by the refused campaign

    campaign = await new_campaign(
        client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=990,
        store_ids=[first],
        now=now,
        quota=10,
    )
    assert await level_of(engine, first, sku) == 40
    (buyer,) = await new_members(settings, engine, 1)
    bought = await client.execute(BUY_FLASH, {"campaignId": campaign}, buyer)
    payload = bought["data"]["buyFlashSale"]
    assert payload["errors"] == []
    assert payload["order"]["lines"][0]["unitPrice"]["fen"] == 990
    assert await level_of(engine, first, sku) == 40  # from the quota, not the shelf

    ended = await client.execute(END, {"id": campaign}, credentials.operator)
    assert ended["data"]["endCampaign"]["campaign"]["state"] == "ENDED"
    assert await level_of(engine, first, sku) == 49  # the 9 unsold back on the shelf
    # The test stocked the shelf directly; the ledger holds the campaign's -10 and +9.
    assert await _ledger_sum(engine, first, sku) == 49 - 50
    assert await close_campaigns(services.clock(), uow=SqlUnitOfWork(engine)) == 0

    again = await client.execute(BUY_FLASH, {"campaignId": campaign}, buyer)
    assert again["data"]["buyFlashSale"]["errors"][0]["code"] == "CAMPAIGN_ENDED"


END = """
mutation End($id: ID!) { endCampaign(campaignId: $id) { campaign { state } errors { code } } }
"""


async def test_campaign_set_up_is_refused_with_a_code_and_for_whom_it_is_not(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=3000, stock={store: 50})
    now = services.clock()

    def spec(kind: str = "GROUP_BUY", **changes: Any) -> dict[str, Any]:
        base = campaign_input(
            kind, sku_id=sku, price_fen=1990, store_ids=[store], now=now, groupSize=3
        )
        base.update(changes)
        return base

    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        (spec(name="  "), "REQUIRED", ["name"]),
        (spec(endsAt=(now - timedelta(minutes=1)).isoformat()), "INVALID_WINDOW", ["endsAt"]),
        (
            spec(
                startsAt=(now + timedelta(days=3000)).isoformat(),
                endsAt=(now + timedelta(days=3010)).isoformat(),
            ),
            "INVALID_WINDOW",
            ["startsAt"],
        ),
        (spec(items=[]), "REQUIRED", ["items"]),
        (
            spec(items=[{"skuId": encode_id("Sku", sku), "priceFen": 3000}]),
            "OUT_OF_RANGE",
            ["items", "0", "price"],
        ),
        (spec(groupSize=None), "REQUIRED", ["groupSize"]),
        (spec(groupSize=1), "OUT_OF_RANGE", ["groupSize"]),
        (spec(channels=[]), "CHANNEL_REQUIRED", ["channels"]),
        (spec(quotaPerStore=0), "OUT_OF_RANGE", ["quotaPerStore"]),
        (spec(storeIds=[encode_id("Store", 987654)]), "NOT_FOUND", ["storeIds", "0"]),
        (spec("BARGAIN", bargainHelps=None), "REQUIRED", ["bargainHelps"]),
        (
            spec(
                "BARGAIN",
                bargainHelps=5,
                items=[{"skuId": encode_id("Sku", sku), "priceFen": 2998}],
            ),
            "OUT_OF_RANGE",
            ["items", "0", "price"],
        ),
    ]
    for values, code, field in cases:
        body = await client.execute(CREATE_CAMPAIGN, {"input": values}, credentials.operator)
        errors = body["data"]["createCampaign"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, field)], values
    assert await level_of(engine, store, sku) == 50

    for who in (credentials.member, credentials.manager_store_1, credentials.partner, {}):
        body = await client.execute(CREATE_CAMPAIGN, {"input": spec()}, who)
        assert body["data"]["createCampaign"]["errors"][0]["code"] in (
            "FORBIDDEN",
            "UNAUTHENTICATED",
        )


async def test_a_group_of_three_fills_through_share_codes_and_goes_to_the_kitchen_when_paid(
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
        groupSize=3,
    )
    leader, friend, other = await new_members(settings, engine, 3)
    opened = (await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader))["data"][
        "startGroupBuy"
    ]
    assert opened["errors"] == [] and opened["group"]["seatsLeft"] == 2
    code = opened["group"]["shareCode"]
    group_id = opened["group"]["id"]

    joined = (await client.execute(JOIN_GROUP, {"shareCode": code}, friend))["data"]["joinGroupBuy"]
    assert joined["errors"] == [] and joined["group"]["seatsLeft"] == 1
    twice = (await client.execute(JOIN_GROUP, {"shareCode": code}, friend))["data"]["joinGroupBuy"]
    assert twice["errors"][0]["code"] == "ALREADY_JOINED"
    tampered = code[:-2] + ("AA" if not code.endswith("AA") else "BB")
    bad = (await client.execute(JOIN_GROUP, {"shareCode": tampered}, other))["data"]
    assert bad["joinGroupBuy"]["errors"][0]["code"] == "INVALID_SHARE_CODE"

    # The friend shares on: their own code names them as the inviter.
    friend_view = (await client.execute(GROUP, {"id": group_id}, friend))["data"]["groupBuy"]
    assert friend_view["shareCode"] and friend_view["shareCode"] != code
    third = await client.execute(JOIN_GROUP, {"shareCode": friend_view["shareCode"]}, other)
    assert third["data"]["joinGroupBuy"]["group"]["seatsLeft"] == 0
    late, _ = await new_member(settings, engine), None
    full = (await client.execute(JOIN_GROUP, {"shareCode": code}, late[1]))["data"]
    assert full["joinGroupBuy"]["errors"][0]["code"] == "GROUP_FULL"

    order_ids = [
        opened["order"]["id"],
        joined["order"]["id"],
        third["data"]["joinGroupBuy"]["order"]["id"],
    ]
    for n, (who, order_id) in enumerate(zip((leader, friend, other), order_ids, strict=True)):
        paid = (await client.execute(PAY, {"orderId": order_id}, who))["data"]["payOrder"]
        assert paid["errors"] == []
        expected = "PAID" if n == 2 else "GROUPING"
        assert paid["order"]["status"] == expected
    totals = 0
    for who, order_id in zip((leader, friend, other), order_ids, strict=True):
        found = (await client.execute(ORDER, {"id": order_id}, who))["data"]["order"]
        assert found["status"] == "PAID"  # the last payment filled the group: all to the kitchen
        totals += found["total"]["fen"]
    view = (await client.execute(GROUP, {"id": group_id}, leader))["data"]["groupBuy"]
    assert view["status"] == "SUCCEEDED" and view["seatsPaid"] == 3
    assert [m["isLeader"] for m in view["members"]] == [True, False, False]
    assert all(m["paid"] and m["nickname"].endswith("**") for m in view["members"])
    assert view["shareCode"] is None  # nothing left to share

    report = (await client.execute(REPORT, {"id": campaign}, credentials.operator))["data"]
    figures = report["campaignReport"]
    assert figures["groupsFormed"] == 1 and figures["groupsSucceeded"] == 1
    assert figures["orders"] == 3 and figures["gmv"]["fen"] == totals >= 3 * 3990
    assert figures["invitations"] == 2 and figures["newMembers"] == 2
    assert figures["participants"] == 3


async def test_an_expired_group_refunds_every_member_once_and_returns_the_units(
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
        quota=5,
        groupSize=3,
        groupHours=1,
    )
    leader, friend = await new_members(settings, engine, 2)
    opened = (await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader))["data"][
        "startGroupBuy"
    ]
    code = opened["group"]["shareCode"]
    joined = (await client.execute(JOIN_GROUP, {"shareCode": code}, friend))["data"]["joinGroupBuy"]
    await client.execute(PAY, {"orderId": opened["order"]["id"]}, leader)
    left = await _quota(client, campaign, store)
    assert left == 3

    later = services.clock() + timedelta(hours=2)
    results = [
        await fail_expired_groups(
            later, services.orders, uow=SqlUnitOfWork(engine, calls=services.calls)
        )
        for _ in range(2)
    ]
    assert [len(r.groups) for r in results] == [1, 0]  # failed, and refunded, once
    # Only the paid order is refunded, all it paid (the group price and packaging).
    assert [(o.id, amount) for o, amount in results[0].refunds] == [
        (decode_id(opened["order"]["id"], "Order", ["id"]), o.total_fen)
        for o, _ in results[0].refunds
    ]
    for who, order in ((leader, opened["order"]), (friend, joined["order"])):
        status = (await client.execute(ORDER, {"id": order["id"]}, who))["data"]["order"]
        assert status["status"] == "CANCELLED"
    assert await _quota(client, campaign, store) == 5
    expired = await client.execute(JOIN_GROUP, {"shareCode": code}, credentials.member)
    assert expired["data"]["joinGroupBuy"]["errors"][0]["code"] in (
        "GROUP_CLOSED",
        "SHARE_CODE_EXPIRED",
    )


QUOTA = """
query Q($id: ID!, $store: ID!) { node(id: $id) { ... on Campaign { quotaLeft(storeId: $store) } } }
"""


async def _quota(client: GraphQLClient, campaign: str, store: int) -> int:
    body = await client.execute(
        QUOTA,
        {"id": campaign, "store": encode_id("Store", store)},
    )
    return int(body["data"]["node"]["quotaLeft"])


async def test_a_bargain_reaches_its_floor_in_the_stated_helps_and_is_bought_once(
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
        bargainHelps=4,
        dailyHelpCap=2,
    )
    owner, *helpers = await new_members(settings, engine, 6)
    started = (await client.execute(START_BARGAIN, {"campaignId": campaign}, owner))["data"]
    bargain = started["startBargain"]["bargain"]
    assert bargain["helpsNeeded"] == 4 and bargain["price"]["fen"] == 8800
    assert bargain["floorPrice"]["fen"] == 1000
    code = bargain["shareCode"]

    own = (await client.execute(HELP, {"code": code}, owner))["data"]["helpBargain"]
    assert own["errors"][0]["code"] == "OWN_BARGAIN"
    cuts = []
    for helper in helpers[:4]:
        helped = (await client.execute(HELP, {"code": code}, helper))["data"]["helpBargain"]
        assert helped["errors"] == [], helped
        cuts.append(helped["cut"]["fen"])
    assert sum(cuts) == 8800 - 1000 and all(c >= 1 for c in cuts)
    again = (await client.execute(HELP, {"code": code}, helpers[0]))["data"]["helpBargain"]
    assert again["errors"][0]["code"] == "ALREADY_HELPED"
    done = (await client.execute(HELP, {"code": code}, helpers[4]))["data"]["helpBargain"]
    assert done["errors"][0]["code"] == "BARGAIN_CLOSED"

    bought = (await client.execute(BUY_BARGAIN, {"id": bargain["id"]}, owner))["data"]
    assert bought["buyBargain"]["order"]["total"]["fen"] >= 1000
    assert bought["buyBargain"]["bargain"]["status"] == "PURCHASED"
    twice = (await client.execute(BUY_BARGAIN, {"id": bargain["id"]}, owner))["data"]
    assert twice["buyBargain"]["errors"][0]["code"] == "BARGAIN_CLOSED"
    stranger = (await client.execute(BUY_BARGAIN, {"id": bargain["id"]}, helpers[1]))["data"]
    assert stranger["buyBargain"]["errors"][0]["code"] == "NOT_FOUND"

    report = (await client.execute(REPORT, {"id": campaign}, credentials.operator))["data"]
    figures = report["campaignReport"]
    assert figures["bargainsStarted"] == 1 and figures["bargainHelps"] == 4
    assert figures["participants"] == 5


async def test_a_helper_helps_at_most_the_daily_cap_across_bargains(
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
        bargainHelps=3,
        dailyHelpCap=2,
    )
    owners = await new_members(settings, engine, 3)
    (helper,) = await new_members(settings, engine, 1)
    codes = []
    for owner in owners:
        body = await client.execute(START_BARGAIN, {"campaignId": campaign}, owner)
        codes.append(body["data"]["startBargain"]["bargain"]["shareCode"])
    outcomes = []
    for code in codes:
        body = await client.execute(HELP, {"code": code}, helper)
        errors = body["data"]["helpBargain"]["errors"]
        outcomes.append(errors[0]["code"] if errors else "OK")
    assert outcomes == ["OK", "OK", "HELP_LIMIT_REACHED"]


async def test_flash_sale_limits_each_member_and_refuses_outside_its_terms(
    client: GraphQLClient,
    services: Services,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 800))
    first, second = shop.store_ids
    sku = await new_sku(engine, price_fen=2500, stock={first: 30, second: 30})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=900,
        store_ids=[first, second],
        now=services.clock(),
        quota=2,
        newMembersOnly=True,
    )
    (buyer,) = await new_members(settings, engine, 1)
    unpinned = (await client.execute(BUY_FLASH, {"campaignId": campaign}, buyer))["data"]
    assert unpinned["buyFlashSale"]["errors"][0]["field"] == ["order", "storeId"]
    at_first = {"storeId": encode_id("Store", first), "idempotencyKey": "flash-1"}
    ok = await client.execute(BUY_FLASH, {"campaignId": campaign, "order": at_first}, buyer)
    assert ok["data"]["buyFlashSale"]["errors"] == []
    replay = await client.execute(BUY_FLASH, {"campaignId": campaign, "order": at_first}, buyer)
    assert (
        replay["data"]["buyFlashSale"]["order"]["id"] == ok["data"]["buyFlashSale"]["order"]["id"]
    )
    at_first_again = {"storeId": encode_id("Store", first)}
    limit = await client.execute(
        BUY_FLASH, {"campaignId": campaign, "order": at_first_again}, buyer
    )
    assert limit["data"]["buyFlashSale"]["errors"][0]["code"] == "CAMPAIGN_LIMIT_REACHED"

    _, old = await new_member(settings, engine, age_days=400)
    refused = await client.execute(
        BUY_FLASH, {"campaignId": campaign, "order": at_first_again}, old
    )
    assert refused["data"]["buyFlashSale"]["errors"][0]["code"] == "NOT_ELIGIBLE"

    delivery = {"storeId": encode_id("Store", first), "channel": "DELIVERY"}
    (other,) = await new_members(settings, engine, 1)
    off = await client.execute(BUY_FLASH, {"campaignId": campaign, "order": delivery}, other)
    assert off["data"]["buyFlashSale"]["errors"][0]["code"] == "NOT_IN_CAMPAIGN"
    async with engine.connect() as conn:
        placed = await conn.scalar(
            sa.select(sa.func.count()).where(
                orders.c.campaign_id == decode_id(campaign, "Campaign", ["id"])
            )
        )
    assert placed == 1


async def test_ending_a_group_buy_early_fails_its_open_groups_and_refunds_them(
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
        quota=6,
        groupSize=2,
    )
    leader, other = await new_members(settings, engine, 2)
    opened = (await client.execute(OPEN_GROUP, {"campaignId": campaign}, leader))["data"]
    group = opened["startGroupBuy"]["group"]
    order_id = opened["startGroupBuy"]["order"]["id"]
    await client.execute(PAY, {"orderId": order_id}, leader)
    assert await level_of(engine, store, sku) == 14

    ended = await client.execute(END, {"id": campaign}, credentials.operator)
    assert ended["data"]["endCampaign"]["errors"] == []
    view = (await client.execute(GROUP, {"id": group["id"]}, leader))["data"]["groupBuy"]
    assert view["status"] == "FAILED"
    status = (await client.execute(ORDER, {"id": order_id}, leader))["data"]["order"]["status"]
    assert status == "CANCELLED"
    # The leader's unit went back to the quota, and the whole quota to the shelf.
    assert await level_of(engine, store, sku) == 20
    late = await client.execute(JOIN_GROUP, {"shareCode": group["shareCode"]}, other)
    assert late["data"]["joinGroupBuy"]["errors"][0]["code"] in (
        "CAMPAIGN_ENDED",
        "SHARE_CODE_EXPIRED",
    )
    twice = await client.execute(END, {"id": campaign}, credentials.operator)
    assert twice["data"]["endCampaign"]["errors"][0]["code"] == "CAMPAIGN_ENDED"
