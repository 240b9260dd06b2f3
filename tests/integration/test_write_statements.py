"""The SQL statements of the hot writes, counted: a regression guard, not a timing test.

Each budget is what the write needs: the statements of its rules and its conditional
writes, none repeated, none per line. Counted from the server-timing header of an
in-process app, credentials lookups included; SQLite's count includes its ``BEGIN
IMMEDIATE``, which PostgreSQL's driver sends without a statement of its own. On PostgreSQL
a write of several stock levels locks them in SKU order first: one statement more.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.databases import ON_POSTGRES
from tests.shop import (
    line,
    new_campaign,
    new_member,
    new_members,
    new_shop,
    new_sku,
    place_input,
    shop_client,
)

SQLITE_BEGIN = 0 if ON_POSTGRES else 1
PG_LOCK = 1 if ON_POSTGRES else 0
AUDIT = 1  # a staff or partner write's audit entry, in its transaction (domain/audit.py)

SALE = """mutation($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code } } }"""
CLAIM = """mutation($templateId: ID!) {
  claimCoupon(templateId: $templateId) { coupon { id } errors { code } } }"""
CREATE_TEMPLATE = """mutation($i: CreateCouponTemplateInput!) {
  createCouponTemplate(input: $i) { template { id } errors { code } } }"""
PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } errors { code } } }"""
BUY = """mutation($campaignId: ID!, $order: CampaignOrderInput) {
  buyFlashSale(campaignId: $campaignId, order: $order) { order { id } errors { code } } }"""


@pytest.fixture(scope="module")
async def timed(
    settings: Settings, engine: AsyncEngine
) -> Any:  # an in-process app at noon that reports its statements
    async with shop_client(settings, engine, server_timing=True) as client:
        yield client


async def statements_of(
    client: GraphQLClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> int:
    """Runs the mutation, which must succeed; the statements it ran."""
    response = await client.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    data = response.json()["data"]
    payload = next(iter(data.values()))
    assert payload["errors"] == [], payload
    match = re.fullmatch(r'db;desc="(\d+) statements"', response.headers["server-timing"])
    assert match, response.headers
    return int(match.group(1))


async def test_a_sale_is_its_key_its_conditional_take_and_its_ledger_however_many_lines(
    timed: tuple[GraphQLClient, Services], credentials: Credentials, engine: AsyncEngine
) -> None:
    client, _ = timed
    skus = [await new_sku(engine, price_fen=2990, stock={1: 50}) for _ in range(3)]
    dish = await new_sku(engine, price_fen=1800, tracked=False)

    async def sale(*sku_ids: int) -> int:
        values = {
            "storeId": encode_id("Store", 1),
            "source": "POS",
            "externalOrderId": uuid.uuid4().hex,
            "lines": [line(sku, 1) for sku in sku_ids],
        }
        return await statements_of(client, SALE, {"input": values}, credentials.partner)

    # The API key, the movement's key (and its store), the take, the ledger rows; the
    # partner's audit entry.
    assert await sale(skus[0]) <= 4 + SQLITE_BEGIN + AUDIT
    assert await sale(*skus) <= 4 + SQLITE_BEGIN + PG_LOCK + AUDIT
    # A made-to-order dish: the take passes it over, one read says it is on sale; no ledger.
    assert await sale(dish) <= 4 + SQLITE_BEGIN + AUDIT


async def test_a_claim_reads_its_template_member_and_count_once(
    timed: tuple[GraphQLClient, Services],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client, _ = timed
    values = {
        "title": "限时券",
        "kind": "NO_THRESHOLD",
        "amountOffFen": 300,
        "validDays": 7,
        "totalQuantity": 10,
    }
    body = await client.execute(CREATE_TEMPLATE, {"i": values}, credentials.operator)
    template = body["data"]["createCouponTemplate"]["template"]["id"]
    (member,) = await new_members(settings, engine, 1)
    # The member's credential, the template peeked before the write, the member (locked,
    # then on PostgreSQL the template and count read after the lock), the take, the coupon.
    counted = await statements_of(client, CLAIM, {"templateId": template}, member)
    assert counted <= 6


@pytest.mark.parametrize("lines", [1, 3, 6])
async def test_placing_an_order_costs_the_same_statements_for_one_line_or_six(
    timed: tuple[GraphQLClient, Services], settings: Settings, engine: AsyncEngine, lines: int
) -> None:
    client, _ = timed
    shop = await new_shop(engine)
    skus = [
        await new_sku(engine, price_fen=1000 + n, stock={shop.store_ids[0]: 20})
        for n in range(lines)
    ]
    _, member = await new_member(settings, engine)
    values = place_input(*(line(s, 1) for s in skus), channel="PICKUP", store=shop.store())
    counted = await statements_of(client, PLACE, {"input": values}, member)
    # The credential; the member with their key's order; the stores, SKUs and their prices
    # and stock (three reads); the order, its lines, the hold's key, the take, the ledger.
    assert counted <= 10 + SQLITE_BEGIN + (PG_LOCK if lines > 1 else 0)


async def test_an_order_with_a_made_to_order_dish_reads_its_sold_out_flag_once(
    timed: tuple[GraphQLClient, Services], settings: Settings, engine: AsyncEngine
) -> None:
    client, _ = timed
    shop = await new_shop(engine)
    tracked = await new_sku(engine, price_fen=2500, stock={shop.store_ids[0]: 20})
    dishes = [await new_sku(engine, price_fen=1800 + n, tracked=False) for n in range(3)]
    _, member = await new_member(settings, engine)
    values = place_input(
        line(tracked, 1), *(line(d, 1) for d in dishes), channel="PICKUP", store=shop.store()
    )
    counted = await statements_of(client, PLACE, {"input": values}, member)
    assert counted <= 11 + SQLITE_BEGIN + PG_LOCK


@pytest.mark.parametrize("keyed", [False, True])
async def test_a_flash_sale_order_reads_its_buyer_once(
    timed: tuple[GraphQLClient, Services],
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
    keyed: bool,
) -> None:
    client, services = timed
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=2500, stock={store: 50})
    campaign = await new_campaign(
        client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=900,
        store_ids=[store],
        now=services.clock(),
        quota=10,
    )
    (buyer,) = await new_members(settings, engine, 1)
    variables: dict[str, Any] = {"campaignId": campaign}
    if keyed:
        variables["order"] = {"idempotencyKey": uuid.uuid4().hex}
    counted = await statements_of(client, BUY, variables, buyer)
    # The credential and the campaign; SQLite's look at the quota before queueing for the
    # lock; the key's order (when given), the quota under the lock, the member and their
    # entry; the store, SKU and its price and stock; the order, its line and the quota's take.
    assert counted <= 11 + 2 * SQLITE_BEGIN + (1 if keyed else 0)
