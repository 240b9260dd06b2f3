"""Checkout benchmark: placeOrder routed across the demo chain and on one hot SKU, and a floor.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end), starts
``dinegraph serve --workers 1`` on a free loopback port, inserts fresh members straight into
the database and mints their access tokens with the server's secret key (as
bench/coupon_claims.py does), and finds the SKUs through the ``stores`` and ``menu`` queries.

The server runs in DEVELOPMENT mode, unlike the other benchmarks: placing an order needs a
store in its opening hours, and only development mode accepts ``DINEGRAPH_CLOCK_START``
(here today 12:00 Asia/Shanghai, so the figures do not depend on the hour of the run). That
mode also writes uvicorn's access log and, as set here, the ``Server-Timing`` statement
count (``DINEGRAPH_SERVER_TIMING=1``); the payment timeout is raised to a day so that the
unpaid-order sweep cannot release held stock in the middle of the checks.

* ``routed``: --orders DELIVERY orders without a store, each at a random point within 3 km
  of a random open store, with 1-3 distinct random SKUs sold on DELIVERY (1-2 units each);
  the server routes each to the nearest store that is open, delivers there and has the
  stock. Before each run every tracked level goes back to the demo's own levels (restock /
  adjustStock as HQ_ADMIN), so both runs start from the same stock.
* ``hot_sku``: --hot-attempts PICKUP orders pinned to store 1, each of 1 unit of the same
  tracked SKU, whose level is first set to --hot-stock; every order past the stock must be
  refused with OUT_OF_STOCK.

Each run launches all its orders together, at most --concurrency in flight (one
httpx.AsyncClient with that many connections; the harness's ``burst``), one
member per order, a fresh uuid4 idempotency key each. The floor makes the same orders at the
same concurrency straight through the product's engine in this process
(``dinegraph.db.engine.create_engine``; on SQLite WAL and BEGIN IMMEDIATE, the writers queued
on the product's ``local_write_lock`` as its unit of work queues them), one transaction per
order with the product's writes and no reads: the conditional ``UPDATE stock_levels SET
available = available - q ... WHERE ... AND available - q >= 0 RETURNING available`` of each
tracked line in SKU order (rollback and OUT_OF_STOCK when one finds no row, as the coupon
floor does), then INSERT orders, order_lines, stock_movements and a stock_ledger row per
tracked line. It places each routed order at the store the product chose for it, and
refuses untried the routed orders the product found no store for: routing and pricing are
the product's reads, which the floor leaves out.

After every run the database is checked: for every (store, tracked SKU) the level before
minus the units held by the run's orders (their order_lines) equals the level after and is
not negative, the run's ledger rows are all ORDER_HOLD and add up to the same units, the
lowest balance_after is not negative, and the orders stored, the units held and the stores
agree with the answers the clients got. ``oversold_units`` (must be 0) adds up what any
(store, SKU) held beyond the level it started with. Any failure is reported loudly and the
exit status is 1. A run during which other work took more than 30% of a core is made again
(--retries), unless its answers were wrong.

Prints one JSON line per scenario on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/checkout.py [--orders 2000] [--concurrency 32] [--hot-stock 500]
    .venv/bin/python bench/checkout.py \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from harness.cpu import busy_pct, pct_of_core, rss_mb, wait_for_quiet
from harness.database import Demo, demo_database, pg_sessions, write_connection
from harness.http import pooled_client, statement_count
from harness.load import ERROR, Attempt, Burst, burst
from harness.processes import Server, cli_value, start_product, stopping, wait_ready
from harness.report import BenchError, json_line, log, machine, product_revision
from harness.runs import (
    Out,
    Result,
    add_common_options,
    check_common_options,
    least_disturbed,
    run_bench,
    server_failures,
    wrong_answers,
)
from harness.shop import (
    Chain,
    OrderSpec,
    development_env,
    insert_members,
    insert_order,
    place_order_body,
    point_in_disc,
    read_chain,
    shop_noon,
)
from harness.stats import ms, pct_ms, ratio
from harness.stock import STORE_ID, Pair, set_levels, tracked_levels
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import local_write_lock
from dinegraph.db.tables import order_lines, orders, stock_ledger, stock_movements
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings

HOT_STORE = STORE_ID
SPREAD_M = 3000.0
SCENARIOS = ("routed", "hot_sku")
OK = "ok"
ROUTED_REFUSALS = frozenset({"OUT_OF_STOCK", "NO_STORE_CAN_SERVE", "SOLD_OUT"})
HOT_REFUSALS = frozenset({"OUT_OF_STOCK"})

# The floor's hold of one line: the product's conditional update (stock.change_level).
TAKE = sa.text(
    "UPDATE stock_levels SET available = available - :q, version = version + 1 "
    "WHERE store_id = :store AND sku_id = :sku AND available - :q >= 0 RETURNING available"
)


# --- the orders -----------------------------------------------------------------------------


def routed_specs(rng: random.Random, chain: Chain, count: int, pool: list[int]) -> list[OrderSpec]:
    specs = []
    for _ in range(count):
        # Within SPREAD_M of a store, which delivers at least that far (checked in main).
        centre = rng.choice(chain.stores)
        chosen = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        specs.append(
            OrderSpec(
                "DELIVERY",
                tuple((sku, rng.randint(1, 2)) for sku in chosen),
                point=point_in_disc(rng, centre.location, SPREAD_M * 0.999),
            )
        )
    return specs


def pickup_specs(rng: random.Random, count: int, pool: list[int]) -> list[OrderSpec]:
    return [OrderSpec("PICKUP", ((rng.choice(pool), 1),), store_id=HOT_STORE) for _ in range(count)]


def nearest_store(chain: Chain, point: GeoPoint) -> int | None:
    """The nearest open store that delivers to ``point`` (what routing picks, all in stock
    and no kitchen queue: nothing is paid during the bench)."""
    best: tuple[int, int] | None = None
    for store in sorted(chain.stores, key=lambda s: s.id):
        d = distance_m(store.location, point)
        if d <= store.radius_m and (best is None or d < best[0]):
            best = (d, store.id)
    return None if best is None else best[1]


# --- the two ways to place an order ---------------------------------------------------------


@dataclass
class Record:
    """What the clients learnt, per order index: the order and its store, SQL counts."""

    placed: dict[int, tuple[int, int]] = field(default_factory=dict)  # i -> (order, store)
    statements: dict[int, tuple[str, int]] = field(default_factory=dict)  # i -> (outcome, n)


def graphql_attempt(
    client: httpx.AsyncClient,
    server: Server,
    specs: list[OrderSpec],
    tokens: list[str],
    allowed: frozenset[str],
    record: Record,
) -> Attempt:
    """placeOrder through /graphql as member ``i`` (bodies and headers made beforehand)."""
    url = f"{server.base_url}/graphql"
    bodies = [place_order_body(spec, n) for n, spec in enumerate(specs)]
    headers = [
        {"content-type": "application/json", "authorization": f"Bearer {tokens[i % len(tokens)]}"}
        for i in range(len(specs))
    ]

    async def attempt(i: int) -> tuple[str, str | None]:
        response = await client.post(url, content=bodies[i], headers=headers[i])
        if response.status_code != 200:
            return ERROR, f"HTTP {response.status_code}: {response.content[:200]!r}"
        answer = orjson.loads(response.content)
        if "errors" in answer:
            return ERROR, f"GraphQL errors: {str(answer['errors'])[:200]}"
        payload = answer["data"]["placeOrder"]
        statements = statement_count(response.headers.get("server-timing"))
        if payload["order"] is not None and not payload["errors"]:
            order = payload["order"]
            record.placed[i] = (
                decode_id(order["id"], "Order", ["id"]),
                decode_id(order["store"]["id"], "Store", ["id"]),
            )
            outcome, problem = OK, None
        else:
            codes = [e["code"] for e in payload["errors"]]
            outcome = "+".join(codes) or "NO_ORDER_NO_ERROR"
            problem = None if outcome in allowed else f"refused with {payload['errors'][:2]}"
        if statements is not None:
            record.statements[i] = (outcome, statements)
        return outcome, problem

    return attempt


def floor_attempt(
    engine: AsyncEngine,
    specs: list[OrderSpec],
    stores: list[int | None],
    member_ids: list[int],
    chain: Chain,
    server_now: Callable[[], datetime],
    record: Record,
) -> Attempt:
    """One transaction per order: the holds, then the order, its lines, the movement and
    the ledger rows; rollback and OUT_OF_STOCK when a hold finds too few units."""
    lock = local_write_lock(engine)  # SQLite: the product's unit of work queues on it

    async def attempt(i: int) -> tuple[str, str | None]:
        store = stores[i]
        if store is None:  # the product found no store for it
            return "NO_STORE_CAN_SERVE", None
        async with lock or contextlib.nullcontext():
            return await place(i, store)

    async def place(i: int, store: int) -> tuple[str, str | None]:
        spec = specs[i]
        held = sorted((s, q) for s, q in spec.lines if s in chain.tracked)
        async with write_connection(engine) as conn:
            balances = []
            for sku, quantity in held:
                available = (
                    await conn.execute(TAKE, {"q": quantity, "store": store, "sku": sku})
                ).scalar_one_or_none()
                if available is None:
                    await conn.rollback()
                    return "OUT_OF_STOCK", None
                balances.append((sku, quantity, int(available)))
            point = spec.point
            order_id = await insert_order(
                conn,
                member_id=member_ids[i % len(member_ids)],
                store_id=store,
                channel=spec.channel,
                subtotal_fen=sum(chain.catalog[s].price_fen * q for s, q in spec.lines),
                now=server_now(),
                address_lat=point.lat if point else None,
                address_lng=point.lng if point else None,
                address_detail="floor" if point else None,
                contact_name="floor" if point else None,
                contact_phone="13800000000" if point else None,
                distance_m=None,
            )
            await conn.execute(
                order_lines.insert(),
                [
                    {
                        "order_id": order_id,
                        "line_no": n + 1,
                        "sku_id": sku,
                        "product_id": chain.catalog[sku].product_id,
                        "name": chain.catalog[sku].name,
                        "specs": chain.catalog[sku].specs,
                        "unit_price_fen": chain.catalog[sku].price_fen,
                        "quantity": quantity,
                        "refunded_quantity": 0,
                    }
                    for n, (sku, quantity) in enumerate(spec.lines)
                ],
            )
            movement_id = (
                await conn.execute(
                    stock_movements.insert()
                    .values(
                        store_id=store,
                        source="ORDER_HOLD",
                        reference=f"order:{order_id}",
                        fingerprint="floor",
                        lines=[[sku, -quantity] for sku, quantity in sorted(spec.lines)],
                        reason="",
                        actor="bench-floor",
                    )
                    .returning(stock_movements.c.id)
                )
            ).scalar_one()
            if balances:
                await conn.execute(
                    stock_ledger.insert(),
                    [
                        {
                            "movement_id": movement_id,
                            "store_id": store,
                            "sku_id": sku,
                            "kind": "ORDER_HOLD",
                            "delta": -quantity,
                            "balance_after": available,
                        }
                        for sku, quantity, available in balances
                    ],
                )
            await conn.commit()
        record.placed[i] = (order_id, store)
        return OK, None

    return attempt


# --- checking a run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    ledger: int
    order: int


async def marker(engine: AsyncEngine) -> Marker:
    async with engine.connect() as conn:
        ledger = await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(stock_ledger.c.id), 0)))
        order = await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(orders.c.id), 0)))
    return Marker(int(ledger or 0), int(order or 0))


# Complexity: A benchmark's check reads as one list of checks; splitting it scatters them.
async def check_run(  # noqa: C901
    engine: AsyncEngine,
    chain: Chain,
    specs: list[OrderSpec],
    before: dict[Pair, int],
    mark: Marker,
    record: Record,
) -> dict[str, Any]:
    """The database after a run against the levels before it and what the clients saw."""
    after = await tracked_levels(engine)
    async with engine.connect() as conn:
        placed = {
            int(r.id): int(r.store_id)
            for r in await conn.execute(
                sa.select(orders.c.id, orders.c.store_id).where(orders.c.id > mark.order)
            )
        }
        held_db: dict[Pair, int] = {}
        for r in await conn.execute(
            sa.select(
                orders.c.store_id,
                order_lines.c.sku_id,
                sa.func.sum(order_lines.c.quantity).label("units"),
            )
            .join(orders, orders.c.id == order_lines.c.order_id)
            .where(orders.c.id > mark.order)
            .group_by(orders.c.store_id, order_lines.c.sku_id)
        ):
            if int(r.sku_id) in chain.tracked:
                held_db[(int(r.store_id), int(r.sku_id))] = int(r.units)
        ledger: dict[Pair, tuple[int, int]] = {}  # pair -> (units held, lowest balance)
        kinds: dict[str, int] = {}
        for r in await conn.execute(
            sa.select(
                stock_ledger.c.store_id,
                stock_ledger.c.sku_id,
                stock_ledger.c.kind,
                sa.func.count().label("rows"),
                sa.func.sum(stock_ledger.c.delta).label("delta"),
                sa.func.min(stock_ledger.c.balance_after).label("lowest"),
            )
            .where(stock_ledger.c.id > mark.ledger)
            .group_by(stock_ledger.c.store_id, stock_ledger.c.sku_id, stock_ledger.c.kind)
        ):
            kinds[str(r.kind)] = kinds.get(str(r.kind), 0) + int(r.rows)
            if r.kind == "ORDER_HOLD":
                ledger[(int(r.store_id), int(r.sku_id))] = (-int(r.delta), int(r.lowest))
    held_client: dict[Pair, int] = {}
    for i, (_, store) in record.placed.items():
        for sku, quantity in specs[i].lines:
            if sku in chain.tracked:
                held_client[(store, sku)] = held_client.get((store, sku), 0) + quantity

    problems: list[str] = []
    oversold = 0
    for pair in sorted(set(before) | set(after) | set(held_db) | set(ledger)):
        start, end = before.get(pair), after.get(pair)
        held = held_db.get(pair, 0)
        if start is None or end is None:
            problems.append(f"{pair}: a level appeared or vanished ({start} -> {end})")
            continue
        oversold += max(0, held - start)
        if end != start - held:
            problems.append(f"{pair}: level {start} - {held} held != {end} after")
        ledger_held, lowest = ledger.get(pair, (0, 0))
        if end < 0 or lowest < 0:
            problems.append(f"{pair}: negative stock (after {end}, lowest {lowest})")
        if ledger_held != held:
            problems.append(f"{pair}: ledger holds {ledger_held}, orders {held}")
        if held_client.get(pair, 0) != held:
            problems.append(f"{pair}: clients saw {held_client.get(pair, 0)} held, db {held}")
    if oversold:
        problems.insert(0, f"OVERSOLD by {oversold} units")
    if set(kinds) - {"ORDER_HOLD"}:
        problems.append(f"ledger rows of other kinds during the run: {kinds}")
    client_orders = dict(record.placed.values())
    if client_orders != placed:
        missing = len(set(placed) - set(client_orders))
        problems.append(
            f"{len(placed)} orders stored, {len(client_orders)} accepted answers "
            f"({missing} stored orders no client heard of, or stores disagree)"
        )
    return {
        "oversold_units": oversold,
        "held_units_db": sum(held_db.values()),
        "orders_db": len(placed),
        "levels_checked": len(set(before) | set(after)),
        "consistent": not problems,
        "problems": problems[:10],
    }


# --- measuring ------------------------------------------------------------------------------


def summarise(run: Burst, record: Record, allowed: frozenset[str]) -> Result:
    if not run.samples:
        raise BenchError("no order completed")
    outcomes = [s[2] for s in run.samples]
    ok = outcomes.count(OK)
    refused: dict[str, int] = {}
    for outcome in outcomes:
        if outcome in allowed:
            refused[outcome] = refused.get(outcome, 0) + 1
    errors = len(outcomes) - ok - sum(refused.values())
    everything = sorted(s[1] for s in run.samples)
    accepted = sorted(s[1] for s in run.samples if s[2] == OK)
    refusals = sorted(s[1] for s in run.samples if s[2] in allowed)
    first_out = min((s[0] for s in run.samples if s[2] == "OUT_OF_STOCK"), default=None)
    last_ok = max((s[0] for s in run.samples if s[2] == OK), default=None)

    assert run.cpu is not None
    cpu, seconds = run.cpu, run.seconds

    def statements(accepted_or_refused: bool) -> int | None:
        counts = [n for o, n in record.statements.values() if (o == OK) == accepted_or_refused]
        return statistics.median_low(counts) if counts else None

    return {
        "orders_per_s": round(ok / run.seconds, 1),
        "requests_per_s": round(len(outcomes) / run.seconds, 1),
        "p50_ms": pct_ms(everything, 50),
        "p99_ms": pct_ms(everything, 99),
        "ok": ok,
        "refused": dict(sorted(refused.items())),
        "errors": errors,
        "seconds": round(run.seconds, 3),
        "max_ms": ms(everything[-1]),
        "ok_p50_ms": pct_ms(accepted, 50),
        "ok_p99_ms": pct_ms(accepted, 99),
        "refused_p50_ms": pct_ms(refusals, 50),
        "refused_p99_ms": pct_ms(refusals, 99),
        "first_out_of_stock_after_s": None if first_out is None else round(first_out, 3),
        # Accepted orders over the time until the last of them was answered (when the stock
        # ran out, the refusals after it do not dilute the rate).
        "ok_per_s_while_stock": (
            round(ok / last_ok, 1) if first_out is not None and last_ok else None
        ),
        "sql_statements": (
            {"ok": statements(True), "refused": statements(False)} if record.statements else None
        ),
        "first_errors": sorted(set(run.problems))[:3],
        # CPU over the run in % of one core (the machine has nproc cores).
        "server_cpu_pct": pct_of_core(cpu.server_s, seconds),
        "server_cpu_ms_per_request": (
            None if cpu.server_s is None else round(1000 * cpu.server_s / len(outcomes), 2)
        ),
        "client_cpu_pct": pct_of_core(cpu.client_s, seconds),
        "database_cpu_pct": pct_of_core(cpu.database_s, seconds),
        "other_cpu_pct": pct_of_core(cpu.other_s(seconds), seconds),
    }


@dataclass
class Bench:
    args: argparse.Namespace
    demo: Demo
    product: Server
    client: httpx.AsyncClient
    engine: AsyncEngine
    settings: Settings
    chain: Chain
    hq_token: str
    member_ids: list[int]
    tokens: list[str]
    clock_offset: timedelta

    def server_now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset


async def one_run(
    bench: Bench,
    name: str,
    target: str,
    specs: list[OrderSpec],
    warm: list[OrderSpec],
    levels: dict[Pair, int],
    allowed: frozenset[str],
    floor_stores: list[int | None],
) -> tuple[Result, Record]:
    """Reset the levels, wait for a quiet machine, warm up, place the orders, check."""
    args, chain = bench.args, bench.chain
    changed = await set_levels(bench.product.base_url, bench.hq_token, bench.engine, levels)
    log(f"{name}/{target}: {changed} levels reset")

    def attempt_for(these: list[OrderSpec], record: Record, stores: list[int | None]) -> Attempt:
        if target == "graphql":
            return graphql_attempt(
                bench.client, bench.product, these, bench.tokens, allowed, record
            )
        return floor_attempt(
            bench.engine, these, stores, bench.member_ids, chain, bench.server_now, record
        )

    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    # Right before the run, on made-to-order SKUs only, so that no level moves.
    warm_stores = [s.store_id or (nearest_store(chain, s.point) if s.point else None) for s in warm]
    warm_run = await burst(
        attempt_for(warm, Record(), warm_stores), len(warm), args.concurrency, error=ERROR
    )
    if warm_run.problems:
        raise BenchError(f"warm-up ({name}/{target}) failed: {sorted(set(warm_run.problems))[:3]}")
    log(f"{name}/{target}: warm-up of {len(warm)} orders in {warm_run.seconds:.2f}s")
    before = await tracked_levels(bench.engine)
    mark = await marker(bench.engine)
    sessions = await pg_sessions(bench.engine)
    record = Record()
    log(f"{name}/{target}: {len(specs)} orders, {args.concurrency} in flight")
    run = await burst(
        attempt_for(specs, record, floor_stores),
        len(specs),
        args.concurrency,
        server_pid=bench.product.pid if target == "graphql" else None,
        postgres=bench.demo.postgres,
        error=ERROR,
    )
    result = summarise(run, record, allowed)
    result.update(await check_run(bench.engine, chain, specs, before, mark, record))
    result["machine_busy_before_pct"] = busy_pct(busy)
    if sessions is not None:
        result["database_sessions_opened"] = (await pg_sessions(bench.engine) or 0) - sessions
    return result, record


# Complexity: A scenario reads top to bottom as the steps it measures.
async def scenario(bench: Bench, name: str, baseline: dict[Pair, int]) -> Result:
    args, chain = bench.args, bench.chain
    rng = random.Random(f"{args.seed}-{name}")
    if name == "routed":
        specs = routed_specs(rng, chain, args.orders, chain.delivery_skus)
        warm = routed_specs(rng, chain, args.concurrency, chain.delivery_untracked)
        levels, allowed = dict(baseline), ROUTED_REFUSALS
        nearest = [nearest_store(chain, s.point) if s.point else None for s in specs]
    else:
        specs = [OrderSpec("PICKUP", ((chain.hot_sku, 1),), store_id=HOT_STORE)] * args.hot_attempts
        warm = pickup_specs(rng, args.concurrency, chain.pickup_untracked)
        levels, allowed = {(HOT_STORE, chain.hot_sku): args.hot_stock}, HOT_REFUSALS
        nearest = [HOT_STORE] * len(specs)
    out: dict[str, Any] = {}
    graphql_record = Record()
    for target in ("graphql", "floor"):
        # The floor places each order at the store the product chose for it; a routed order
        # the product found no store for, it refuses as well, without a statement.
        floor_stores = [
            graphql_record.placed[i][1]
            if i in graphql_record.placed
            else (None if name == "routed" else HOT_STORE)
            for i in range(len(specs))
        ]

        async def attempt(
            number: int, target: str = target, stores: list[int | None] = floor_stores
        ) -> tuple[Result, Record]:
            result, record = await one_run(
                bench, name, target, specs, warm, levels, allowed, stores
            )
            result["attempt"] = number
            log(f"{name}/{target}: {json_line(result)}")
            return result, record

        (result, record), attempts = await least_disturbed(
            attempt,
            retries=args.retries,
            other_pct=lambda got: got[0]["other_cpu_pct"],
            wrong=lambda got: not got[0]["consistent"] or bool(got[0]["errors"]),
            label=f"{name}/{target}",
        )
        result["attempts"] = attempts
        if target == "graphql":
            graphql_record = record
            if name == "routed":
                chosen = [store for i, (_, store) in record.placed.items() if store != nearest[i]]
                result["ok_not_nearest_store"] = len(chosen)
                result["stores_used"] = len({store for _, store in record.placed.values()})
        out[target] = result
    graphql_, floor = out["graphql"], out["floor"]
    if name == "hot_sku":
        for target, got in out.items():
            if got["ok"] != min(args.hot_stock, args.hot_attempts):
                got["consistent"] = False
                got["problems"].append(
                    f"{got['ok']} orders accepted for {args.hot_stock} units "
                    f"({args.hot_attempts} attempts)"
                )
                log(f"{name}/{target}: {got['problems'][-1]}")
    return {
        "bench": "checkout",
        "scenario": name,
        "product": product_revision().label(),
        "database": bench.demo.database,
        "orders": len(specs),
        "concurrency": args.concurrency,
        "stock": args.hot_stock if name == "hot_sku" else "demo levels",
        "server_mode": "development",
        "clock_start": bench.settings.clock_start.isoformat()
        if bench.settings.clock_start
        else None,
        "floor_driver": "dinegraph.db.engine.create_engine (SQLAlchemy Core, "
        + (
            "asyncpg)"
            if bench.demo.database == "postgresql"
            else "aiosqlite, BEGIN IMMEDIATE, local_write_lock)"
        ),
        "floor_writes": "conditional UPDATE stock_levels per tracked line, INSERT orders, "
        "order_lines, stock_movements, stock_ledger",
        "graphql": graphql_,
        "floor": floor,
        "ratio_orders_per_s": ratio(graphql_["orders_per_s"], floor["orders_per_s"]),
        "ratio_requests_per_s": ratio(graphql_["requests_per_s"], floor["requests_per_s"]),
        "ratio_ok_per_s_while_stock": ratio(
            graphql_["ok_per_s_while_stock"], floor["ok_per_s_while_stock"]
        ),
        "ratio_p50": ratio(graphql_["p50_ms"], floor["p50_ms"], 2),
        "server_peak_rss_mb": rss_mb(bench.product.pid, "VmHWM") or 0.0,
        "server_log_problems": bench.product.log_problems()[:5],
        "server_log_warnings": bench.product.log_warnings()[:5],
        "machine": machine(),
    }


async def measure(
    args: argparse.Namespace, demo: Demo, product: Server, hq_token: str, noon: datetime, out: Out
) -> None:
    await wait_ready(product)
    settings = demo.settings(clock_start=noon)
    clock_offset = noon - datetime.now(UTC)  # as the server's Clock, near enough
    engine = demo.engine()
    try:
        async with pooled_client(args.concurrency) as client:
            chain = await read_chain(client, product.base_url, engine)
            narrow = [s.id for s in chain.stores if s.radius_m < SPREAD_M]
            if narrow:
                raise BenchError(f"stores {narrow} deliver less than {SPREAD_M} m")
            log(
                f"{len(chain.stores)} open stores, {len(chain.delivery_skus)} DELIVERY SKUs "
                f"({len(chain.tracked)} tracked), hot SKU {chain.hot_sku} at store {HOT_STORE}"
            )
            members = max(args.orders, args.hot_attempts)
            member_ids = await insert_members(engine, f"order-{uuid.uuid4().hex[:6]}", members)
            tokens = [issue_member_token(settings, i) for i in member_ids]
            log(f"inserted {len(member_ids)} members")
            bench = Bench(
                args,
                demo,
                product,
                client,
                engine,
                settings,
                chain,
                hq_token,
                member_ids,
                tokens,
                clock_offset,
            )
            baseline = await tracked_levels(engine)  # the demo's own levels
            for name in args.scenarios:
                out(await scenario(bench, name, baseline))
    finally:
        await engine.dispose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="routed orders (2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="orders in flight (32)")
    parser.add_argument(
        "--hot-attempts", type=int, default=2000, help="orders of the hot SKU (2000)"
    )
    parser.add_argument("--hot-stock", type=int, default=500, help="units of the hot SKU (500)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)} (both)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the random orders (1)")
    add_common_options(parser, retries=2)
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    if not 1 <= args.orders <= 50_000 or not 1 <= args.hot_attempts <= 50_000:
        parser.error("--orders and --hot-attempts must be in [1, 50000]")
    if not 1 <= args.hot_stock <= 9_999 * 10:
        parser.error("--hot-stock must be in [1, 99990]")
    if not 1 <= args.concurrency <= 512:
        parser.error("--concurrency must be in [1, 512]")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        parser.error(f"--scenarios takes {', '.join(SCENARIOS)}")
    return args


def failures(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        for target in ("graphql", "floor"):
            where = f"{result['scenario']}/{target}"
            found += wrong_answers(where, result[target], oversold="oversold_units")
        found += server_failures(result)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_in(workdir: Path, out: Out) -> None:
        with demo_database(args.database_url, workdir) as demo:
            hq = cli_value(["staff-token", "--role", "HQ_ADMIN"], demo.env)
            noon = shop_noon()
            product = start_product("graphql", development_env(demo.env, noon), workdir)
            with stopping(product):
                asyncio.run(measure(args, demo, product, hq, noon, out))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
