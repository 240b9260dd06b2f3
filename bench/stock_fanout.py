"""Stock fan-out benchmark: one sale, N WebSocket subscribers, the time until each hears it.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end) and, for
N in --subscribers (100, 1000, 2000), opens N graphql-transport-ws subscribers, all on
``stockChanged(storeId: <store 1>, skuIds: [<hot SKU>])``, spread over --client-procs
subscriber processes (this script started with --worker; one Python process cannot read
2000 sockets quickly enough on its own). Once every subscriber has its initial state, it
makes --sales sales of the hot SKU one after the other through the HTTP API and records,
for each subscriber, when the update arrived.

Latency is measured from t0 = just before the recordSale request is written to the socket
(so it includes the sale's own transaction, the commit and the publication) to the moment
the subscriber's process reads the update; ``from_response_*`` measure the same receipts from
the moment the recordSale answer arrived (negative when a subscriber heard of the sale before
its seller did). Clocks: CLOCK_MONOTONIC, shared by all processes of the machine.

Configurations:

* ``memory_1proc``: one ``dinegraph serve --workers 1`` process, memory broker.
* ``postgres_2proc`` (only with --database-url): two processes on the PostgreSQL broker
  (LISTEN/NOTIFY on the same database); subscribers split evenly over both, sales sent to
  the first.
* ``redis_2proc`` (only with --redis-url): the same with the Redis broker.
* ``floor``: bench/fanout_floor.py, a bare Starlette app that sends one pre-encoded ``next``
  message to every socket on ``POST /publish``; t0 is just before that POST is written.

For each: p50/p99/max over all N x sales receipts, the median over sales of the slowest
subscriber, the server's CPU per sale, and its memory (VmRSS with N connected, VmHWM, VmRSS
after they disconnected) from /proc. Subscribers stay connected from one N to the next (only
the difference is opened). Each configuration waits for a quiet machine first; the sales of
an N during which other work took more than 30% of a core are made again (--retries).

Prints exactly one JSON line on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/stock_fanout.py [--subscribers 100,1000,2000] [--sales 5]
    .venv/bin/python bench/stock_fanout.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from harness.cpu import busy_pct, pct_of_core, rss_mb, snapshot, usage, wait_for_quiet
from harness.database import Demo, check_redis_url, demo_database
from harness.gqlws import PONG, subscribe_message
from harness.ids import global_id
from harness.processes import (
    Server,
    WorkerPool,
    answer_commands,
    cpu_reply,
    open_files_limit,
    raise_open_files,
    start_floor,
    start_product,
    stopping,
    wait_ready,
    worker_commands,
)
from harness.report import BenchError, json_line, log, machine, product_revision
from harness.runs import (
    Out,
    Result,
    add_common_options,
    check_common_options,
    least_disturbed,
    run_bench,
)
from harness.stats import latency_figures, ms, split
from harness.stock import (
    STORE_ID,
    levels_of,
    record_sale_body,
    set_levels,
    store_credentials,
    tracked_sku_ids,
)
from harness.ws import Subscriptions
from websockets.asyncio.client import ClientConnection

THIS = Path(__file__).resolve()
SUBSCRIPTION = (
    "subscription StockFeed($s: ID!, $k: [ID!]) "
    "{ stockChanged(storeId: $s, skuIds: $k) { sku { id } available soldOut version } }"
)
RECEIPT_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 180.0


# --- the subscriber process (--worker) -------------------------------------------------------


class Feed:
    """A subscriber process's subscribers, all to the hot SKU's ``stockChanged``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]
        self.sku: str = spec["variables"]["k"][0]
        self.subscribe = subscribe_message("1", SUBSCRIPTION, spec["variables"])
        self.gate = asyncio.Semaphore(spec["concurrency"])
        self.subscriptions = Subscriptions()
        self.problems = self.subscriptions.problems
        self.received: list[dict[int, float]] = []  # per subscriber: version -> when read
        self.heard: dict[int, int] = {}  # version -> subscribers that heard it
        self.wanted: dict[int, asyncio.Event] = {}

    def on_next(self, index: int, at: float, message: dict[str, Any]) -> None:
        payload = message.get("payload") or {}
        if "errors" in payload:
            self.problems.append(f"errors: {str(payload['errors'])[:200]}")
            return
        update = payload["data"]["stockChanged"]
        if update["sku"]["id"] != self.sku:
            self.problems.append(f"unexpected SKU {update['sku']}")
        version = int(update["version"])
        self.received[index][version] = at
        self.heard[version] = self.heard.get(version, 0) + 1
        event = self.wanted.get(version)
        if event is not None and self.heard[version] >= len(self.subscriptions.readers):
            event.set()

    async def open_one(self) -> tuple[ClientConnection, int]:
        """A subscriber and the version of its initial state."""
        async with self.gate:
            ws = await self.subscriptions.open(self.url)
            await ws.send(self.subscribe)
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if message.get("type") == "ping":
                    await ws.send(PONG)
                    continue
                if message.get("type") != "next" or "errors" in message.get("payload", {}):
                    raise RuntimeError(f"no initial state: {str(message)[:300]}")
                return ws, int(message["payload"]["data"]["stockChanged"]["version"])

    async def open_more(self, command: dict[str, Any]) -> dict[str, Any]:
        """``open`` (count): that many more subscribers, each with its initial state."""
        started = time.monotonic()
        opened = await asyncio.gather(
            *(self.open_one() for _ in range(int(command["count"]))), return_exceptions=True
        )
        failures = [repr(r) for r in opened if isinstance(r, BaseException)]
        initial = set()
        for got in opened:
            if not isinstance(got, BaseException):
                ws, version = got
                self.received.append({})
                self.subscriptions.read(ws, functools.partial(self.on_next, len(self.received) - 1))
                initial.add(version)
        return {
            "open": len(self.subscriptions.readers),
            "failed": len(failures),
            "first_failure": failures[0] if failures else None,
            "initial_versions": sorted(initial),
            "connect_s": round(time.monotonic() - started, 3),
            **cpu_reply(),
        }

    async def expect(self, command: dict[str, Any]) -> dict[str, Any]:
        """``expect`` (version, timeout): when each subscriber heard that version."""
        version = int(command["version"])
        event = self.wanted.setdefault(version, asyncio.Event())
        if self.heard.get(version, 0) >= len(self.subscriptions.readers):
            event.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), command["timeout"])
        times = [r.get(version) for r in self.received]
        answer = {"times": times, "problems": self.problems[:5], **cpu_reply()}
        self.problems.clear()
        return answer


async def worker() -> None:
    """A subscriber process: the spec on the first stdin line, then one JSON command a
    line (``open``, ``expect``, ``cpu``, ``close``), each answered with one line."""
    commands = await worker_commands()
    feed = Feed(orjson.loads(await commands.readline()))
    handlers = {"open": feed.open_more, "expect": feed.expect}
    await answer_commands(commands, handlers, feed.subscriptions.close)


# --- the configurations ----------------------------------------------------------------------


@dataclass
class Target:
    """Servers that subscribers connect to, and a way to make one change they must hear."""

    name: str
    servers: list[Server]
    trigger: Callable[[int], Awaitable[None]]  # the change to version n
    version: int | None = None  # the current version, once the first subscribers know it
    notes: dict[str, Any] = field(default_factory=dict)


# Complexity: The sales of one N, read top to bottom as the steps they measure.
async def sales(
    target: Target, subscribers: WorkerPool, n: int, args: argparse.Namespace
) -> Result:
    """--sales changes, one after the other, each once every subscriber heard the last."""
    servers = target.servers
    assert target.version is not None
    version = target.version
    pids = [s.pid for s in servers]
    # Everything this benchmark runs is known: the servers, this process, the subscriber
    # processes, and the PostgreSQL and Redis servers it may use.
    databases = ("postgres", "redis-server")
    baseline = await subscribers.ask({"cmd": "cpu"}, 30)
    before, started = snapshot(pids, databases), time.monotonic()
    from_send: list[float] = []
    from_response: list[float] = []
    by_server: dict[str, list[float]] = {s.name: [] for s in servers}
    slowest: list[float] = []
    trigger_s: list[float] = []
    missing = 0
    problems: list[str] = []
    replies = baseline
    for sale in range(1, args.sales + 1):
        await asyncio.sleep(args.gap)
        version += 1
        sent = time.monotonic()
        await target.trigger(version)
        answered = time.monotonic()
        target.version = version
        replies = await subscribers.ask(
            {"cmd": "expect", "version": version, "timeout": RECEIPT_TIMEOUT_S},
            RECEIPT_TIMEOUT_S + 30,
        )
        trigger_s.append(answered - sent)
        times: list[float] = []
        for reply, server_name in zip(replies, subscribers.labels, strict=True):
            problems += reply["problems"]
            got = [t for t in reply["times"] if t is not None]
            missing += len(reply["times"]) - len(got)
            by_server[server_name] += [t - sent for t in got]
            times += got
        from_send += [t - sent for t in times]
        from_response += [t - answered for t in times]
        if times:
            slowest.append(max(times) - sent)
        log(
            f"{target.name}: N={n} sale {sale}: {len(times)}/{n} heard, last after "
            f"{ms(max(times) - sent) if times else None} ms (answer after "
            f"{ms(answered - sent)} ms)"
        )
    elapsed = time.monotonic() - started
    cpu = usage(before, snapshot(pids, databases))
    workers_s = sum(r["cpu_s"] - b["cpu_s"] for b, r in zip(baseline, replies, strict=True))
    result: Result = {
        "received": len(from_send),
        "missing": missing,
        **latency_figures(from_send),
        "slowest_subscriber_median_ms": ms(statistics.median(slowest)) if slowest else None,
        "from_response": latency_figures(from_response),
        "trigger_answer_median_ms": ms(statistics.median(trigger_s)),
        "server_cpu_ms_per_sale": {
            s.name: round(1000 * (used or 0.0) / args.sales, 1)
            for s, used in zip(servers, cpu.servers_s, strict=True)
        },
        # CPU of the subscriber processes during the sales (reading and timing the updates).
        "client_cpu_s": [
            round(r["cpu_s"] - b["cpu_s"], 2) for b, r in zip(baseline, replies, strict=True)
        ],
        # Work on the machine that is not this benchmark's, in % of one core (should be ~0).
        "other_cpu_pct": pct_of_core(cpu.other_s(elapsed, extra_known_s=workers_s), elapsed),
    }
    if len(servers) > 1:
        result["by_process"] = {name: latency_figures(v) for name, v in by_server.items()}
    if problems:
        result["problems"] = problems[:5]
    return result


async def measure_n(
    target: Target, subscribers: WorkerPool, n: int, more: int, args: argparse.Namespace
) -> Result:
    """Open ``more`` subscribers (to reach ``n``), then make the sales and time them."""
    servers = target.servers
    counts = split(more, len(subscribers.procs))
    opened = await subscribers.ask([{"cmd": "open", "count": c} for c in counts], READY_TIMEOUT_S)
    failed = sum(r["failed"] for r in opened)
    if failed or sum(r["open"] for r in opened) != n:
        first = next((r["first_failure"] for r in opened if r["first_failure"]), None)
        raise BenchError(f"{target.name}: {failed} of {more} new subscribers failed: {first}")
    versions = sorted({v for r in opened for v in r["initial_versions"]})
    if len(versions) != 1 or (target.version is not None and versions[0] != target.version):
        raise BenchError(
            f"{target.name}: new subscribers got initial versions {versions}, "
            f"the current one is {target.version}"
        )
    target.version = versions[0]
    connect_s = max(r["connect_s"] for r in opened)
    log(f"{target.name}: {more} more subscribers in {connect_s}s, {n} in all")
    rss_connected = {s.name: rss_mb(s.pid) for s in servers}

    async def quiet() -> None:
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)

    figures, attempts = await least_disturbed(
        lambda _: sales(target, subscribers, n, args),
        retries=args.retries,
        other_pct=lambda r: r["other_cpu_pct"],
        label=f"{target.name}: N={n}",
        between=quiet,
    )
    return {
        "subscribers": n,
        "attempts": attempts,
        **figures,
        "connect_s": {"new_subscribers": more, "seconds": connect_s},
        "server_rss_connected_mb": rss_connected,
        "server_peak_rss_mb": {s.name: rss_mb(s.pid, "VmHWM") for s in servers},
    }


async def run_target(target: Target, args: argparse.Namespace, variables: dict[str, Any]) -> Result:
    """Each N in turn, adding subscribers to those already open; then all disconnect."""
    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    out: Result = {
        "processes": len(target.servers),
        **target.notes,
        "machine_busy_before_pct": busy_pct(busy),
    }
    subscribers = WorkerPool()
    try:
        # --client-procs processes, process k on server k mod the number of servers.
        for k in range(args.client_procs):
            server = target.servers[k % len(target.servers)]
            spec = {
                "url": server.ws_url,
                "variables": variables,
                "concurrency": args.connect_concurrency,
            }
            await subscribers.spawn([str(THIS), "--worker"], server.name, first=spec)
        previous = 0
        for n in args.subscribers:
            out[str(n)] = await measure_n(target, subscribers, n, n - previous, args)
            previous = n
            log(f"{target.name}: N={n}: {json_line(out[str(n)])}")
    finally:
        await subscribers.close()
    # With everybody gone, one more change should cost the server next to nothing: a
    # subscription left behind (a leak) would still be served.
    await asyncio.sleep(1.0)
    before = snapshot([s.pid for s in target.servers])
    assert target.version is not None
    target.version += 1
    await target.trigger(target.version)
    await asyncio.sleep(1.0)
    after = usage(before, snapshot([s.pid for s in target.servers]))
    out["after_all_disconnected"] = {
        "server_rss_mb": {s.name: rss_mb(s.pid) for s in target.servers},
        "server_cpu_ms_one_more_change": {
            s.name: round(1000 * (used or 0.0), 1)
            for s, used in zip(target.servers, after.servers_s, strict=True)
        },
    }
    out["server_log_problems"] = [p for s in target.servers for p in s.log_problems()][:5]
    return out


def product_target(
    name: str,
    servers: list[Server],
    api_key: str,
    hot: int,
    client: httpx.AsyncClient,
    broker_url: str,
) -> Target:
    """Sales go to the first server."""
    seller = servers[0]
    headers = {"x-api-key": api_key, "content-type": "application/json"}
    prefix = f"fanout-{name}-{secrets.token_hex(4)}"

    async def sell(version: int) -> None:
        body = record_sale_body(hot, f"{prefix}-{version}")
        response = await client.post(f"{seller.base_url}/graphql", content=body, headers=headers)
        answer = orjson.loads(response.content)
        payload = (answer.get("data") or {}).get("recordSale") or {}
        if response.status_code != 200 or payload.get("errors") or not payload.get("sale"):
            raise BenchError(f"{name}: the sale failed: HTTP {response.status_code} {answer}")

    return Target(name, servers, sell, notes={"broker": broker_url.split(":", 1)[0]})


def floor_target(server: Server, hot: int, client: httpx.AsyncClient) -> Target:
    sku = global_id("Sku", hot)

    async def publish(version: int) -> None:
        message = orjson.dumps(
            {
                "id": "1",
                "type": "next",
                "payload": {
                    "data": {
                        "stockChanged": {
                            "sku": {"id": sku},
                            "available": 1000 - version,
                            "soldOut": False,
                            "version": version,
                        }
                    }
                },
            }
        )
        response = await client.post(f"{server.base_url}/publish", content=message)
        if response.status_code != 200:
            raise BenchError(f"floor: /publish answered HTTP {response.status_code}")

    return Target("floor", [server], publish, version=0)


async def measure(
    args: argparse.Namespace, demo: Demo, api_key: str, manager_token: str, workdir: Path
) -> Result:
    engine = demo.engine()
    result: Result = {
        "scenario": "stock_fanout",
        "product": product_revision().label(),
        "database": demo.database,
        "sales_per_n": args.sales,
        "client_procs": args.client_procs,
        "t0": "just before the recordSale request (floor: the POST /publish) is written",
        "configs": {},
    }
    try:
        hot = (await tracked_sku_ids(engine))[0]
        variables = {"s": global_id("Store", STORE_ID), "k": [global_id("Sku", hot)]}
        configs = [("memory_1proc", "memory://", 1)]
        if demo.postgres:
            configs.append(("postgres_2proc", demo.postgres_broker_url(), 2))
        if args.redis_url:
            configs.append(("redis_2proc", args.redis_url, 2))
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            for name, broker_url, processes in configs:
                env = {**demo.env, "DINEGRAPH_BROKER_URL": broker_url}
                servers = [
                    start_product(f"{name}-{'AB'[k]}", env, workdir) for k in range(processes)
                ]
                with stopping(*servers):
                    target = product_target(name, servers, api_key, hot, client, broker_url)
                    await asyncio.gather(*(wait_ready(s) for s in servers))
                    level = 10 * args.sales * len(args.subscribers)
                    await set_levels(
                        servers[0].base_url, manager_token, engine, {(STORE_ID, hot): level}
                    )
                    result["configs"][name] = await run_target(target, args, variables)
            floor = start_floor("floor", "fanout_floor.py", dict(os.environ), workdir)
            with stopping(floor):
                await wait_ready(floor)
                target = floor_target(floor, hot, client)
                result["configs"]["floor"] = await run_target(target, args, variables)
        level = (await levels_of(engine, [hot]))[hot]
        result["hot_sku_final"] = {"available": level[0], "version": level[1]}
    finally:
        await engine.dispose()
    floor_figures = result["configs"]["floor"]
    result["ratio_p50_to_floor"] = {
        name: {
            str(n): (
                round(got[str(n)]["p50_ms"] / floor_figures[str(n)]["p50_ms"], 2)
                if floor_figures[str(n)]["p50_ms"]
                else None
            )
            for n in args.subscribers
        }
        for name, got in result["configs"].items()
        if name != "floor"
    }
    result["machine"] = machine(open_files_limit=open_files_limit())
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", default="100,1000,2000", help="N values, comma-separated (100,1000,2000)"
    )
    parser.add_argument("--sales", type=int, default=5, help="sales per N (5)")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between sales (0.3)")
    parser.add_argument("--client-procs", type=int, default=2, help="subscriber processes (2)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=50, help="handshakes at once per process (50)"
    )
    add_common_options(
        parser,
        retries=2,
        retries_help="measure an N again (up to this many times) when other work disturbed it",
        database_help="; adds the two-process PostgreSQL-broker configuration",
    )
    parser.add_argument(
        "--redis-url", help="e.g. redis://127.0.0.1:6379/0: adds a two-process Redis configuration"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    check_common_options(parser, args)
    try:
        args.subscribers = sorted({int(v) for v in args.subscribers.split(",") if v.strip()})
    except ValueError:
        parser.error("--subscribers must be comma-separated integers")
    if not args.subscribers or not all(1 <= n <= 10_000 for n in args.subscribers):
        parser.error("each N must be between 1 and 10000")
    if not 1 <= args.sales <= 100 or not 1 <= args.client_procs <= 8:
        parser.error("--sales must be in [1, 100] and --client-procs in [1, 8]")
    check_redis_url(parser, args.redis_url)
    return args


def failures(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        for name, config in result["configs"].items():
            if config["server_log_problems"]:
                found.append(f"{name}: the server logged errors: {config['server_log_problems']}")
            for key, got in config.items():
                if key.isdigit() and (got["missing"] or got.get("problems")):
                    found.append(f"{name} N={key}: {got['missing']} missing, {got.get('problems')}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        raise_open_files(10_000 + 64)
        asyncio.run(worker())
        return 0

    def measure_in(workdir: Path, out: Out) -> None:
        # Servers inherit the limit: each socket is one file on either side.
        raise_open_files(max(args.subscribers) + 1024)
        with demo_database(args.database_url, workdir) as demo:
            credentials = store_credentials(demo)
            out(
                asyncio.run(
                    measure(args, demo, credentials.api_key, credentials.manager_token, workdir)
                )
            )

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
