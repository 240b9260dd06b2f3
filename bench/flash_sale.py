"""Flash-sale (秒杀) benchmark: many buyers arrive within a second for a small quota, and a floor.

The issue's scenario: 5,000 buyers arrive within one second for a quota of 200 at one store;
report orders/s, the p99 latency and the number oversold (must be 0), on SQLite and on
PostgreSQL.

Builds a fresh demo database (``--db sqlite``: SQLite in a temporary directory; ``--db
postgres`` or --database-url: a new ``dinegraph_bench_<random>`` database on that server,
dropped at the end), starts ``dinegraph serve --workers 1`` on a free loopback port (with
--processes N, N of them on the same database sharing a broker: PostgreSQL's NOTIFY, or on
SQLite Redis at --redis-url; the client's connections are spread over them in turn, as a
balancer in front of them would, and their CPU is summed), inserts
--buyers fresh members (plus --connections warm-up members) straight into the database and
mints their access tokens with the server's secret key before any clock starts, brings the
level of one tracked SKU of store --store (the first tracked SKU on its PICKUP menu) high
enough through ``restock`` (HQ_ADMIN), and sets up every campaign through ``createCampaign``
as HQ_ADMIN: FLASH_SALE, that one SKU at half its list price, that one store, PICKUP,
--quota per store, one order per member. Each campaign holds its quota from the shelf at
once (a CAMPAIGN_HOLD in the ledger); its orders then draw on the quota row only.

The server runs in PRODUCTION mode on the real clock (no access log), the store of the sale
opened around the clock in the scratch database (a pickup order needs the store in its
opening hours, whatever the hour of the run), with ``DINEGRAPH_SERVER_TIMING=1`` (the
statement count of each answer) and a payment timeout of a day, so that no unpaid order is
swept, and its quota given back, during the checks. ``--mode development`` serves as the
figures before 2026-12-03 were taken: DEVELOPMENT mode (which writes uvicorn's access log)
with ``DINEGRAPH_CLOCK_START`` at today 12:00 Asia/Shanghai, as bench/checkout.py does.

* ``graphql``: ``buyFlashSale(campaignId:, order: {storeId, idempotencyKey})`` by each buyer
  once, with a fresh uuid4 key. Buyer ``i`` arrives at ``i / buyers * --spread`` seconds
  (evenly over one second by default) and joins the client's queue. Concurrency is bounded
  by the client's connection pool: --connections (300) keep-alive HTTP/1.1 connections,
  each taking the next buyer in arrival order as soon as its previous answer is in, so at
  most that many requests are in flight and the others wait in the client. The pool is a
  lean one (the harness's ``LeanConnection``), not httpx: with hundreds of connections httpx's
  pool costs the client about 11.5 ms of CPU per request (0.4 ms here; measured on this
  machine while writing the bench), enough to make the load generator the bottleneck of
  a 2-core machine; ``--client httpx`` drives the same pool size through one
  httpx.AsyncClient instead, for comparison. Every buy past the quota must be refused
  with SOLD_OUT.
* ``floor``: the same attempts, on the same arrival schedule and the same bound of
  in-flight attempts, on a second fresh campaign of the same quota, straight through the
  product's engine in this process (``dinegraph.db.engine.create_engine``; on SQLite WAL
  and BEGIN IMMEDIATE, writers queued on the product's ``local_write_lock`` as its unit of
  work queues them): one transaction per attempt with the product's conditional update of
  the quota row (``UPDATE campaign_quotas SET remaining = remaining - 1 WHERE campaign_id
  ... AND closed IS false AND remaining >= 1``), rollback and SOLD_OUT when it finds no
  row, else INSERT of the order (with its campaign_id) and of its one order line. It leaves
  out everything else the product does: reading the campaign, the member, the prices and
  the store, the early sold-out read on SQLite, the per-member entry (campaign_entries),
  the idempotency lookup, the GraphQL layer.

Latencies are from each buyer's arrival time (not from the moment a connection took it),
so the wait for one of the client's connections counts: ``queue_wait`` shows that share.
``server_cpu_phases`` splits the server's CPU (sampled every 0.1 s) at the last successful
answer: the sale, and the refusals after it. ``wall_s`` is from the first arrival to the
last answer; ``orders_per_s`` is the successful orders over the time from the first arrival
to the last successful answer; ``answers_per_s`` every answer over ``wall_s``.

Each run gets fresh campaigns (and a spare, smaller one to warm up on right before, with
the warm-up members: connections, code paths, caches), waits for a quiet machine first,
and is made again (--retries) when other work took more than 30% of a core during it,
unless its answers were wrong; the least disturbed run is reported. Other work is the
machine's busy time less the server's, the client's, PostgreSQL's and the hypervisor's
steal, which is reported apart (``steal_pct``, in % of one core): the 2-vCPU VM these
figures were taken on reports about half a core of steal even while idle.

After every run the database is checked, not the answers: the campaign's orders and their
units (order_lines), the quota row's ``remaining`` (must equal quota - units, and not be
negative), the per-member entries (the product's), the shelf level of the SKU before and
after the run (the sale must not touch it: a campaign order draws on the quota, which was
held from the shelf when the campaign was set up, and that hold is checked too) and the
ledger rows written during the run (none). ``oversold`` is the largest excess any of these
shows: units in orders past the quota, successful answers past the quota, a negative
``remaining``, units missing from the shelf. Any failure is reported loudly and the exit
status is 1.

Prints one JSON line per run of the bench (one database) on stdout, the product's figures
at the top level and the floor's under ``floor``; progress goes to stderr. Usage::

    .venv/bin/python bench/flash_sale.py --db sqlite [--buyers 5000] [--quota 200]
    .venv/bin/python bench/flash_sale.py --db postgres \
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from harness.cpu import (
    CpuUsage,
    busy_pct,
    cores,
    pct_of_core,
    pid_cpu_seconds,
    rss_mb,
    snapshot,
    usage,
    wait_for_quiet,
)
from harness.database import Demo, demo_database, pg_sessions, write_connection
from harness.http import (
    KEEPALIVE_EXPIRY_S,
    REQUEST_TIMEOUT_S,
    LeanConnection,
    graphql,
    graphql_body,
    pooled_client,
    statement_count,
)
from harness.ids import global_id
from harness.processes import LOOPBACK, Server, cli_value, start_product, stopping, wait_ready
from harness.report import BenchError, json_line, log, machine, product_revision
from harness.runs import (
    Out,
    Result,
    add_common_options,
    add_processes_options,
    check_common_options,
    check_processes_options,
    least_disturbed,
    run_bench,
    server_failures,
    wrong_answers,
)
from harness.shop import (
    PAYMENT_TIMEOUT_MINUTES,
    catalog,
    development_env,
    insert_members,
    insert_order,
    menu_skus,
    shop_noon,
    sku_id,
)
from harness.stats import ms, pct_ms, ratio
from harness.stock import set_levels, tracked_levels
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import local_write_lock
from dinegraph.db.tables import (
    campaign_entries,
    campaign_quotas,
    order_lines,
    orders,
    stock_ledger,
    stores,
)
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_member_token

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
RUN_TIMEOUT_S = 900.0  # one run's arrivals and answers, at most
START_DELAY_S = 0.5  # from starting a run to its first arrival
CPU_SAMPLE_S = 0.1  # how often the server's CPU time is read during a run
SHELF_MARGIN = 100  # units left on the shelf beyond every campaign's hold
TARGETS = ("graphql", "floor")
OK, SOLD_OUT = "ok", "SOLD_OUT"

BUY = (
    "mutation Buy($campaignId: ID!, $order: CampaignOrderInput) "
    "{ buyFlashSale(campaignId: $campaignId, order: $order) "
    "{ order { id status total { fen } } errors { code field message } } }"
)
CREATE_CAMPAIGN = (
    "mutation Create($input: CreateCampaignInput!) "
    "{ createCampaign(input: $input) "
    "{ campaign { id quotaPerStore } errors { code field message } } }"
)

Attempt = Callable[[int, int], Awaitable[tuple[str, int | None, str | None]]]
"""(slot, i): buyer ``i`` buys on connection ``slot`` of the client's pool; (outcome, the
order id when OK, a problem worth reporting or None)."""


# --- the SKU and the campaigns --------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    store_id: int
    sku_id: int
    product_id: int
    name: str
    specs: dict[str, str]
    list_price_fen: int
    flash_price_fen: int


async def pick_item(
    client: httpx.AsyncClient, server: Server, engine: AsyncEngine, store_id: int
) -> Item:
    """The first tracked SKU on the store's PICKUP menu, not sold out there."""
    found = await menu_skus(client, server.base_url, store_id, "PICKUP")
    tracked = sorted(
        sku_id(s) for s in found if s["tracked"] and not (s["stock"] and s["stock"]["soldOut"])
    )
    if not tracked:
        raise BenchError(f"no tracked SKU on sale for PICKUP at store {store_id}")
    sku = (await catalog(engine, [tracked[0]]))[tracked[0]]
    if sku.price_fen < 2:
        raise BenchError(f"SKU {tracked[0]} costs {sku.price_fen} fen: no flash price below it")
    return Item(
        store_id,
        tracked[0],
        sku.product_id,
        sku.name,
        sku.specs,
        sku.price_fen,
        sku.price_fen // 2,
    )


async def create_campaign(
    client: httpx.AsyncClient,
    server: Server,
    token: str,
    item: Item,
    name: str,
    quota: int,
    noon: datetime,
) -> tuple[str, int]:
    """A FLASH_SALE of the item at its store through the product; (global id, row id)."""
    variables = {
        "input": {
            "kind": "FLASH_SALE",
            "name": name,
            # The server's clock starts at noon when it starts, so it is past noon now.
            "startsAt": (noon - timedelta(hours=1)).isoformat(),
            "endsAt": (noon + timedelta(days=1)).isoformat(),
            "items": [{"skuId": global_id("Sku", item.sku_id), "priceFen": item.flash_price_fen}],
            "storeIds": [global_id("Store", item.store_id)],
            "channels": ["PICKUP"],
            "quotaPerStore": quota,
            "perMemberLimit": 1,
        }
    }
    data = await graphql(
        client,
        server.base_url,
        CREATE_CAMPAIGN,
        variables,
        {"authorization": f"Bearer {token}"},
    )
    payload = data["createCampaign"]
    if payload["errors"] or payload["campaign"] is None:
        raise BenchError(f"createCampaign {name!r} refused: {payload['errors']}")
    campaign = str(payload["campaign"]["id"])
    return campaign, decode_id(campaign, "Campaign", ["id"])


async def shelf(engine: AsyncEngine, item: Item) -> int:
    level = (await tracked_levels(engine)).get((item.store_id, item.sku_id))
    if level is None:
        raise BenchError(f"no counted level of SKU {item.sku_id} at store {item.store_id}")
    return level


# --- the two ways to buy --------------------------------------------------------------------


def read_answer(
    status: int, content: bytes, timing: str | bytes
) -> tuple[str, int | None, str | None, int | None]:
    """(outcome, order id, problem, statements) of one buyFlashSale answer."""
    if status != 200:
        return f"HTTP_{status}", None, f"{content[:200]!r}", None
    answer = orjson.loads(content)
    if "errors" in answer:
        return "GRAPHQL_ERROR", None, str(answer["errors"])[:300], None
    payload = answer["data"]["buyFlashSale"]
    statements = statement_count(timing)
    if payload["order"] is not None and not payload["errors"]:
        return OK, decode_id(payload["order"]["id"], "Order", ["id"]), None, statements
    outcome = "+".join(e["code"] for e in payload["errors"]) or "NO_ORDER_NO_ERROR"
    problem = None if outcome == SOLD_OUT else str(payload["errors"][:2])
    return outcome, None, problem, statements


@dataclass
class Client:
    """The client's pool of connections to the server: ``lean`` (Connection, the default)
    or ``httpx`` (one AsyncClient whose pool holds as many connections)."""

    kind: str
    server: Server
    connections: list[LeanConnection]
    httpx_client: httpx.AsyncClient | None

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def graphql_attempt(
    client: Client, campaign: str, item: Item, tokens: list[str]
) -> tuple[Attempt, dict[int, tuple[str, int]]]:
    """buyFlashSale through /graphql as buyer ``i`` on connection ``slot`` (requests made
    beforehand); also the statement counts the server reported: buyer -> (outcome, n)."""
    server = client.server
    store = global_id("Store", item.store_id)
    bodies = [
        graphql_body(
            BUY,
            {
                "campaignId": campaign,
                "order": {"storeId": store, "idempotencyKey": str(uuid.uuid4())},
            },
            "Buy",
        )
        for _ in tokens
    ]
    statements: dict[int, tuple[str, int]] = {}

    def done(
        i: int, status: int, content: bytes, timing: str | bytes
    ) -> tuple[str, int | None, str | None]:
        outcome, order_id, problem, count = read_answer(status, content, timing)
        if count is not None:
            statements[i] = (outcome, count)
        return outcome, order_id, problem

    if client.httpx_client is not None:
        http = client.httpx_client
        url = f"{server.base_url}/graphql"
        headers = [
            {"content-type": "application/json", "authorization": f"Bearer {t}"} for t in tokens
        ]

        async def attempt_httpx(slot: int, i: int) -> tuple[str, int | None, str | None]:
            response = await http.post(url, content=bodies[i], headers=headers[i])
            timing = response.headers.get("server-timing", "")
            return done(i, response.status_code, response.content, timing)

        return attempt_httpx, statements

    # Made beforehand, with any connection (they differ only in the socket).
    connection = client.connections[0]
    requests = [
        connection.request("/graphql", body, {"authorization": f"Bearer {token}"})
        for token, body in zip(tokens, bodies, strict=True)
    ]

    async def attempt(slot: int, i: int) -> tuple[str, int | None, str | None]:
        status, head, content = await client.connections[slot].exchange(requests[i])
        return done(i, status, content, head)

    return attempt, statements


def floor_attempt(
    engine: AsyncEngine,
    campaign_id: int,
    item: Item,
    member_ids: list[int],
    server_now: Callable[[], datetime],
) -> Attempt:
    """One transaction: the product's conditional update of the quota row, and when it
    found a unit, the order and its line; rollback and SOLD_OUT otherwise."""
    lock = local_write_lock(engine)  # SQLite: the product's unit of work queues on it
    take = (
        campaign_quotas.update()
        .where(
            campaign_quotas.c.campaign_id == campaign_id,
            campaign_quotas.c.store_id == item.store_id,
            campaign_quotas.c.sku_id == item.sku_id,
            campaign_quotas.c.closed.is_(False),
            campaign_quotas.c.remaining >= 1,
        )
        .values(remaining=campaign_quotas.c.remaining - 1)
    )

    async def attempt(slot: int, i: int) -> tuple[str, int | None, str | None]:
        async with lock or contextlib.nullcontext(), write_connection(engine) as conn:
            if (await conn.execute(take)).rowcount != 1:
                await conn.rollback()
                return SOLD_OUT, None, None
            price = item.flash_price_fen
            order_id = await insert_order(
                conn,
                member_id=member_ids[i],
                store_id=item.store_id,
                channel="PICKUP",
                subtotal_fen=price,
                now=server_now(),
                campaign_id=campaign_id,
            )
            await conn.execute(
                order_lines.insert().values(
                    order_id=order_id,
                    line_no=1,
                    sku_id=item.sku_id,
                    product_id=item.product_id,
                    name=item.name,
                    specs=item.specs,
                    unit_price_fen=price,
                    quantity=1,
                    refunded_quantity=0,
                )
            )
            await conn.commit()
        return OK, order_id, None

    return attempt


# --- the arrivals ---------------------------------------------------------------------------


@dataclass
class Run:
    buyers: int
    seconds: float = 0.0  # first arrival to last answer
    # per buyer: (arrival, sent, answered) in seconds after the first arrival; outcome; buyer
    samples: list[tuple[float, float, float, str, int]] = field(default_factory=list)
    order_ids: dict[int, int] = field(default_factory=dict)  # buyer -> order id
    problems: list[str] = field(default_factory=list)
    server_cpu: list[tuple[float, float]] = field(default_factory=list)  # (t, CPU seconds)
    cpu: CpuUsage | None = None  # this process, PostgreSQL, the machine (server: above)
    late_start_s: float = 0.0  # how late the last buyer left its sleep (client lag)


# Complexity: The arrival schedule, read top to bottom as the steps it measures.
async def arrivals(  # noqa: C901
    attempt: Attempt,
    buyers: int,
    spread_s: float,
    slots: int,
    *,
    server_pids: tuple[int, ...] = (),
    postgres: bool = False,
) -> Run:
    """Buyer ``i`` arrives at ``i / buyers * spread_s`` and joins the client's queue; each
    of ``slots`` connections takes the next buyer in arrival order as soon as it is free,
    so at most ``slots`` attempts are under way. Bounded: one attempt per buyer."""
    run = Run(buyers=buyers)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    t0 = time.perf_counter() + START_DELAY_S

    async def arrive() -> None:
        for i in range(buyers):
            arrival = t0 + spread_s * i / buyers
            delay = arrival - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            run.late_start_s = max(run.late_start_s, time.perf_counter() - arrival)
            queue.put_nowait((i, arrival))
        for _ in range(slots):
            queue.put_nowait(None)  # after every buyer: the queue is first in, first out

    async def connection(slot: int) -> None:
        while (taken := await queue.get()) is not None:
            i, arrival = taken
            sent = time.perf_counter()
            try:
                outcome, order_id, problem = await attempt(slot, i)
            except Exception as exc:  # a dead connection, a timeout, a database error
                outcome, order_id = type(exc).__name__, None
                problem = f"{type(exc).__name__}: {exc}"[:300]
            done = time.perf_counter()
            run.samples.append((arrival - t0, sent - t0, done - t0, outcome, i))
            if order_id is not None:
                run.order_ids[i] = order_id
            if problem is not None:
                run.problems.append(
                    f"{outcome}: {problem} (arrived {arrival - t0:.2f}s, sent after "
                    f"{ms(sent - arrival)} ms, answered after {ms(done - arrival)} ms)"
                )

    async def sample_server_cpu(stop: asyncio.Event) -> None:
        while True:
            cpu = servers_cpu_seconds(server_pids)
            if cpu is not None:
                run.server_cpu.append((time.perf_counter() - t0, cpu))
            try:
                await asyncio.wait_for(stop.wait(), CPU_SAMPLE_S)
                return
            except TimeoutError:
                continue

    databases = ("postgres",) if postgres else ()
    before = snapshot((), databases)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_server_cpu(stop)) if server_pids else None
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            await asyncio.gather(arrive(), *(connection(slot) for slot in range(slots)))
    except TimeoutError as exc:
        raise BenchError(f"the run took longer than {RUN_TIMEOUT_S} s") from exc
    finally:
        stop.set()
        if sampler is not None:
            await sampler
    end = time.perf_counter()
    if server_pids:
        cpu = servers_cpu_seconds(server_pids)
        if cpu is not None:
            run.server_cpu.append((end - t0, cpu))
    run.seconds = max(s[2] for s in run.samples)
    run.cpu = usage(before, snapshot((), databases))
    return run


def servers_cpu_seconds(pids: tuple[int, ...]) -> float | None:
    """The CPU seconds of the product's processes together (None if one cannot be read)."""
    seconds = [pid_cpu_seconds(pid) for pid in pids]
    return None if any(s is None for s in seconds) else sum(s for s in seconds if s is not None)


def cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
    """Server CPU seconds between two moments of the run, from the nearest samples."""
    if len(samples) < 2:
        return None

    def at(t: float) -> float:
        before = [cpu for when, cpu in samples if when <= t]
        return before[-1] if before else samples[0][1]

    return at(end) - at(start)


# --- checking the database ------------------------------------------------------------------


@dataclass(frozen=True)
class Before:
    shelf: int
    ledger_id: int


async def before_run(engine: AsyncEngine, item: Item) -> Before:
    async with engine.connect() as conn:
        ledger = await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(stock_ledger.c.id), 0)))
    return Before(await shelf(engine, item), int(ledger or 0))


async def check_database(
    engine: AsyncEngine,
    campaign_id: int,
    item: Item,
    quota: int,
    before: Before,
    run: Run,
    product: bool,
) -> dict[str, Any]:
    """What the database holds after a run, against the quota and the answers."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(campaign_quotas.c.quota, campaign_quotas.c.remaining).where(
                    campaign_quotas.c.campaign_id == campaign_id,
                    campaign_quotas.c.store_id == item.store_id,
                    campaign_quotas.c.sku_id == item.sku_id,
                )
            )
        ).one()
        stored = {
            int(r.id): int(r.member_id)
            for r in await conn.execute(
                sa.select(orders.c.id, orders.c.member_id).where(
                    orders.c.campaign_id == campaign_id
                )
            )
        }
        lines = (
            await conn.execute(
                sa.select(
                    sa.func.count().label("lines"),
                    sa.func.coalesce(sa.func.sum(order_lines.c.quantity), 0).label("units"),
                    sa.func.count(sa.distinct(order_lines.c.sku_id)).label("skus"),
                )
                .join(orders, orders.c.id == order_lines.c.order_id)
                .where(orders.c.campaign_id == campaign_id)
            )
        ).one()
        entries = await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(campaign_entries.c.entries), 0)).where(
                campaign_entries.c.campaign_id == campaign_id
            )
        )
        ledger_rows = await conn.scalar(
            sa.select(sa.func.count()).where(
                stock_ledger.c.id > before.ledger_id,
                stock_ledger.c.store_id == item.store_id,
                stock_ledger.c.sku_id == item.sku_id,
            )
        )
    shelf_after = await shelf(engine, item)
    remaining, units = int(row.remaining), int(lines.units)
    ok = len(run.order_ids)
    shortfall = max(0, before.shelf - shelf_after)
    oversold = max(0, units - quota, ok - quota, -remaining, shortfall)
    problems: list[str] = []
    if oversold:
        problems.append(
            f"OVERSOLD by {oversold}: {units} units in orders, {ok} orders answered, "
            f"remaining {remaining}, shelf {before.shelf} -> {shelf_after}, quota {quota}"
        )
    if int(row.quota) != quota:
        problems.append(f"the quota row says {row.quota}, the campaign was made with {quota}")
    if remaining != quota - units:
        problems.append(f"remaining {remaining} != quota {quota} - {units} units in orders")
    if shelf_after != before.shelf:
        problems.append(f"the shelf moved during the run: {before.shelf} -> {shelf_after}")
    if ledger_rows:
        problems.append(f"{ledger_rows} ledger rows of the SKU were written during the run")
    if int(lines.lines) != len(stored) or int(lines.skus) > 1 or units != len(stored):
        problems.append(
            f"{len(stored)} orders with {lines.lines} lines of {lines.skus} SKUs, {units} units"
        )
    if len(set(stored.values())) != len(stored):
        problems.append("a member holds more than one order of the campaign")
    if set(stored) != set(run.order_ids.values()):
        problems.append(
            f"{len(stored)} orders stored, {ok} successful answers: "
            f"{len(set(stored) - set(run.order_ids.values()))} stored that no buyer heard of, "
            f"{len(set(run.order_ids.values()) - set(stored))} answered but not stored"
        )
    if product and int(entries or 0) != len(stored):
        problems.append(f"{entries} member entries counted for {len(stored)} orders")
    sold_out = sum(1 for s in run.samples if s[3] == SOLD_OUT)
    if sold_out and remaining > 0:
        problems.append(f"{sold_out} refused SOLD_OUT while {remaining} units remain")
    if ok != min(quota, run.buyers) and not any(s[3] not in (OK, SOLD_OUT) for s in run.samples):
        problems.append(f"{ok} orders for a quota of {quota} and {run.buyers} buyers")
    return {
        "oversold": oversold,
        "in_database": {
            "orders": len(stored),
            "units": units,
            "quota_remaining": remaining,
            "member_entries": int(entries or 0) if product else None,
            "shelf_before": before.shelf,
            "shelf_after": shelf_after,
            "ledger_rows_during_run": int(ledger_rows or 0),
        },
        "consistent": not problems,
        "problems": problems[:10],
    }


# --- measuring ------------------------------------------------------------------------------


def summarise(run: Run, in_flight: int, statements: dict[int, tuple[str, int]] | None) -> Result:
    if not run.samples:
        raise BenchError("no buyer was answered")
    latency = sorted(s[2] - s[0] for s in run.samples)
    ok_latency = sorted(s[2] - s[0] for s in run.samples if s[3] == OK)
    waits = sorted(s[1] - s[0] for s in run.samples)
    codes: dict[str, int] = {}
    for s in run.samples:
        codes[s[3]] = codes.get(s[3], 0) + 1
    ok, sold_out = codes.get(OK, 0), codes.get(SOLD_OUT, 0)
    last_ok = max((s[2] for s in run.samples if s[3] == OK), default=None)
    first_sold_out = min((s[2] for s in run.samples if s[3] == SOLD_OUT), default=None)

    assert run.cpu is not None
    cpu, seconds = run.cpu, run.seconds
    late = sorted(
        s[2] - s[0]
        for s in run.samples
        if s[3] == SOLD_OUT and last_ok is not None and s[1] < last_ok
    )
    late_refusals = {
        "count": len(late),
        "p50_ms": pct_ms(late, 50),
        "max_ms": ms(late[-1]) if late else None,
    }
    server_cpu = cpu_between(run.server_cpu, -1.0, run.seconds + 1.0)
    # Work of this machine's other processes: busy time less ours and less steal (on this
    # VM the hypervisor reports steal even while the guest idles), over the whole window
    # (the start delay included), scaled to the run.
    window = seconds + START_DELAY_S
    other_cpu = cpu.other_s(window, extra_known_s=server_cpu or 0.0, without_steal=True)
    if other_cpu is not None:
        other_cpu *= seconds / window
    phases = None
    if server_cpu is not None and last_ok is not None:
        # Until the last order was answered (orders and the refusals among them), and after.
        selling = cpu_between(run.server_cpu, -1.0, last_ok)
        after = cpu_between(run.server_cpu, last_ok, run.seconds + 1.0)
        answered_selling = sum(1 for s in run.samples if s[2] <= last_ok)
        answered_after = len(run.samples) - answered_selling
        phases = {
            "until_last_order": {
                "seconds": round(last_ok, 3),
                "answers": answered_selling,
                "server_cpu_s": None if selling is None else round(selling, 2),
                "server_cpu_ms_per_answer": (
                    round(1000 * selling / answered_selling, 2)
                    if selling is not None and answered_selling
                    else None
                ),
            },
            "after_last_order": {
                "seconds": round(run.seconds - last_ok, 3),
                "answers": answered_after,
                "server_cpu_s": None if after is None else round(after, 2),
                "server_cpu_ms_per_answer": (
                    round(1000 * after / answered_after, 2)
                    if after is not None and answered_after
                    else None
                ),
            },
        }

    def statements_of(outcome: str) -> int | None:
        counts = [n for o, n in (statements or {}).values() if o == outcome]
        return statistics.median_low(counts) if counts else None

    return {
        "orders": ok,
        "sold_out": sold_out,
        "other_errors": len(run.samples) - ok - sold_out,
        "answers": {k: v for k, v in sorted(codes.items())},
        "wall_s": round(run.seconds, 3),
        "orders_per_s": round(ok / last_ok, 1) if last_ok else None,
        "answers_per_s": round(len(run.samples) / run.seconds, 1),
        "p50_ms": pct_ms(latency, 50),
        "p99_ms": pct_ms(latency, 99),
        "max_ms": ms(latency[-1]),
        "ok_p50_ms": pct_ms(ok_latency, 50),
        "ok_p99_ms": pct_ms(ok_latency, 99),
        "queue_wait_p50_ms": pct_ms(waits, 50),
        "queue_wait_p99_ms": pct_ms(waits, 99),
        "last_order_after_s": None if last_ok is None else round(last_ok, 3),
        "first_sold_out_after_s": None if first_sold_out is None else round(first_sold_out, 3),
        # Refusals of buyers whose request went out before the last order was answered:
        # those that got past a quota read while units were left and then waited for the
        # write (SQLite: behind one lock), and only there found the quota gone.
        "sold_out_sent_before_last_order": late_refusals,
        "late_start_max_ms": ms(run.late_start_s),
        "connections": in_flight,
        "sql_statements": (
            {"ok": statements_of(OK), "sold_out": statements_of(SOLD_OUT)} if statements else None
        ),
        "first_errors": sorted(set(run.problems))[:3],
        # CPU over the run (first arrival to last answer) in % of one core.
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
        "server_cpu_pct": pct_of_core(server_cpu, seconds),
        "server_cpu_ms_per_answer": (
            None if server_cpu is None else round(1000 * server_cpu / len(run.samples), 2)
        ),
        "server_cpu_phases": phases,
        "client_cpu_pct": pct_of_core(cpu.client_s, seconds),
        "database_cpu_pct": pct_of_core(cpu.database_s, seconds),
        "other_cpu_pct": pct_of_core(other_cpu, seconds),
        "steal_pct": (None if cpu.steal is None else round(100 * cpu.steal * cores(), 1)),
    }


def save_samples(directory: Path, name: str, run: Run) -> None:
    """Every buyer of a run as CSV: buyer, arrival, sent, answered (s), outcome."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = sorted(run.samples, key=lambda s: s[4])
    text = "buyer,arrival_s,sent_s,answered_s,outcome\n" + "".join(
        f"{s[4]},{s[0]:.4f},{s[1]:.4f},{s[2]:.4f},{s[3]}\n" for s in rows
    )
    (directory / f"{name}.csv").write_text(text)


@dataclass
class Bench:
    args: argparse.Namespace
    demo: Demo
    product: Server  # the first of the product's processes: setting up goes through it
    products: list[Server]
    http: httpx.AsyncClient  # setting up
    client: Client  # the buyers' connections
    engine: AsyncEngine
    hq_token: str
    noon: datetime
    item: Item
    buyers: list[int]
    buyer_tokens: list[str]
    warmers: list[int]
    warmer_tokens: list[str]
    clock_offset: timedelta

    def server_now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset


async def one_run(bench: Bench, target: str, attempt_no: int) -> Result:
    """Fresh campaigns, a quiet machine, a warm-up, the arrivals, the checks."""
    args, item = bench.args, bench.item
    tag = f"{target[0]}{attempt_no}-{secrets.token_hex(2)}"
    warm_quota = max(1, args.connections // 2)
    shelf0 = await shelf(bench.engine, item)
    warm = await create_campaign(
        bench.http, bench.product, bench.hq_token, item, f"预热{tag}", warm_quota, bench.noon
    )
    flash = await create_campaign(
        bench.http, bench.product, bench.hq_token, item, f"秒杀{tag}", args.quota, bench.noon
    )
    held = shelf0 - await shelf(bench.engine, item)
    if held != warm_quota + args.quota:
        raise BenchError(f"the campaigns held {held} units, not {warm_quota + args.quota}")

    def attempt_on(
        campaign: tuple[str, int], warming: bool
    ) -> tuple[Attempt, dict[int, tuple[str, int]] | None]:
        members = bench.warmers if warming else bench.buyers
        if target == "graphql":
            tokens = bench.warmer_tokens if warming else bench.buyer_tokens
            return graphql_attempt(bench.client, campaign[0], item, tokens)
        return floor_attempt(bench.engine, campaign[1], item, members, bench.server_now), None

    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait, count_steal=False)
    # Right before the run: connections, caches, both the order and the SOLD_OUT paths.
    warm_attempt, _ = attempt_on(warm, warming=True)
    warm_run = await arrivals(warm_attempt, len(bench.warmers), 0.0, args.connections)
    if warm_run.problems:
        raise BenchError(f"warm-up ({target}) failed: {sorted(set(warm_run.problems))[:3]}")
    log(
        f"{target}: warm-up of {len(bench.warmers)} buys ({len(warm_run.order_ids)} orders) "
        f"in {warm_run.seconds:.2f}s"
    )
    before = await before_run(bench.engine, item)
    sessions = await pg_sessions(bench.engine)
    attempt, statements = attempt_on(flash, warming=False)
    log(
        f"{target}: {args.buyers} buyers over {args.spread}s for {args.quota}, "
        f"at most {args.connections} in flight"
    )
    run = await arrivals(
        attempt,
        args.buyers,
        args.spread,
        args.connections,
        server_pids=tuple(p.pid for p in bench.products) if target == "graphql" else (),
        postgres=bench.demo.postgres,
    )
    result = summarise(run, args.connections, statements)
    if args.samples_dir is not None:
        save_samples(args.samples_dir, f"{bench.demo.database}-{target}-{tag}", run)
    result.update(
        await check_database(
            bench.engine, flash[1], item, args.quota, before, run, product=target == "graphql"
        )
    )
    result["campaign_id"] = flash[1]
    result["attempt"] = attempt_no
    log(f"{target}: {json_line(result)}")
    result["machine_busy_before_pct"] = busy_pct(busy)
    if sessions is not None:
        result["database_sessions_opened"] = (await pg_sessions(bench.engine) or 0) - sessions
    return result


async def measure_target(bench: Bench, target: str) -> Result:
    best, attempts = await least_disturbed(
        functools.partial(one_run, bench, target),
        retries=bench.args.retries,
        other_pct=lambda r: r["other_cpu_pct"],
        wrong=lambda r: not r["consistent"] or bool(r["other_errors"]),
        label=target,
    )
    best["attempts"] = attempts
    return best


async def measure(
    args: argparse.Namespace,
    demo: Demo,
    products: list[Server],
    hq_token: str,
    clock_start: datetime | None,
) -> Result:
    for server in products:
        await wait_ready(server)
    product = products[0]
    settings = demo.settings(clock_start=clock_start)
    # As the server's Clock, near enough: started at clock_start (development), or real time.
    clock_offset = clock_start - datetime.now(UTC) if clock_start else timedelta(0)
    noon = clock_start or datetime.now(UTC)  # the campaigns run from an hour before it
    engine = demo.engine()
    results: dict[str, Result] = {}
    buyers_http = pooled_client(args.connections) if args.client == "httpx" else None
    connections = [
        LeanConnection(
            LOOPBACK,
            products[slot % len(products)].port,  # as a balancer would spread them
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            timeout=REQUEST_TIMEOUT_S,
        )
        for slot in range(0 if buyers_http else args.connections)
    ]
    client = Client(args.client, product, connections, buyers_http)
    try:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) as http:
            item = await pick_item(http, product, engine, args.store)
            # Enough on the shelf for every campaign any run may set up, and a margin.
            runs = len(TARGETS) * (args.retries + 1)
            wanted = runs * (args.quota + max(1, args.connections // 2)) + SHELF_MARGIN
            await set_levels(
                product.base_url, hq_token, engine, {(item.store_id, item.sku_id): wanted}
            )
            log(
                f"SKU {item.sku_id} ({item.name}, {item.list_price_fen} fen, flash "
                f"{item.flash_price_fen}) at store {item.store_id}: {wanted} on the shelf"
            )
            run_tag = secrets.token_hex(3)
            buyers = await insert_members(engine, f"flash-{run_tag}", args.buyers)
            warmers = await insert_members(engine, f"fwarm-{run_tag}", args.connections)
            buyer_tokens = [issue_member_token(settings, i) for i in buyers]
            warmer_tokens = [issue_member_token(settings, i) for i in warmers]
            log(f"inserted {len(buyers)} buyers (+{len(warmers)} for the warm-ups), tokens made")
            bench = Bench(
                args,
                demo,
                product,
                products,
                http,
                client,
                engine,
                hq_token,
                noon,
                item,
                buyers,
                buyer_tokens,
                warmers,
                warmer_tokens,
                clock_offset,
            )
            for target in TARGETS:
                results[target] = await measure_target(bench, target)
    finally:
        client.close()
        if buyers_http is not None:
            await buyers_http.aclose()
        await engine.dispose()
    graphql_, floor = results["graphql"], results["floor"]
    return {
        "bench": "flash_sale",
        "db": demo.database,
        "product": product_revision().label(),
        "buyers": args.buyers,
        "quota": args.quota,
        "arrival_spread_s": args.spread,
        "connections": args.connections,
        "client": args.client,
        "processes": len(products),
        "broker": demo.products_broker(args.processes, args.redis_url).split(":", 1)[0],
        "store_id": item.store_id,
        "sku_id": item.sku_id,
        "server_mode": args.mode,
        "clock_start": clock_start.isoformat() if clock_start else None,
        **graphql_,
        "server_rss_mb": sum(rss_mb(p.pid) or 0.0 for p in products),
        "server_peak_rss_mb": sum(rss_mb(p.pid, "VmHWM") or 0.0 for p in products),
        "server_log_problems": [line for p in products for line in p.log_problems()][:5],
        "server_log_warnings": [line for p in products for line in p.log_warnings()][:5],
        "floor_driver": "dinegraph.db.engine.create_engine (SQLAlchemy Core, "
        + ("asyncpg)" if demo.postgres else "aiosqlite, BEGIN IMMEDIATE, local_write_lock)"),
        "floor_writes": "conditional UPDATE campaign_quotas; INSERT orders, order_lines",
        "floor": floor,
        "ratio_orders_per_s": ratio(graphql_.get("orders_per_s"), floor.get("orders_per_s")),
        "ratio_answers_per_s": ratio(graphql_.get("answers_per_s"), floor.get("answers_per_s")),
        "ratio_p99": ratio(graphql_.get("p99_ms"), floor.get("p99_ms")),
        "machine": machine(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default=None,
        help="sqlite, or postgres on --database-url (sqlite unless --database-url is given)",
    )
    parser.add_argument("--buyers", type=int, default=5000, help="distinct buyers (5000)")
    parser.add_argument("--quota", type=int, default=200, help="units at the store (200)")
    parser.add_argument(
        "--spread", type=float, default=1.0, help="seconds over which the buyers arrive (1.0)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=300,
        help="the client's connection pool, and so the requests in flight (300)",
    )
    parser.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="the buyers' HTTP client: lean keep-alive connections, or httpx (lean)",
    )
    parser.add_argument(
        "--samples-dir",
        type=Path,
        default=None,
        help="write every buyer's arrival, send and answer times there, one CSV per run",
    )
    parser.add_argument("--store", type=int, default=1, help="the store of the sale (1)")
    parser.add_argument(
        "--mode",
        choices=("production", "development"),
        default="production",
        help="the servers' mode: production, or development as before 2026-12-03 (production)",
    )
    add_processes_options(parser)
    add_common_options(
        parser, retries=1, database_help=f"; with --db postgres and none, {DEFAULT_POSTGRES}"
    )
    args = parser.parse_args(argv)
    if args.db is None:
        args.db = "postgres" if args.database_url else "sqlite"
    if args.db == "sqlite" and args.database_url:
        parser.error("--database-url goes with --db postgres")
    if args.db == "postgres":
        args.database_url = args.database_url or DEFAULT_POSTGRES
    check_common_options(parser, args)
    if not 1 <= args.buyers <= 50_000 or not 1 <= args.quota <= 9_999:
        parser.error("--buyers must be in [1, 50000] and --quota in [1, 9999]")
    if not 0.0 <= args.spread <= 60.0:
        parser.error("--spread must be in [0, 60] seconds")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections must be in [1, 1000]")
    check_processes_options(parser, args, sqlite=args.db == "sqlite")
    if args.processes > 1 and args.client == "httpx":
        parser.error("--client httpx talks to one process: use --processes 1")
    return args


def serving(args: argparse.Namespace, demo: Demo) -> tuple[datetime | None, dict[str, str]]:
    """The servers' clock start and environment. Production (the default): the real clock,
    no access log, the store of the sale opened around the clock in the scratch database so
    that a pickup order is taken whatever the hour of the run. Development: the clock starts
    at today's noon (every demo store open), as the figures before 2026-12-03 were taken."""
    if args.mode == "development":
        noon = shop_noon()
        return noon, development_env(demo.env, noon)
    asyncio.run(open_around_the_clock(demo, args.store))
    return None, {
        **demo.env,
        "DINEGRAPH_SERVER_TIMING": "1",  # the statement counts; production omits it otherwise
        "DINEGRAPH_PAYMENT_TIMEOUT_MINUTES": str(PAYMENT_TIMEOUT_MINUTES),  # no unpaid sweep
    }


async def open_around_the_clock(demo: Demo, store_id: int) -> None:
    engine = demo.engine()
    try:
        async with engine.begin() as conn:
            opened = await conn.execute(
                sa.update(stores)
                .where(stores.c.id == store_id)
                .values(opens=dt_time(0), closes=dt_time(0), is_open=True)
            )
        if opened.rowcount != 1:
            raise BenchError(f"no store {store_id} in the demo chain")
    finally:
        await engine.dispose()


def failures(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        for where, got in (("graphql", result), ("floor", result["floor"])):
            found += wrong_answers(where, got, errors="other_errors", oversold="oversold")
        found += server_failures(result)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_in(workdir: Path, out: Out) -> None:
        with demo_database(args.database_url, workdir) as demo:
            hq = cli_value(["staff-token", "--role", "HQ_ADMIN"], demo.env)
            clock_start, env = serving(args, demo)
            if args.processes > 1:
                env["DINEGRAPH_BROKER_URL"] = demo.products_broker(args.processes, args.redis_url)
            products = [start_product(f"graphql-{n}", env, workdir) for n in range(args.processes)]
            with stopping(*products):
                out(asyncio.run(measure(args, demo, products, hq, clock_start)))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
