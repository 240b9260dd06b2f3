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
import os
import platform
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import make_url
from stock_contention import (
    LOOPBACK,
    RECORD_SALE,
    STORE_ID,
    BenchError,
    Demo,
    Server,
    bench_engine,
    check_database_url,
    cpu_of_command,
    demo_database,
    dinegraph_command,
    global_id,
    levels_of,
    log,
    machine_cpu,
    percentile,
    proc_cpu_seconds,
    proc_status_kb,
    product_version,
    set_levels,
    start_server,
    stop_server,
    terminate_as_exit,
    tracked_sku_ids,
    wait_for_quiet,
    wait_ready,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

THIS = Path(__file__).resolve()
FLOOR_APP = THIS.parent / "fanout_floor.py"
PROTOCOL = "graphql-transport-ws"
SUBSCRIPTION = (
    "subscription StockFeed($s: ID!, $k: [ID!]) "
    "{ stockChanged(storeId: $s, skuIds: $k) { sku { id } available soldOut version } }"
)
PONG = '{"type":"pong"}'
RECEIPT_TIMEOUT_S = 30.0
DISTURBED_PCT = 30.0  # other work above this share of a core during the sales: measure again
READY_TIMEOUT_S = 180.0


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# --- the subscriber process (--worker) -------------------------------------------------------


# Complexity: One reader's loop, read top to bottom as the steps it measures.
async def worker(spec: dict[str, Any]) -> None:  # noqa: C901
    """Answer commands on stdin, one JSON line each, with one JSON line on stdout.

    ``open`` (count): open that many more subscribers, each waiting for its initial state;
    ``expect`` (version, timeout): wait until every subscriber has heard that version, then
    report when each heard it; ``close``: close them all and exit.
    """
    variables: dict[str, Any] = spec["variables"]
    sku: str = variables["k"][0]
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(orjson.dumps(obj).decode() + "\n")
        sys.stdout.flush()

    received: list[dict[int, float]] = []
    sockets: list[ClientConnection | None] = []
    initial: list[int | None] = []
    readers: list[asyncio.Task[None]] = []
    heard: dict[int, int] = {}
    wanted: dict[int, asyncio.Event] = {}
    problems: list[str] = []
    closing = False
    subscribe = orjson.dumps(
        {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": variables}}
    ).decode()
    gate = asyncio.Semaphore(spec["concurrency"])

    def on_next(index: int, at: float, message: dict[str, Any]) -> None:
        payload = message.get("payload") or {}
        if "errors" in payload:
            problems.append(f"errors: {str(payload['errors'])[:200]}")
            return
        update = payload["data"]["stockChanged"]
        if update["sku"]["id"] != sku:
            problems.append(f"unexpected SKU {update['sku']}")
        version = int(update["version"])
        received[index][version] = at
        heard[version] = heard.get(version, 0) + 1
        event = wanted.get(version)
        if event is not None and heard[version] >= len(readers):
            event.set()

    async def open_one(index: int) -> None:
        async with gate:
            ws = await connect(
                spec["url"],
                subprotocols=[Subprotocol(PROTOCOL)],
                open_timeout=60,
                ping_interval=None,
            )
            sockets[index] = ws
            await ws.send('{"type":"connection_init","payload":{}}')
            ack = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(subscribe)
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if message.get("type") == "ping":
                    await ws.send(PONG)
                    continue
                if message.get("type") != "next" or "errors" in message.get("payload", {}):
                    raise RuntimeError(f"no initial state: {str(message)[:300]}")
                initial[index] = int(message["payload"]["data"]["stockChanged"]["version"])
                return

    async def read(index: int, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                at = time.monotonic()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    on_next(index, at, message)
                elif kind == "ping":
                    await ws.send(PONG)
                elif kind != "pong":
                    problems.append(f"{kind}: {str(message)[:200]}")
        except ConnectionClosed as exc:
            if not closing:
                problems.append(f"closed by the server: {exc}")

    async def open_more(count: int) -> dict[str, Any]:
        first = len(sockets)
        received.extend({} for _ in range(count))
        sockets.extend(None for _ in range(count))
        initial.extend(None for _ in range(count))
        started = time.monotonic()
        opened = await asyncio.gather(
            *(open_one(i) for i in range(first, first + count)), return_exceptions=True
        )
        failures = [repr(r) for r in opened if isinstance(r, BaseException)]
        for i in range(first, first + count):
            ws = sockets[i]
            if ws is not None and initial[i] is not None:
                readers.append(asyncio.create_task(read(i, ws)))
        return {
            "open": len(readers),
            "failed": len(failures),
            "first_failure": failures[0] if failures else None,
            "initial_versions": sorted({v for v in initial[first:] if v is not None}),
            "connect_s": round(time.monotonic() - started, 3),
            "cpu_s": round(time.process_time(), 3),
        }

    while True:
        line = await commands.readline()
        if not line:
            break
        command = orjson.loads(line)
        if command["cmd"] == "open":
            say(await open_more(int(command["count"])))
        elif command["cmd"] == "expect":
            version = int(command["version"])
            event = wanted.setdefault(version, asyncio.Event())
            if heard.get(version, 0) >= len(readers):
                event.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), command["timeout"])
            say(
                {
                    "times": [r.get(version) for r in received],
                    "problems": problems[:5],
                    "cpu_s": round(time.process_time(), 3),
                }
            )
            problems.clear()
        elif command["cmd"] == "cpu":
            say({"cpu_s": round(time.process_time(), 3)})
        elif command["cmd"] == "close":
            closing = True
            await asyncio.gather(
                *(ws.close() for ws in sockets if ws is not None), return_exceptions=True
            )
            for task in readers:
                task.cancel()
            say({"closed": True, "cpu_s": round(time.process_time(), 3)})
            break


class Subscribers:
    """Subscriber processes, each on one server, driven over their stdin and stdout."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.servers: list[str] = []

    async def start(
        self, servers: list[Server], variables: dict[str, Any], concurrency: int
    ) -> None:
        for server in servers:
            spec = {
                "url": f"ws://{LOOPBACK}:{server.port}/graphql",
                "variables": variables,
                "concurrency": concurrency,
            }
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(THIS),
                "--worker",
                orjson.dumps(spec).decode(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 24,
            )
            self.procs.append(proc)
            self.servers.append(server.name)

    async def ask(
        self, command: dict[str, Any] | list[dict[str, Any]], within: float
    ) -> list[dict[str, Any]]:
        """Send the command (or one per process) to every process; one reply from each."""
        each = command if isinstance(command, list) else [command] * len(self.procs)
        for proc, one in zip(self.procs, each, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(one) + b"\n")
            await proc.stdin.drain()

        async def reply(proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), within)
            if not line:
                raise BenchError(f"subscriber process {proc.pid} exited ({proc.returncode})")
            answer: dict[str, Any] = orjson.loads(line)
            return answer

        return list(await asyncio.gather(*(reply(p) for p in self.procs)))

    async def close(self) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):
            replies = await self.ask({"cmd": "close"}, 60)
        for proc in self.procs:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        return replies


# --- the configurations ----------------------------------------------------------------------


@dataclass
class Target:
    """Servers that subscribers connect to, and a way to make one change they must hear."""

    name: str
    servers: list[Server]
    trigger: Callable[[int], Awaitable[None]]  # the change to version n
    version: int | None = None  # the current version, once the first subscribers know it
    notes: dict[str, Any] = field(default_factory=dict)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def latency_figures(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    return {
        "p50_ms": ms(percentile(ordered, 50)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]),
    }


def known_cpu(servers: list[Server], worker_cpu: float) -> float:
    """CPU seconds so far of everything this benchmark runs: servers, subscriber processes,
    this process, and the PostgreSQL and Redis servers it may use."""
    return (
        sum(proc_cpu_seconds(s.process.pid) or 0.0 for s in servers)
        + worker_cpu
        + time.process_time()
        + cpu_of_command("postgres")
        + cpu_of_command("redis-server")
    )


async def sales(
    target: Target, subscribers: Subscribers, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    """--sales changes, one after the other, each once every subscriber heard the last."""
    servers = target.servers
    assert target.version is not None
    version = target.version
    baseline = await subscribers.ask({"cmd": "cpu"}, 30)
    cpu0 = {s.name: proc_cpu_seconds(s.process.pid) or 0.0 for s in servers}
    known0 = known_cpu(servers, sum(r["cpu_s"] for r in baseline))
    machine0, started = machine_cpu(), time.monotonic()
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
        for reply, server_name in zip(replies, subscribers.servers, strict=True):
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
    cpu1 = {s.name: proc_cpu_seconds(s.process.pid) or 0.0 for s in servers}
    known1 = known_cpu(servers, sum(r["cpu_s"] for r in replies))
    machine1 = machine_cpu()
    other_pct = None
    if machine0 is not None and machine1 is not None and machine1[1] > machine0[1]:
        busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])
        everything = busy * len(os.sched_getaffinity(0)) * elapsed
        other_pct = round(100 * max(0.0, everything - (known1 - known0)) / elapsed, 1)
    result: dict[str, Any] = {
        "received": len(from_send),
        "missing": missing,
        **latency_figures(from_send),
        "slowest_subscriber_median_ms": ms(statistics.median(slowest)) if slowest else None,
        "from_response": latency_figures(from_response),
        "trigger_answer_median_ms": ms(statistics.median(trigger_s)),
        "server_cpu_ms_per_sale": {
            name: round(1000 * (cpu1[name] - cpu0[name]) / args.sales, 1) for name in cpu0
        },
        # CPU of the subscriber processes during the sales (reading and timing the updates).
        "client_cpu_s": [
            round(r["cpu_s"] - b["cpu_s"], 2) for b, r in zip(baseline, replies, strict=True)
        ],
        # Work on the machine that is not this benchmark's, in % of one core (should be ~0).
        "other_cpu_pct": other_pct,
    }
    if len(servers) > 1:
        result["by_process"] = {name: latency_figures(v) for name, v in by_server.items()}
    if problems:
        result["problems"] = problems[:5]
    return result


async def measure_n(
    target: Target,
    subscribers: Subscribers,
    n: int,
    more: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
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
    rss_connected = {s.name: mb(proc_status_kb(s.process.pid, "VmRSS")) for s in servers}
    attempts = 0
    while True:
        attempts += 1
        figures = await sales(target, subscribers, n, args)
        other = figures["other_cpu_pct"]
        if other is None or other <= DISTURBED_PCT or attempts > args.retries:
            break
        log(f"{target.name}: N={n}: other work took {other}% of a core meanwhile; again")
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    if other is not None and other > DISTURBED_PCT:
        log(f"WARNING: {target.name}: N={n}: other work took {other}% of a core meanwhile")
    return {
        "subscribers": n,
        "attempts": attempts,
        **figures,
        "connect_s": {"new_subscribers": more, "seconds": connect_s},
        "server_rss_connected_mb": rss_connected,
        "server_peak_rss_mb": {s.name: mb(proc_status_kb(s.process.pid, "VmHWM")) for s in servers},
    }


async def run_target(
    target: Target, args: argparse.Namespace, variables: dict[str, Any]
) -> dict[str, Any]:
    """Each N in turn, adding subscribers to those already open; then all disconnect."""
    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    out: dict[str, Any] = {
        "processes": len(target.servers),
        **target.notes,
        "machine_busy_before_pct": None if busy is None else round(100 * busy, 1),
    }
    subscribers = Subscribers()
    # --client-procs processes, process k on server k mod the number of servers.
    plan = [target.servers[k % len(target.servers)] for k in range(args.client_procs)]
    try:
        await subscribers.start(plan, variables, args.connect_concurrency)
        previous = 0
        for n in args.subscribers:
            out[str(n)] = await measure_n(target, subscribers, n, n - previous, args)
            previous = n
            log(f"{target.name}: N={n}: {orjson.dumps(out[str(n)]).decode()}")
    finally:
        await subscribers.close()
    # With everybody gone, one more change should cost the server next to nothing: a
    # subscription left behind (a leak) would still be served.
    await asyncio.sleep(1.0)
    cpu0 = {s.name: proc_cpu_seconds(s.process.pid) or 0.0 for s in target.servers}
    assert target.version is not None
    target.version += 1
    await target.trigger(target.version)
    await asyncio.sleep(1.0)
    out["after_all_disconnected"] = {
        "server_rss_mb": {
            s.name: mb(proc_status_kb(s.process.pid, "VmRSS")) for s in target.servers
        },
        "server_cpu_ms_one_more_change": {
            s.name: round(1000 * ((proc_cpu_seconds(s.process.pid) or 0.0) - cpu0[s.name]), 1)
            for s in target.servers
        },
    }
    problems = [p for s in target.servers for p in s.log_problems()]
    out["server_log_problems"] = problems[:5]
    return out


def product_env(demo: Demo, broker_url: str) -> dict[str, str]:
    return {**demo.env, "DINEGRAPH_BROKER_URL": broker_url}


async def product_target(
    name: str,
    demo: Demo,
    broker_url: str,
    processes: int,
    workdir: Path,
    servers_started: list[Server],
    hot: int,
    client: httpx.AsyncClient,
) -> Target:
    servers = []
    for k in range(processes):
        server = start_server(
            f"{name}-{'AB'[k]}",
            [*dinegraph_command(), "serve", "--workers", "1"],
            product_env(demo, broker_url),
            workdir,
        )
        servers_started.append(server)
        servers.append(server)
    seller = servers[0]
    headers = {"x-api-key": demo.api_key, "content-type": "application/json"}
    store, sku = global_id("Store", STORE_ID), global_id("Sku", hot)
    prefix = f"fanout-{name}-{secrets.token_hex(4)}"

    async def sell(version: int) -> None:
        body = orjson.dumps(
            {
                "query": RECORD_SALE,
                "variables": {
                    "input": {
                        "storeId": store,
                        "source": "POS",
                        "externalOrderId": f"{prefix}-{version}",
                        "lines": [{"skuId": sku, "quantity": 1}],
                    }
                },
            }
        )
        response = await client.post(f"{seller.base_url}/graphql", content=body, headers=headers)
        answer = orjson.loads(response.content)
        payload = (answer.get("data") or {}).get("recordSale") or {}
        if response.status_code != 200 or payload.get("errors") or not payload.get("sale"):
            raise BenchError(f"{name}: the sale failed: HTTP {response.status_code} {answer}")

    return Target(name, servers, sell, notes={"broker": broker_url.split(":", 1)[0]})


def floor_target(
    workdir: Path, servers_started: list[Server], hot: int, client: httpx.AsyncClient
) -> Target:
    server = start_server("floor", [sys.executable, str(FLOOR_APP)], dict(os.environ), workdir)
    servers_started.append(server)
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


async def measure(args: argparse.Namespace, demo: Demo, workdir: Path) -> dict[str, Any]:
    engine = bench_engine(demo.url)
    servers: list[Server] = []
    result: dict[str, Any] = {
        "scenario": "stock_fanout",
        "product": product_version(),
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
        if demo.database == "postgresql":
            pg = make_url(demo.url).set(drivername="postgresql")
            configs.append(("postgres_2proc", pg.render_as_string(hide_password=False), 2))
        if args.redis_url:
            configs.append(("redis_2proc", args.redis_url, 2))
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            for name, broker_url, processes in configs:
                started: list[Server] = []
                try:
                    target = await product_target(
                        name, demo, broker_url, processes, workdir, started, hot, client
                    )
                    await asyncio.gather(*(wait_ready(s) for s in target.servers))
                    sales = args.sales * len(args.subscribers)
                    await set_levels(
                        engine, target.servers[0].base_url, demo.manager_token, [hot], 10 * sales
                    )
                    result["configs"][name] = await run_target(target, args, variables)
                finally:
                    for server in started:
                        stop_server(server)
                    servers += started
            started = []
            try:
                target = floor_target(workdir, started, hot, client)
                await wait_ready(target.servers[0])
                result["configs"]["floor"] = await run_target(target, args, variables)
            finally:
                for server in started:
                    stop_server(server)
        level = (await levels_of(engine, [hot]))[hot]
        result["hot_sku_final"] = {"available": level[0], "version": level[1]}
    finally:
        await engine.dispose()
    floor = result["configs"]["floor"]
    result["ratio_p50_to_floor"] = {
        name: {
            str(n): (
                round(got[str(n)]["p50_ms"] / floor[str(n)]["p50_ms"], 2)
                if floor[str(n)]["p50_ms"]
                else None
            )
            for n in args.subscribers
        }
        for name, got in result["configs"].items()
        if name != "floor"
    }
    result["machine"] = {
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
    return result


def raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise BenchError(f"need {needed} open files, the limit is {soft} (ulimit -n)")


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
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measure an N again (up to this many times) when other work disturbed it (2)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="wait up to this many seconds for other work on the machine to finish (120)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a scratch database on, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (default: SQLite in a temp dir); "
        "adds the two-process PostgreSQL-broker configuration",
    )
    parser.add_argument(
        "--redis-url", help="e.g. redis://127.0.0.1:6379/0: adds a two-process Redis configuration"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return args
    try:
        args.subscribers = sorted({int(v) for v in args.subscribers.split(",") if v.strip()})
    except ValueError:
        parser.error("--subscribers must be comma-separated integers")
    if not args.subscribers or not all(1 <= n <= 10_000 for n in args.subscribers):
        parser.error("each N must be between 1 and 10000")
    if not 1 <= args.sales <= 100 or not 1 <= args.client_procs <= 8:
        parser.error("--sales must be in [1, 100] and --client-procs in [1, 8]")
    check_database_url(parser, args.database_url)
    if args.redis_url is not None:
        url = make_url(args.redis_url)
        if url.drivername not in {"redis", "rediss"} or url.host not in {
            "127.0.0.1",
            "localhost",
            "::1",
        }:
            parser.error("--redis-url must be a loopback redis:// URL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        raise_open_files(10_000 + 64)
        asyncio.run(worker(orjson.loads(args.worker)))
        return 0
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        try:
            # Servers inherit the limit: each socket is one file on either side.
            raise_open_files(max(args.subscribers) + 1024)
            with demo_database(args.database_url, Path(tmp)) as demo:
                result = asyncio.run(measure(args, demo, Path(tmp)))
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    failed = False
    for name, config in result["configs"].items():
        if config["server_log_problems"]:
            log(f"FAILED: {name}: the server logged errors: {config['server_log_problems']}")
            failed = True
        for n in args.subscribers:
            got = config[str(n)]
            if got["missing"] or got.get("problems"):
                log(f"FAILED: {name} N={n}: {got['missing']} missing, {got.get('problems')}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
