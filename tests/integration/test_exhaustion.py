"""Cheap refusals on the run's database: once a flash quota, a coupon template or a shelf is
gone, its refusals open no write transaction and write nothing; the commit that gives units
back clears that at once; and across two processes on a shared broker (PostgreSQL
LISTEN/NOTIFY, Redis) each hears the other's, as it hears a revoked API key. The write
that decides stays the conditional one: races still end with exactly the units there were.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db import identity as identity_db
from dinegraph.db.engine import WRITE, create_engine, local_write_lock
from dinegraph.db.tables import campaign_quotas, orders
from dinegraph.domain.supplies import Supply, campaign_quota, coupon_template, shelf
from dinegraph.events.brokers import Broker
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.security import new_api_key
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.databases import broker_url
from tests.integration.test_stock_concurrency import (
    RECORD_SALE,
    RESTOCK,
    level_and_ledger_sum,
    sale,
)
from tests.shop import BUY_FLASH, new_campaign, new_members, new_shop, new_sku, next_noon

HEARD_WITHIN_S = 10.0  # how long another process may take to hear of a commit
CLAIM = """mutation($t: ID!) { claimCoupon(templateId: $t) { coupon { id } errors { code } } }"""
CREATE_TEMPLATE = """mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) {
    template { id } errors { code } } }"""
UPDATE_TEMPLATE = """mutation($i: UpdateCouponTemplateInput!) { updateCouponTemplate(input: $i) {
    template { id } errors { code } } }"""
MOVE = """mutation($i: UpdateOrderStatusInput!) { updateOrderStatus(input: $i) {
    order { status } errors { code } } }"""


# --- what a process writes -----------------------------------------------------------------


@dataclass
class Writes:
    """Write transactions begun, and the statements run, on one engine."""

    transactions: int = 0
    statements: list[str] = field(default_factory=list)

    @property
    def none(self) -> bool:
        """No write transaction, and no statement that writes or locks."""
        return self.transactions == 0 and not any(
            s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) or "FOR UPDATE" in s
            for s in self.statements
        )

    def touching(self, table: str) -> list[str]:
        """Statements that read or write ``table``: none when the board answered."""
        return [s for s in self.statements if table in s]


@contextmanager
def counting_writes(engine: AsyncEngine) -> Iterator[Writes]:
    writes = Writes()

    def begun(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE, False):
            writes.transactions += 1

    def executed(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        writes.statements.append(statement.upper())

    event.listen(engine.sync_engine, "begin", begun)
    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    try:
        yield writes
    finally:
        event.remove(engine.sync_engine, "begin", begun)
        event.remove(engine.sync_engine, "before_cursor_execute", executed)


@dataclass
class Process:
    """One server process: its app (lifespan running), engine, broker and services."""

    client: GraphQLClient
    engine: AsyncEngine
    broker: Broker
    services: Services


@asynccontextmanager
async def process(settings: Settings, **overrides: Any) -> AsyncIterator[Process]:
    """An in-process app with its lifespan running on an engine of its own, at noon. Its
    sweeps are slowed down, so that what it writes is what the test asks of it."""
    own = settings.model_copy(update={"order_sweep_seconds": 3600.0, **overrides})
    engine = create_engine(own)
    services = replace(default_services(own), clock=Clock(next_noon()))
    app = create_app(own, engine, services=services)  # its lifespan disposes of the engine
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as http,
    ):
        yield Process(GraphQLClient(http), engine, app.state.broker, services)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HEARD_WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def payload(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    found: dict[str, Any] = next(iter(body["data"].values()))
    return found


def codes(found: dict[str, Any]) -> list[str]:
    return [e["code"] for e in found["errors"]]


# --- a flash sale ----------------------------------------------------------------------------


@dataclass
class FlashSale:
    campaign: str
    quota: Supply


async def flash_sale(
    at: Process, engine: AsyncEngine, credentials: Credentials, quota: int
) -> FlashSale:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=2500, stock={store: quota + 5})
    campaign = await new_campaign(
        at.client,
        credentials.operator,
        "FLASH_SALE",
        sku_id=sku,
        price_fen=900,
        store_ids=[store],
        now=at.services.clock(),
        quota=quota,
    )
    return FlashSale(campaign, campaign_quota(decode_id(campaign, "Campaign", ["c"]), store, sku))


async def buy(at: Process, sale_: FlashSale, buyer: dict[str, str], key: str | None = None) -> Any:
    order = {"idempotencyKey": key} if key else None
    return payload(
        await at.client.execute(BUY_FLASH, {"campaignId": sale_.campaign, "order": order}, buyer)
    )


async def test_once_a_flash_quota_is_gone_its_refusals_write_nothing_until_a_cancel(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    async with process(settings) as shop:
        sale_ = await flash_sale(shop, engine, credentials, quota=2)
        buyers = await new_members(settings, engine, 5)
        first = await buy(shop, sale_, buyers[0], key="first-try")
        assert codes(first) == [] and codes(await buy(shop, sale_, buyers[1])) == []
        assert shop.services.board.gone(sale_.quota)

        with counting_writes(shop.engine) as writes:
            late = [await buy(shop, sale_, b) for b in buyers[2:4]]
            retry = await buy(shop, sale_, buyers[0], key="first-try")
        assert [codes(p) for p in late] == [["SOLD_OUT"], ["SOLD_OUT"]]
        assert retry["order"]["id"] == first["order"]["id"]  # a retry still gets its order
        assert writes.none and not writes.touching("CAMPAIGN_QUOTAS"), writes

        cancelled = payload(
            await shop.client.execute(
                MOVE, {"i": {"orderId": first["order"]["id"], "status": "CANCELLED"}}, buyers[0]
            )
        )
        assert cancelled["order"]["status"] == "CANCELLED"
        assert not shop.services.board.gone(sale_.quota)
        assert codes(await buy(shop, sale_, buyers[4])) == []  # at once


async def test_once_a_coupon_template_is_gone_claims_write_nothing_until_more_are_added(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    async with process(settings) as shop:
        created = payload(
            await shop.client.execute(
                CREATE_TEMPLATE,
                {
                    "i": {
                        "title": f"限量券{uuid.uuid4().hex[:4]}",
                        "kind": "NO_THRESHOLD",
                        "amountOffFen": 300,
                        "validDays": 7,
                        "totalQuantity": 2,
                    }
                },
                credentials.operator,
            )
        )
        template = created["template"]["id"]
        members = await new_members(settings, engine, 5)
        for m in members[:2]:
            assert codes(payload(await shop.client.execute(CLAIM, {"t": template}, m))) == []
        supply = coupon_template(decode_id(template, "CouponTemplate", ["t"]))
        assert shop.services.board.gone(supply)

        with counting_writes(shop.engine) as writes:
            refused = [
                payload(await shop.client.execute(CLAIM, {"t": template}, m)) for m in members[2:4]
            ]
        assert [codes(p) for p in refused] == [["COUPON_SOLD_OUT"]] * 2
        assert writes.none and not writes.touching("COUPON_TEMPLATES"), writes

        more = {"i": {"id": template, "totalQuantity": 3}}
        assert (
            codes(payload(await shop.client.execute(UPDATE_TEMPLATE, more, credentials.operator)))
            == []
        )
        assert not shop.services.board.gone(supply)
        assert codes(payload(await shop.client.execute(CLAIM, {"t": template}, members[4]))) == []


async def test_once_a_shelf_is_empty_sales_write_nothing_until_a_restock(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    async with process(settings) as shop:
        sku = await new_sku(engine, price_fen=2990, stock={1: 2})
        sku_id = encode_id("Sku", sku)
        sold = payload(
            await shop.client.execute(
                RECORD_SALE, sale([(sku_id, 2)], f"all-{sku}"), credentials.partner
            )
        )
        assert codes(sold) == []
        assert shop.services.board.gone(shelf(1, sku))

        with counting_writes(shop.engine) as writes:
            refused = payload(
                await shop.client.execute(
                    RECORD_SALE, sale([(sku_id, 1)], f"late-{sku}"), credentials.partner
                )
            )
            replayed = payload(
                await shop.client.execute(
                    RECORD_SALE, sale([(sku_id, 2)], f"all-{sku}"), credentials.partner
                )
            )
        assert refused["errors"] == [
            {
                "code": "OUT_OF_STOCK",
                "message": "库存不足，仅剩 0 件",
                "field": ["lines", "0", "quantity"],
            }
        ]
        assert replayed["sale"] == sold["sale"]  # a retry of the sale that emptied it
        assert writes.none and not writes.touching("STOCK_LEVELS"), writes

        restocked = payload(
            await shop.client.execute(
                RESTOCK,
                {
                    "input": {
                        "storeId": encode_id("Store", 1),
                        "skuId": sku_id,
                        "quantity": 1,
                        "reference": f"in-{sku}",
                    }
                },
                credentials.manager_store_1,
            )
        )
        assert codes(restocked) == []
        assert not shop.services.board.gone(shelf(1, sku))
        again = payload(
            await shop.client.execute(
                RECORD_SALE, sale([(sku_id, 1)], f"after-{sku}"), credentials.partner
            )
        )
        assert codes(again) == []  # at once


async def test_sales_queued_behind_the_one_that_empties_a_shelf_leave_the_queue_together(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    """Where writers queue for one lock (SQLite), the sales waiting behind the one that takes
    the last unit are answered as the board learns the shelf is empty: none of them opens a
    write transaction, and a retry among them still gets its first sale."""
    async with process(settings) as shop:
        lock = local_write_lock(shop.engine)
        if lock is None:
            pytest.skip("only SQLite's writers queue for a lock in the process")
        sku = await new_sku(engine, price_fen=2990, stock={1: 2})
        sku_id = encode_id("Sku", sku)
        earlier = payload(
            await shop.client.execute(
                RECORD_SALE, sale([(sku_id, 1)], f"earlier-{sku}"), credentials.partner
            )
        )
        assert codes(earlier) == []

        async def record(order: str) -> dict[str, Any]:
            found = await shop.client.execute(
                RECORD_SALE, sale([(sku_id, 1)], order), credentials.partner
            )
            return payload(found)

        with counting_writes(shop.engine) as writes:
            await lock.acquire()  # another writer holds it, say
            try:
                last = asyncio.ensure_future(record(f"last-{sku}"))
                await until(lambda: len(lock._waiters or ()) == 1, "the last sale queued")
                queued = [
                    asyncio.ensure_future(record(order))
                    for order in [f"late-{sku}-{n}" for n in range(4)] + [f"earlier-{sku}"]
                ]
                await until(lambda: len(lock._waiters or ()) == 6, "the others queued behind")
            finally:
                lock.release()
            # Bounded, so that a queue that is not left fails here instead of hanging.
            answers = await asyncio.wait_for(asyncio.gather(last, *queued), 30)

        assert [codes(a) for a in answers] == [[], *[["OUT_OF_STOCK"]] * 4, []]
        assert answers[-1]["sale"] == earlier["sale"]  # the retry gets its first sale
        assert shop.services.board.gone(shelf(1, sku))
        assert writes.transactions == 1, writes  # the last sale's alone
        level, _ = await level_and_ledger_sum(engine, sku_id)
        assert level == 0  # two sold of two


# --- two processes on a shared broker ------------------------------------------------------


@asynccontextmanager
async def two_processes(settings: Settings, kind: str) -> AsyncIterator[tuple[Process, Process]]:
    # Long enough that only the broker's news can change what each process knows.
    apart = {
        "broker_url": broker_url(settings, kind),
        "exhaustion_board_seconds": 3600.0,
        "credential_cache_seconds": 3600.0,
    }
    async with process(settings, **apart) as a, process(settings, **apart) as b:
        yield a, b


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_a_quota_gone_through_one_process_is_refused_by_another_until_given_back(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, broker: str
) -> None:
    async with two_processes(settings, broker) as (a, b):
        sale_ = await flash_sale(a, engine, credentials, quota=1)
        first, late, later = await new_members(settings, engine, 3)
        won = await buy(a, sale_, first)
        assert codes(won) == []
        await until(lambda: b.services.board.gone(sale_.quota), "B never heard the quota go")

        with counting_writes(b.engine) as writes:
            assert codes(await buy(b, sale_, late)) == ["SOLD_OUT"]
        assert writes.none and not writes.touching("CAMPAIGN_QUOTAS"), writes

        cancelled = payload(
            await a.client.execute(
                MOVE, {"i": {"orderId": won["order"]["id"], "status": "CANCELLED"}}, first
            )
        )
        assert cancelled["order"]["status"] == "CANCELLED"
        await until(lambda: not b.services.board.gone(sale_.quota), "B never heard it back")
        assert codes(await buy(b, sale_, later)) == []


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_a_key_revoked_through_the_broker_stops_working_in_another_process(
    settings: Settings, engine: AsyncEngine, broker: str
) -> None:
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name="POS to revoke",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=["stock:write"],
        store_ids=[1],
    )
    headers = {"X-Api-Key": key.key}
    query = {"query": "{ stores(first: 1) { edges { node { id } } } }"}
    async with two_processes(settings, broker) as (a, b):
        assert (
            await b.client.http.post("/graphql", json=query, headers=headers)
        ).status_code == 200
        revoked = await identity_db.revoke_api_key(
            engine, key.prefix, at=datetime.now(UTC), events=a.broker
        )
        assert revoked is not None
        deadline = time.monotonic() + HEARD_WITHIN_S
        while (
            await b.client.http.post("/graphql", json=query, headers=headers)
        ).status_code == 200:
            assert time.monotonic() < deadline, "B kept accepting a revoked key"
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_buyers_racing_through_two_processes_get_exactly_the_quota(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, broker: str
) -> None:
    async with two_processes(settings, broker) as (a, b):
        sale_ = await flash_sale(a, engine, credentials, quota=10)
        buyers = await new_members(settings, engine, 120)
        results = await asyncio.gather(
            *(buy(a if n % 2 else b, sale_, m) for n, m in enumerate(buyers))
        )
        won = [r for r in results if r["order"] is not None]
        assert len(won) == 10
        assert sorted(codes(r)[0] for r in results if r["order"] is None) == ["SOLD_OUT"] * 110
        await assert_quota_held(engine, sale_.quota, orders_placed=10)
        # Both processes know, from their own commits or each other's.
        await until(lambda: a.services.board.gone(sale_.quota), "A never knew")
        await until(lambda: b.services.board.gone(sale_.quota), "B never knew")


async def assert_quota_held(engine: AsyncEngine, quota: Supply, *, orders_placed: int) -> None:
    async with engine.connect() as conn:
        remaining = await conn.scalar(
            sa.select(campaign_quotas.c.remaining).where(
                campaign_quotas.c.campaign_id == quota.campaign_id,
                campaign_quotas.c.store_id == quota.store_id,
                campaign_quotas.c.sku_id == quota.sku_id,
            )
        )
        placed = await conn.scalar(
            sa.select(sa.func.count()).where(orders.c.campaign_id == quota.campaign_id)
        )
    assert (remaining, placed) == (0, orders_placed)
