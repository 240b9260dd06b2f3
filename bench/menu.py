"""StoreMenu benchmark: the GraphQL endpoint against a floor that runs the same SQL.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a
new ``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end),
starts ``dinegraph serve --workers 1`` (production mode, server timing on) and the floor
app (bench/menu_floor.py) on free loopback ports, checks that both answer the same JSON for
every open store, then drives the StoreMenu query from N concurrent keep-alive clients,
first against /graphql and then against the floor, for the same duration.

Prints exactly one JSON line on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/menu.py [--clients 16] [--seconds 10] [--warmup 2]
    .venv/bin/python bench/menu.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from harness.cpu import (
    CpuUsage,
    busy_pct,
    pct_of_core,
    proc_status_kb,
    snapshot,
    usage,
    wait_for_quiet,
)
from harness.database import Demo, demo_database, pg_sessions
from harness.http import graphql, graphql_body, statement_count
from harness.processes import Server, start_floor, start_product, stopping, wait_ready
from harness.report import BenchError, json_line, log, machine, product_revision
from harness.runs import Out, Result, add_common_options, check_common_options, run_bench
from harness.stats import mb, percentile, ratio
from sqlalchemy.ext.asyncio import AsyncEngine

REQUEST_TIMEOUT_S = 30.0

STORE_MENU = """query StoreMenu($storeId: ID!) {
  menu(storeId: $storeId, channel: DELIVERY) {
    store { id name }
    categories {
      id name
      products {
        id name kind tags
        skus { id name price { fen display } stock { available soldOut } }
      }
    }
  }
}"""
OPEN_STORES = "{ stores(first: 100) { edges { node { id isOpen } } } }"


@dataclass
class Sample:
    latency_s: float
    statements: int | None
    size: int


@dataclass
class Phase:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: CpuUsage | None = None
    database_sessions: int | None = None


Send = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


def graphql_sender(base_url: str) -> Send:
    url = f"{base_url}/graphql"
    headers = {"content-type": "application/json"}
    bodies: dict[str, bytes] = {}

    async def send(client: httpx.AsyncClient, store_id: str) -> httpx.Response:
        body = bodies.get(store_id)
        if body is None:
            body = bodies[store_id] = graphql_body(STORE_MENU, {"storeId": store_id}, "StoreMenu")
        return await client.post(url, content=body, headers=headers)

    return send


def floor_sender(base_url: str) -> Send:
    urls: dict[str, httpx.URL] = {}

    async def send(client: httpx.AsyncClient, store_id: str) -> httpx.Response:
        url = urls.get(store_id)
        if url is None:
            url = urls[store_id] = httpx.URL(f"{base_url}/menu", params={"storeId": store_id})
        return await client.get(url)

    return send


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
    )


async def drive(
    send: Send,
    store_ids: list[str],
    *,
    args: argparse.Namespace,
    pid: int,
    probe: AsyncEngine | None,
) -> Phase:
    """``--clients`` loops, each on its own keep-alive connection, for warmup + seconds.

    Only requests that complete inside the measured window count; the warm-up's are dropped.
    """
    phase = Phase()
    start = time.perf_counter()
    window_start, window_end = start + args.warmup, start + args.warmup + args.seconds

    async def client_loop(index: int) -> None:
        turn = index
        async with new_client() as client:
            while time.perf_counter() < window_end:
                store_id = store_ids[turn % len(store_ids)]
                turn += 1
                sent = time.perf_counter()
                try:
                    response = await send(client, store_id)
                except httpx.HTTPError as exc:  # the server is gone or stuck: stop this client
                    phase.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                done = time.perf_counter()
                if not window_start <= done <= window_end:
                    continue
                body = response.content
                if response.status_code != 200 or b'"errors"' in body:
                    phase.errors.append(f"HTTP {response.status_code}: {body[:200]!r}")
                    continue
                statements = statement_count(response.headers.get("server-timing"))
                phase.samples.append(Sample(done - sent, statements, len(body)))

    async def meter() -> None:
        database = ("postgres",) if probe is not None else ()
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        before = snapshot([pid], database)
        sessions0 = await pg_sessions(probe) if probe is not None else None
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        after = snapshot([pid], database)
        sessions1 = await pg_sessions(probe) if probe is not None else None
        phase.cpu = usage(before, after)
        if sessions0 is not None and sessions1 is not None:
            phase.database_sessions = sessions1 - sessions0

    await asyncio.gather(meter(), *(client_loop(i) for i in range(args.clients)))
    return phase


def summarise(phase: Phase, seconds: float, server: Server) -> Result:
    if not phase.samples:
        raise BenchError(f"{server.name}: no request completed in the window: {phase.errors[:3]}")
    assert phase.cpu is not None
    latencies = sorted(s.latency_s * 1000 for s in phase.samples)
    statements = [s.statements for s in phase.samples if s.statements is not None]
    requests = len(phase.samples)
    server_cpu = phase.cpu.server_s
    other_cpu = None if server_cpu is None else phase.cpu.other_s(seconds)
    return {
        "requests": requests,
        "errors": len(phase.errors),
        "rps": round(requests / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(latencies[-1], 2),
        "sql_statements_per_request": statistics.median_low(statements) if statements else None,
        "response_bytes": statistics.median_low(s.size for s in phase.samples),
        # CPU over the measured window, in % of one core (the machine has nproc cores).
        "server_cpu_pct": pct_of_core(server_cpu, seconds),
        "server_cpu_ms_per_request": (
            None if server_cpu is None else round(1000 * server_cpu / requests, 3)
        ),
        "client_cpu_pct": pct_of_core(phase.cpu.client_s, seconds),
        # PostgreSQL only: its processes' CPU (with exited backends) and the sessions opened
        # on the bench database.
        "database_cpu_pct": pct_of_core(phase.cpu.database_s, seconds),
        "database_sessions_opened": phase.database_sessions,
        "other_cpu_pct": pct_of_core(other_cpu, seconds),
        "server_peak_rss_mb": mb(proc_status_kb(server.pid, "VmHWM")),
    }


# --- checks --------------------------------------------------------------------------------


async def open_store_ids(product: Server) -> list[str]:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        data = await graphql(client, product.base_url, OPEN_STORES)
    ids = [e["node"]["id"] for e in data["stores"]["edges"] if e["node"]["isOpen"]]
    if not ids:
        raise BenchError("the demo database has no open store")
    return ids


def first_difference(a: Any, b: Any, path: str = "$") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} != {b!r}"


async def verify_same_answers(product: Server, floor: Server, store_ids: list[str]) -> bool:
    """Both answer equal JSON for every store (else BenchError); returns whether byte-equal."""
    byte_equal = True
    async with new_client() as client:
        graphql, floor_send = graphql_sender(product.base_url), floor_sender(floor.base_url)
        for store_id in store_ids:
            got_graphql, got_floor = (
                await graphql(client, store_id),
                await floor_send(client, store_id),
            )
            for name, response in (("graphql", got_graphql), ("floor", got_floor)):
                if response.status_code != 200:
                    raise BenchError(f"{name} answered HTTP {response.status_code} for {store_id}")
            expected, actual = orjson.loads(got_graphql.content), orjson.loads(got_floor.content)
            if "errors" in expected or expected.get("data", {}).get("menu") is None:
                raise BenchError(f"GraphQL gave no menu for {store_id}: {expected}")
            if expected != actual:
                raise BenchError(
                    f"floor and GraphQL disagree for store {store_id}: "
                    f"{first_difference(expected, actual)}"
                )
            byte_equal = byte_equal and got_graphql.content == got_floor.content
    log(f"verified: floor == GraphQL for {len(store_ids)} open stores (byte-equal: {byte_equal})")
    return byte_equal


# --- main ----------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, demo: Demo, product: Server, floor: Server) -> Result:
    await asyncio.gather(wait_ready(product), wait_ready(floor))
    revision = product_revision()
    store_ids = await open_store_ids(product)
    byte_equal = await verify_same_answers(product, floor, store_ids)
    probe = demo.engine() if demo.postgres else None
    results: dict[str, Result] = {}
    try:
        for server, send in (
            (product, graphql_sender(product.base_url)),
            (floor, floor_sender(floor.base_url)),
        ):
            busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
            log(f"{server.name}: {args.clients} clients, {args.warmup}s warm-up + {args.seconds}s")
            phase = await drive(send, store_ids, args=args, pid=server.pid, probe=probe)
            result = summarise(phase, args.seconds, server)
            result["machine_busy_before_pct"] = busy_pct(busy)
            if phase.errors:
                log(f"{server.name}: {len(phase.errors)} errors, first: {phase.errors[0]}")
            other = result["other_cpu_pct"]
            if other is not None and other > 25:
                log(f"WARNING: other work took {other}% of a core during the {server.name} run")
            log(f"{server.name}: {json_line(result)}")
            results[server.name] = result
    finally:
        if probe is not None:
            await probe.dispose()
    graphql, floor_result = results["graphql"], results["floor"]
    return {
        "scenario": "menu",
        "database": demo.database,
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "stores": len(store_ids),
        "product": revision.as_dict(),
        "responses_byte_equal": byte_equal,
        "graphql": graphql,
        "floor": floor_result,
        "ratio_rps_graphql_to_floor": ratio(graphql["rps"], floor_result["rps"]),
        "ratio_p50_graphql_to_floor": ratio(graphql["p50_ms"], floor_result["p50_ms"]),
        "machine": machine(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    add_common_options(parser, retries=None)
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    if not 1 <= args.clients <= 1024:
        parser.error("--clients must be between 1 and 1024")
    if not 0 < args.seconds <= 600 or not 0 <= args.warmup <= 120:
        parser.error("--seconds must be in (0, 600] and --warmup in [0, 120]")
    return args


def failures(results: list[Result]) -> list[str]:
    return [
        f"{errors} requests failed during the runs; the figures above are suspect"
        for result in results
        if (errors := result["graphql"]["errors"] + result["floor"]["errors"])
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_in(workdir: Path, out: Out) -> None:
        with demo_database(args.database_url, workdir, server_timing=True) as demo:
            product = start_product("graphql", demo.env, workdir)
            floor = start_floor("floor", "menu_floor.py", demo.env, workdir)
            with stopping(product, floor):
                out(asyncio.run(measure(args, demo, product, floor)))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
