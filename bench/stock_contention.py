"""Stock contention benchmark: concurrent recordSale on one hot SKU and on many, against a floor.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end), starts
``dinegraph serve --workers 1`` (production mode, generated secret key) on a free loopback
port, creates a store-1 partner API key (stock:write) and a store-1 manager token, then runs
two scenarios, each first through the product and then through the floor. With --processes N
the product is N such processes on the same database sharing a broker (PostgreSQL's NOTIFY, or
on SQLite Redis at --redis-url), the clients spread over them in turn as a balancer would,
their CPU summed, and the floor's pool as large as their pools together:

* ``hot``: C concurrent clients, each sending recordSale of 1 unit (unique externalOrderId)
  of ONE tracked SKU at store 1, whose level is first set to --stock units, for --seconds or
  until --budget requests. With the defaults the stock runs out during the run, so the sales
  that come after must all be refused with OUT_OF_STOCK.
* ``spread``: the same, round-robin over --spread-skus tracked SKUs (each set to --stock).

The floor is the same concurrency issuing straight through the driver, in this process:
one transaction per sale doing the product's writes and nothing else (INSERT
stock_movements, the conditional ``UPDATE stock_levels SET available = available - 1 ...
WHERE ... AND available >= 1 RETURNING available``, INSERT stock_ledger; rollback when no row
was updated). On SQLite it goes through the product's engine
(``dinegraph.db.engine.create_engine``: WAL, BEGIN IMMEDIATE, the same pool), its writers
queued on the product's per-process write lock as the unit of work queues them; on
PostgreSQL through a bare asyncpg pool as large as the product's (its processes' pools together).

Sales per second count accepted sales over the time there was stock to sell (up to the last
accepted sale when the stock ran out); requests per second count every answer over the run.
Each run waits for a quiet machine first; a run during which other work took more than 30%
of a core is made again (--retries), unless its answers were wrong.

After every run the database is checked: each level equals its starting level minus the
accepted units and equals the sum of its ledger; the ledger's sales equal the accepted
answers; nothing is oversold. Any failure is reported loudly and the exit status is 1.

Prints exactly one JSON line on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/stock_contention.py [--clients 32] [--seconds 8] [--stock 500]
    .venv/bin/python bench/stock_contention.py \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from harness.cpu import CpuUsage, busy_pct, pct_of_core, rss_mb, snapshot, usage, wait_for_quiet
from harness.database import Demo, demo_database, pg_sessions, write_connection
from harness.http import LeanConnection
from harness.processes import LOOPBACK, Server, start_product, stopping, wait_ready
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
from harness.stats import ms, pct_ms, ratio
from harness.stock import (
    STORE_ID,
    StoreCredentials,
    levels_of,
    record_sale_body,
    set_levels,
    store_credentials,
    tracked_sku_ids,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import local_write_lock
from dinegraph.db.tables import stock_ledger, stock_movements
from dinegraph.settings import Settings

# --- driving the load ------------------------------------------------------------------------

ACCEPTED, OUT_OF_STOCK, ERROR = "accepted", "out_of_stock", "error"


@dataclass
class Run:
    """What the clients saw during one measured run."""

    start: float = 0.0
    # (completed at, seconds after start; latency in seconds; outcome; SKU index)
    samples: list[tuple[float, float, str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: CpuUsage | None = None


class Sender:
    """One client's way to make one sale: through GraphQL, or through the floor."""

    async def sell(self, sku_id: int, order: str) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class GraphQLSender(Sender):
    def __init__(self, port: int, api_key: str) -> None:
        self._http = LeanConnection(LOOPBACK, port, {"x-api-key": api_key})

    async def sell(self, sku_id: int, order: str) -> str:
        status, _, data = await self._http.post("/graphql", record_sale_body(sku_id, order))
        answer = orjson.loads(data)
        if status != 200 or "errors" in answer:
            raise BenchError(f"HTTP {status}: {data[:300]!r}")
        payload = answer["data"]["recordSale"]
        if payload["sale"] is not None and not payload["errors"]:
            return ACCEPTED
        codes = [e["code"] for e in payload["errors"]]
        if codes == ["OUT_OF_STOCK"]:
            return OUT_OF_STOCK
        raise BenchError(f"recordSale refused with {codes}")

    async def close(self) -> None:
        await self._http.aclose()


class FloorSender(Sender):
    """The product's writes for a one-line sale, straight through the engine."""

    UPDATE = sa.text(
        "UPDATE stock_levels SET available = available - 1, version = version + 1 "
        "WHERE store_id = :store AND sku_id = :sku AND available >= 1 RETURNING available"
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # The product's unit of work queues this process's writers on this lock (SQLite).
        self._lock = local_write_lock(engine)

    async def sell(self, sku_id: int, order: str) -> str:
        async with self._lock or contextlib.nullcontext(), write_connection(self._engine) as conn:
            movement_id = (
                await conn.execute(
                    stock_movements.insert()
                    .values(
                        store_id=STORE_ID,
                        source="POS",
                        reference=order,
                        fingerprint="floor",
                        lines=[[sku_id, -1]],
                        reason="",
                        actor="bench-floor",
                    )
                    .returning(stock_movements.c.id)
                )
            ).scalar_one()
            available = (
                await conn.execute(self.UPDATE, {"store": STORE_ID, "sku": sku_id})
            ).scalar_one_or_none()
            if available is None:
                await conn.rollback()
                return OUT_OF_STOCK
            await conn.execute(
                stock_ledger.insert().values(
                    movement_id=movement_id,
                    store_id=STORE_ID,
                    sku_id=sku_id,
                    kind="SALE",
                    delta=-1,
                    balance_after=available,
                )
            )
            await conn.commit()
            return ACCEPTED


class AsyncpgFloorSender(Sender):
    """The same transaction as ``FloorSender``, on a bare asyncpg pool (PostgreSQL)."""

    MOVEMENT = (
        "INSERT INTO stock_movements (store_id, source, reference, fingerprint, lines, reason,"
        " actor) VALUES ($1, 'POS', $2, 'floor', $3, '', 'bench-floor') RETURNING id"
    )
    UPDATE = (
        "UPDATE stock_levels SET available = available - 1, version = version + 1 "
        "WHERE store_id = $1 AND sku_id = $2 AND available >= 1 RETURNING available"
    )
    LEDGER = (
        "INSERT INTO stock_ledger (movement_id, store_id, sku_id, kind, delta, balance_after)"
        " VALUES ($1, $2, $3, 'SALE', -1, $4)"
    )

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def sell(self, sku_id: int, order: str) -> str:
        async with self._pool.acquire() as con:
            transaction = con.transaction()
            await transaction.start()
            try:
                movement_id = await con.fetchval(
                    self.MOVEMENT, STORE_ID, order, f"[[{sku_id}, -1]]"
                )
                available = await con.fetchval(self.UPDATE, STORE_ID, sku_id)
                if available is None:
                    await transaction.rollback()
                    return OUT_OF_STOCK
                await con.execute(self.LEDGER, movement_id, STORE_ID, sku_id, available)
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
            return ACCEPTED


async def drive(
    make_sender: Callable[[], Sender],
    sku_ids: list[int],
    *,
    clients: int,
    seconds: float,
    budget: int,
    prefix: str,
    server_pids: tuple[int, ...],
    postgres: bool,
) -> Run:
    """``clients`` loops share one order counter; stop at ``seconds`` or after ``budget``."""
    run = Run()
    counter = itertools.count()
    senders: list[Sender] = [make_sender() for _ in range(clients)]

    async def client_loop(sender: Sender) -> None:
        end = run.start + seconds
        while True:
            n = next(counter)
            if n >= budget or time.perf_counter() >= end:
                return
            index = n % len(sku_ids)
            sent = time.perf_counter()
            try:
                outcome = await sender.sell(sku_ids[index], f"{prefix}-{n}")
            except (OSError, asyncio.IncompleteReadError, BenchError) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                outcome = ERROR
                if not isinstance(exc, BenchError):
                    return  # the connection is gone: stop this client
            except Exception as exc:  # a database error in the floor: count it, go on
                run.errors.append(f"{type(exc).__name__}: {exc}")
                outcome = ERROR
            done = time.perf_counter()
            run.samples.append((done - run.start, done - sent, outcome, index))
            # Let a client woken by the connection just returned to a pool take it, instead
            # of this one taking it straight back (asyncio queues are not fair otherwise).
            await asyncio.sleep(0)

    pids = server_pids
    databases = ("postgres",) if postgres else ()
    before = snapshot(pids, databases)
    run.start = time.perf_counter()
    try:
        await asyncio.gather(*(client_loop(s) for s in senders))
    finally:
        for sender in senders:
            await sender.close()
    run.cpu = usage(before, snapshot(pids, databases))
    return run


async def warm_up(
    make_sender: Callable[[], Sender], sku_id: int, clients: int, seconds: float, tag: str
) -> None:
    """Unmeasured sales of a spare SKU, so that connections, pools and caches are warm."""
    run = await drive(
        make_sender,
        [sku_id],
        clients=clients,
        seconds=seconds,
        budget=1_000_000,
        prefix=f"warm-{tag}-{secrets.token_hex(3)}",
        server_pids=(),
        postgres=False,
    )
    if run.errors:
        raise BenchError(f"warm-up ({tag}) failed: {run.errors[:3]}")


# --- checking and summarising ---------------------------------------------------------------


async def ledger_marker(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(sa.select(sa.func.coalesce(sa.func.max(stock_ledger.c.id), 0)))
            ).scalar_one()
        )


async def check_database(
    engine: AsyncEngine,
    sku_ids: list[int],
    start_level: int,
    marker: int,
    accepted_by_sku: dict[int, int],
    prefix: str,
) -> dict[str, Any]:
    """The database after a run: levels, ledger, movements, against what the clients saw."""
    async with engine.connect() as conn:
        levels = await levels_of(engine, sku_ids)
        sums = {
            int(r.sku_id): int(r.total)
            for r in await conn.execute(
                sa.select(stock_ledger.c.sku_id, sa.func.sum(stock_ledger.c.delta).label("total"))
                .where(stock_ledger.c.store_id == STORE_ID, stock_ledger.c.sku_id.in_(sku_ids))
                .group_by(stock_ledger.c.sku_id)
            )
        }
        sold = {
            int(r.sku_id): (int(r.rows), -int(r.units), int(r.lowest))
            for r in await conn.execute(
                sa.select(
                    stock_ledger.c.sku_id,
                    sa.func.count().label("rows"),
                    sa.func.sum(stock_ledger.c.delta).label("units"),
                    sa.func.min(stock_ledger.c.balance_after).label("lowest"),
                )
                .where(
                    stock_ledger.c.id > marker,
                    stock_ledger.c.store_id == STORE_ID,
                    stock_ledger.c.sku_id.in_(sku_ids),
                )
                .group_by(stock_ledger.c.sku_id)
            )
        }
        movements = int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).where(
                        stock_movements.c.store_id == STORE_ID,
                        stock_movements.c.reference.like(f"{prefix}-%"),
                    )
                )
            ).scalar_one()
        )
    problems: list[str] = []
    oversold = 0
    sold_units = 0
    for sku_id in sku_ids:
        available = levels[sku_id][0]
        rows, units, lowest = sold.get(sku_id, (0, 0, start_level))
        accepted = accepted_by_sku.get(sku_id, 0)
        sold_units += units
        oversold += max(0, units - start_level)
        if available < 0 or lowest < 0:
            problems.append(f"SKU {sku_id}: negative stock (level {available}, lowest {lowest})")
        if available != start_level - units:
            problems.append(f"SKU {sku_id}: level {available} != {start_level} - {units} sold")
        if units != accepted or rows != accepted:
            problems.append(
                f"SKU {sku_id}: the ledger has {rows} rows / {units} units sold, "
                f"the clients saw {accepted} accepted"
            )
        if sums.get(sku_id) != available:
            problems.append(f"SKU {sku_id}: level {available} != ledger sum {sums.get(sku_id)}")
    accepted_total = sum(accepted_by_sku.values())
    if movements != accepted_total:
        problems.append(f"{movements} sale movements stored, {accepted_total} accepted")
    if oversold:
        problems.append(f"OVERSOLD by {oversold} units")
    return {
        "start_level": start_level,
        "end_level_total": sum(levels[s][0] for s in sku_ids),
        "sold_units_db": sold_units,
        "oversold_units": oversold,
        "consistent": not problems,
        "problems": problems[:10],
    }


def summarise(run: Run) -> Result:
    if not run.samples:
        raise BenchError(f"no request completed: {run.errors[:3]}")
    elapsed = max(s[0] for s in run.samples)
    accepted = [s for s in run.samples if s[2] == ACCEPTED]
    refused = [s for s in run.samples if s[2] == OUT_OF_STOCK]
    all_lat = sorted(s[1] for s in run.samples)
    acc_lat = sorted(s[1] for s in accepted)
    ref_lat = sorted(s[1] for s in refused)
    sold_out_at = min((s[0] for s in refused), default=None)
    last_sale = max((s[0] for s in accepted), default=None)
    # While there was stock to sell: up to the last accepted sale if the stock ran out.
    selling_s = last_sale if refused and last_sale else elapsed
    after_s = elapsed - sold_out_at if sold_out_at is not None else 0.0

    assert run.cpu is not None
    cpu = run.cpu
    # The product's processes together (None when one could not be read, or no server ran).
    known = [s for s in cpu.servers_s if s is not None]
    servers_s = sum(known) if cpu.servers_s and len(known) == len(cpu.servers_s) else None

    return {
        "seconds": round(elapsed, 3),
        "requests": len(run.samples),
        "requests_per_s": round(len(run.samples) / elapsed, 1),
        "accepted": len(accepted),
        "out_of_stock": len(refused),
        "errors": len(run.errors),
        "sales_per_s": round(len(accepted) / selling_s, 1) if accepted else 0.0,
        "sold_out_after_s": None if sold_out_at is None else round(sold_out_at, 3),
        "refusals_per_s": round(len(refused) / after_s, 1) if refused and after_s > 0 else None,
        "p50_ms": pct_ms(all_lat, 50),
        "p99_ms": pct_ms(all_lat, 99),
        "max_ms": ms(all_lat[-1]),
        "accepted_p50_ms": pct_ms(acc_lat, 50),
        "accepted_p99_ms": pct_ms(acc_lat, 99),
        "refused_p50_ms": pct_ms(ref_lat, 50),
        "refused_p99_ms": pct_ms(ref_lat, 99),
        # CPU in % of one core over the run (the machine has nproc cores).
        "server_cpu_pct": pct_of_core(servers_s, elapsed),
        "client_cpu_pct": pct_of_core(cpu.client_s, elapsed),
        "database_cpu_pct": pct_of_core(cpu.database_s, elapsed),
        # Whatever else ran on the machine meanwhile (should be next to nothing).
        "other_cpu_pct": pct_of_core(cpu.other_s(elapsed), elapsed),
    }


# --- the scenarios ---------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    demo: Demo
    products: list[Server]
    engine: AsyncEngine
    credentials: StoreCredentials
    make_floor: Callable[[], Sender]
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def make_graphql(self) -> Sender:
        """A client of the next process in turn."""
        product = self.products[next(self._turn) % len(self.products)]
        return GraphQLSender(product.port, self.credentials.api_key)

    async def set_levels(self, sku_ids: list[int], level: int) -> None:
        wanted = {(STORE_ID, sku): level for sku in sku_ids}
        base_url = self.products[0].base_url
        await set_levels(base_url, self.credentials.manager_token, self.engine, wanted)


async def one_run(bench: Bench, name: str, target: str, sku_ids: list[int]) -> Result:
    """Set the levels, wait for a quiet machine, drive the load, check the database."""
    args, engine = bench.args, bench.engine
    await bench.set_levels(sku_ids, args.stock)
    marker = await ledger_marker(engine)
    sessions = await pg_sessions(engine)
    prefix = f"{name}-{target}-{secrets.token_hex(4)}"
    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    log(f"{name}/{target}: {args.clients} clients, {len(sku_ids)} SKU(s) x {args.stock}")
    graphql = target == "graphql"
    run = await drive(
        bench.make_graphql if graphql else bench.make_floor,
        sku_ids,
        clients=args.clients,
        seconds=args.seconds,
        budget=args.budget,
        prefix=prefix,
        server_pids=tuple(p.pid for p in bench.products) if graphql else (),
        postgres=bench.demo.postgres,
    )
    accepted_by_sku: dict[int, int] = {}
    for _, _, outcome, index in run.samples:
        if outcome == ACCEPTED:
            accepted_by_sku[sku_ids[index]] = accepted_by_sku.get(sku_ids[index], 0) + 1
    result = summarise(run)
    result.update(
        await check_database(engine, sku_ids, args.stock, marker, accepted_by_sku, prefix)
    )
    result["machine_busy_before_pct"] = busy_pct(busy)
    if sessions is not None:
        # New PostgreSQL connections during the run (a pool that churns shows here).
        result["database_sessions_opened"] = (await pg_sessions(engine) or 0) - sessions
    if run.errors:
        result["first_errors"] = sorted(set(run.errors))[:3]
    return result


async def scenario(bench: Bench, name: str, sku_ids: list[int]) -> Result:
    out: Result = {"skus": len(sku_ids), "stock_per_sku": bench.args.stock}
    for target in ("graphql", "floor"):

        async def attempt(number: int, target: str = target) -> Result:
            result = await one_run(bench, name, target, sku_ids)
            result["attempt"] = number
            return result

        out[target], _ = await least_disturbed(
            attempt,
            retries=bench.args.retries,
            other_pct=lambda r: r["other_cpu_pct"],
            wrong=lambda r: not r["consistent"] or bool(r["errors"]),
            label=f"{name}/{target}",
        )
        log(f"{name}/{target}: {json_line(out[target])}")
    graphql, floor = out["graphql"], out["floor"]
    out["ratio_sales_per_s"] = ratio(graphql["sales_per_s"], floor["sales_per_s"])
    out["ratio_requests_per_s"] = ratio(graphql["requests_per_s"], floor["requests_per_s"])
    return out


async def measure(
    args: argparse.Namespace,
    demo: Demo,
    products: list[Server],
    credentials: StoreCredentials,
) -> Result:
    for product in products:
        await wait_ready(product)
    engine = demo.engine()
    pool: asyncpg.Pool | None = None
    if demo.postgres:
        # As many connections as the product's pools hold together.
        size = Settings().database_pool_size * len(products)
        dsn = make_url(demo.url).set(drivername="postgresql")
        pool = await asyncpg.create_pool(
            dsn.render_as_string(hide_password=False), min_size=size, max_size=size
        )
        floor_driver = f"asyncpg pool of {size}"
    else:
        floor_driver = (
            "dinegraph.db.engine.create_engine (SQLAlchemy Core + aiosqlite), writers queued "
            "on local_write_lock as the product's unit of work does"
        )

    def make_floor() -> Sender:
        return AsyncpgFloorSender(pool) if pool is not None else FloorSender(engine)

    bench = Bench(args, demo, products, engine, credentials, make_floor)
    try:
        tracked = await tracked_sku_ids(engine)
        if len(tracked) < 3:
            raise BenchError(f"the demo has only {len(tracked)} tracked SKUs at store {STORE_ID}")
        hot, warm = tracked[0], tracked[-1]
        spread = tracked[1 : 1 + min(args.spread_skus, len(tracked) - 2)]
        log(f"hot SKU {hot}, spread over {len(spread)} SKUs, warm-up SKU {warm}")
        await bench.set_levels([warm], 9_999)
        await warm_up(bench.make_graphql, warm, args.clients, 1.0, "graphql")
        await warm_up(make_floor, warm, args.clients, 1.0, "floor")
        result: Result = {
            "scenario": "stock_contention",
            "product": product_revision().label(),
            "database": demo.database,
            "clients": args.clients,
            "processes": len(products),
            "broker": demo.products_broker(args.processes, args.redis_url).split(":", 1)[0],
            "seconds": args.seconds,
            "budget": args.budget,
            "floor_driver": floor_driver,
        }
        for name, sku_ids in (("hot", [hot]), ("spread", spread)):
            result[name] = await scenario(bench, name, sku_ids)
        result["server_peak_rss_mb"] = max(rss_mb(p.pid, "VmHWM") or 0.0 for p in products)
        result["server_log_problems"] = [x for p in products for x in p.log_problems()][:5]
        result["machine"] = machine()
        return result
    finally:
        if pool is not None:
            await pool.close()
        await engine.dispose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per run (8)")
    parser.add_argument(
        "--budget", type=int, default=50_000, help="at most this many requests per run (50000)"
    )
    parser.add_argument("--stock", type=int, default=500, help="starting units of each SKU (500)")
    parser.add_argument("--spread-skus", type=int, default=16, help="SKUs of `spread` (16)")
    add_processes_options(parser)
    add_common_options(parser, retries=2)
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    check_processes_options(parser, args, sqlite=args.database_url is None)
    if not 1 <= args.clients <= 512:
        parser.error("--clients must be between 1 and 512")
    if not 0 < args.seconds <= 120 or not 1 <= args.budget <= 1_000_000:
        parser.error("--seconds must be in (0, 120] and --budget in [1, 1000000]")
    if not 1 <= args.stock <= 1_000_000 or args.spread_skus < 2:
        parser.error("--stock must be in [1, 1000000] and --spread-skus at least 2")
    return args


def failures(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        for name in ("hot", "spread"):
            for target in ("graphql", "floor"):
                found += wrong_answers(f"{name}/{target}", result[name][target])
        if not result["hot"]["graphql"]["out_of_stock"]:
            log("WARNING: the hot SKU never ran out; raise --seconds or lower --stock")
        found += server_failures(result)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_in(workdir: Path, out: Out) -> None:
        with demo_database(args.database_url, workdir) as demo:
            credentials = store_credentials(demo)
            env = {
                **demo.env,
                "DINEGRAPH_BROKER_URL": demo.products_broker(args.processes, args.redis_url),
            }
            products = [start_product(f"graphql-{n}", env, workdir) for n in range(args.processes)]
            with stopping(*products):
                out(asyncio.run(measure(args, demo, products, credentials)))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
