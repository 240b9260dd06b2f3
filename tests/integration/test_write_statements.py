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
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.engine import counting
from dinegraph.db.tables import stock_ledger
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.delivery import PositionVerdict
from dinegraph.domain.errors import DomainError
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.services.position_batch import PositionReport, report_courier_positions
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.databases import ON_POSTGRES
from tests.integration.test_delivery import REPORT, at, delivery_of, partner_key, ready_order
from tests.integration.test_position_batch import DADA, draft, positions_of, trip
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
CLAIM_TAKES = 1 if ON_POSTGRES else 0  # a one-line take in the movement's statement
CLAIM_LEDGERS = 1 if ON_POSTGRES else 0  # and the ledger row of what it took
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

    await sale(skus[0])  # the API key is read once, then remembered for a few seconds
    # The movement's key (and its store), the take, the ledger rows; the partner's audit
    # entry. On PostgreSQL a one-line take and its ledger row ride in the key's statement.
    assert await sale(skus[0]) == 3 + SQLITE_BEGIN + AUDIT - CLAIM_TAKES - CLAIM_LEDGERS
    async with engine.connect() as conn:  # each sale's ledger row, however it was written
        rows = await conn.execute(
            sa.select(stock_ledger.c.kind, stock_ledger.c.delta, stock_ledger.c.balance_after)
            .where(stock_ledger.c.sku_id == skus[0])
            .order_by(stock_ledger.c.id)
        )
        assert [tuple(r) for r in rows][-2:] == [("SALE", -1, 49), ("SALE", -1, 48)]
    assert await sale(*skus) == 3 + SQLITE_BEGIN + PG_LOCK + AUDIT
    # A made-to-order dish: the take passes it over, one read says it is on sale; no ledger.
    assert await sale(dish) == 3 + SQLITE_BEGIN + AUDIT - CLAIM_TAKES


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


async def test_a_courier_report_alone_is_its_read_its_position_its_move_and_its_audit(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    async with shop_client(
        settings,
        engine,
        server_timing=True,
        position_batch_ms=0,
        courier_report_min_interval_seconds=0,
    ) as (client, services):
        shop = await new_shop(engine)
        order = await ready_order(client, settings, engine, credentials.hq_admin, shop)
        delivery = (await delivery_of(client, order, credentials.hq_admin))["delivery"]["id"]
        dada = await partner_key(engine, "DADA", ["delivery:write"])
        lat, lng = shop.centre
        values = {"deliveryId": delivery, "lat": lat + 0.001, "lng": lng}
        await statements_of(
            client, REPORT, {"input": {**values, "recordedAt": at(services, 1)}}, dada
        )
        counted = await statements_of(
            client, REPORT, {"input": {**values, "recordedAt": at(services, 2)}}, dada
        )
        # (The API key, known by now.) The delivery, the position, the conditional move,
        # the partner's audit entry.
        assert counted <= 4 + SQLITE_BEGIN


async def test_a_batch_of_courier_reports_is_one_read_two_inserts_and_an_update_per_delivery(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    ids, (lat, lng), cmd = await trip(settings, engine, credentials, 3)
    reports = [
        PositionReport(
            replace(
                cmd,
                delivery_id=d,
                lat=lat + 0.001 * n,
                recorded_at=cmd.recorded_at - timedelta(seconds=120 if n <= 3 else 60),
            ),
            DADA,
            draft(d),
        )
        for n, d in enumerate(ids * 2, start=1)  # two reports of each delivery, a minute apart
    ]
    counter = counting()
    outcomes = await report_courier_positions(reports, uow=SqlUnitOfWork(engine))
    # The deliveries read at once; positions and audit entries each one statement; one
    # conditional update per delivery moved (however many of its reports the batch held).
    assert counter.count <= 1 + 1 + 1 + len(ids) + SQLITE_BEGIN
    verdicts = [o.code if isinstance(o, DomainError) else o[1] for o in outcomes]
    assert verdicts == [PositionVerdict.ACCEPTED] * 6
    # Each delivery moved twice: two versions on, at its second report's point.
    for first, second in zip(outcomes[:3], outcomes[3:], strict=True):
        assert not isinstance(first, DomainError) and not isinstance(second, DomainError)
        assert second[0].version == first[0].version + 1
        assert second[0].position == GeoPoint(first[0].position.lat + 0.003, lng)  # type: ignore[union-attr]
    assert all(r.audit is not None and r.audit.written for r in reports)
    for d in ids:
        assert len(await positions_of(engine, d)) == 2
