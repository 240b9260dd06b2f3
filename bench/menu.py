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
import contextlib
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

BENCH_DIR = Path(__file__).resolve().parent
FLOOR_APP = BENCH_DIR / "menu_floor.py"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0
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
STATEMENTS = re.compile(rb'db;desc="(\d+) statements"')


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark cannot produce trustworthy figures; the message says why."""


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def dinegraph_command() -> list[str]:
    beside = Path(sys.executable).parent / "dinegraph"
    found = str(beside) if beside.exists() else shutil.which("dinegraph")
    if found is None:
        raise BenchError("the `dinegraph` command is not installed next to this Python")
    return [found]


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_server(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", LOOPBACK, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    log(f"{name}: pid {process.pid} on {LOOPBACK}:{port} (log {log_path})")
    return Server(name, process, port, log_path)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    log(f"{server.name}: stopped (exit {server.process.returncode})")


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def cpu_of_command(command: str) -> float:
    """CPU seconds of the processes named ``command`` (e.g. PostgreSQL's), live or reaped.

    Adds the children's times that each parent has reaped (cutime, cstime), so that the
    backends PostgreSQL forks for new connections and that exit mid-window still count.
    """
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if head.partition("(")[2] == command:
            total += sum(int(v) for v in tail.split()[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_over(seconds: float) -> float | None:
    before = machine_cpu()
    time.sleep(seconds)
    after = machine_cpu()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float | None:
    """Wait (up to max_wait) until the machine is mostly idle; returns the last busy share.

    Other jobs on a small machine (a test run, a build) would take CPU from the servers
    under test and make the figures meaningless.
    """
    deadline = time.monotonic() + max_wait
    while True:
        busy = machine_busy_over(1.0)
        if busy is None or busy <= threshold:
            return busy
        if time.monotonic() >= deadline:
            log(f"WARNING: the machine is still {busy:.0%} busy; the figures will suffer")
            return busy
        log(f"the machine is {busy:.0%} busy with other work; waiting for it to quieten")
        time.sleep(4.0)


def product_revision() -> dict[str, Any]:
    """The commit under test, and whether dinegraph/ had uncommitted changes (read-only git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "--no-optional-locks", "-C", str(BENCH_DIR.parent), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "dinegraph", "migrations")
    return {
        "commit": git("rev-parse", "--short=12", "HEAD"),
        "uncommitted_changes": None if status is None else bool(status),
    }


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*dinegraph_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"dinegraph {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# --- the database --------------------------------------------------------------------------


def sqlite_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_postgres_database(server_url: URL) -> URL:
    name = f"dinegraph_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    log(f"created PostgreSQL database {name}")
    return server_url.set(database=name)


def drop_postgres_database(server_url: URL, bench_url: URL) -> None:
    name = bench_url.database
    try:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as exc:  # older servers have no WITH (FORCE)
        log(f"DROP ... WITH (FORCE) failed ({exc!r}); retrying without FORCE")
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}"'))
    log(f"dropped PostgreSQL database {name}")


class PostgresProbe:
    """What the PostgreSQL server spends: its processes' CPU and the sessions opened."""

    def __init__(self, url: str) -> None:
        self._engine = create_async_engine(
            url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0
        )

    def cpu_seconds(self) -> float:
        return cpu_of_command("postgres")

    async def sessions(self) -> int | None:
        """Sessions ever opened on the bench database (pg_stat_database, PostgreSQL 14+)."""
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        try:
            async with self._engine.connect() as conn:
                value = (await conn.execute(text(query))).scalar()
        except Exception as exc:
            log(f"cannot read pg_stat_database.sessions: {exc!r}")
            return None
        return None if value is None else int(value)

    async def close(self) -> None:
        await self._engine.dispose()


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Sample:
    latency_s: float
    statements: int | None
    size: int


@dataclass
class Phase:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    database_cpu_s: float | None = None
    database_sessions: int | None = None
    machine_busy: float | None = None


Send = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


def graphql_sender(base_url: str) -> Send:
    url = f"{base_url}/graphql"
    headers = {"content-type": "application/json"}

    bodies: dict[str, bytes] = {}

    async def send(client: httpx.AsyncClient, store_id: str) -> httpx.Response:
        body = bodies.get(store_id)
        if body is None:
            body = bodies[store_id] = orjson.dumps(
                {
                    "query": STORE_MENU,
                    "operationName": "StoreMenu",
                    "variables": {"storeId": store_id},
                }
            )
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
    clients: int,
    warmup: float,
    seconds: float,
    pid: int,
    database: PostgresProbe | None,
) -> Phase:
    """`clients` loops, each on its own keep-alive connection, for warmup + seconds.

    Only requests that complete inside the measured window count; the warm-up's are dropped.
    """
    phase = Phase()
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + seconds

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
                match = STATEMENTS.search(response.headers.get("server-timing", "").encode())
                phase.samples.append(
                    Sample(done - sent, int(match.group(1)) if match else None, len(body))
                )

    async def meter() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu0, server0, machine0 = time.process_time(), proc_cpu_seconds(pid), machine_cpu()
        db0 = database.cpu_seconds() if database else None
        sessions0 = await database.sessions() if database else None
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        cpu1, server1, machine1 = time.process_time(), proc_cpu_seconds(pid), machine_cpu()
        db1 = database.cpu_seconds() if database else None
        sessions1 = await database.sessions() if database else None
        phase.client_cpu_s = cpu1 - cpu0
        if db0 is not None and db1 is not None:
            phase.database_cpu_s = db1 - db0
        if sessions0 is not None and sessions1 is not None:
            phase.database_sessions = sessions1 - sessions0
        if server0 is not None and server1 is not None:
            phase.server_cpu_s = server1 - server0
        if machine0 is not None and machine1 is not None and machine1[1] > machine0[1]:
            phase.machine_busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])

    await asyncio.gather(meter(), *(client_loop(i) for i in range(clients)))
    return phase


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarise(phase: Phase, seconds: float, server: Server) -> dict[str, Any]:
    if not phase.samples:
        raise BenchError(f"{server.name}: no request completed in the window: {phase.errors[:3]}")
    latencies = sorted(s.latency_s * 1000 for s in phase.samples)
    statements = [s.statements for s in phase.samples if s.statements is not None]
    requests = len(phase.samples)
    peak_kb = proc_status_kb(server.process.pid, "VmHWM")
    server_cpu = phase.server_cpu_s

    def pct_of_one_core(cpu_s: float | None) -> float | None:
        return None if cpu_s is None else round(100 * cpu_s / seconds, 1)

    other_cpu = None
    if phase.machine_busy is not None and server_cpu is not None:
        all_cpu = phase.machine_busy * (os.cpu_count() or 1) * seconds
        other_cpu = max(
            0.0, all_cpu - server_cpu - phase.client_cpu_s - (phase.database_cpu_s or 0)
        )
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
        "server_cpu_pct": pct_of_one_core(server_cpu),
        "server_cpu_ms_per_request": (
            None if server_cpu is None else round(1000 * server_cpu / requests, 3)
        ),
        "client_cpu_pct": pct_of_one_core(phase.client_cpu_s),
        # PostgreSQL only: its processes' CPU (with exited backends) and the sessions opened
        # on the bench database.
        "database_cpu_pct": pct_of_one_core(phase.database_cpu_s),
        "database_sessions_opened": phase.database_sessions,
        "other_cpu_pct": pct_of_one_core(other_cpu),
        "server_peak_rss_mb": None if peak_kb is None else round(peak_kb / 1024, 1),
    }


# --- checks --------------------------------------------------------------------------------


async def wait_ready(server: Server, path: str, deadline: float) -> None:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{server.base_url}{path}")).status_code == 200:
                    log(f"{server.name}: ready")
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} not ready in time:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


async def open_store_ids(product: Server) -> list[str]:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        response = await client.post(f"{product.base_url}/graphql", json={"query": OPEN_STORES})
    data = orjson.loads(response.content)
    if response.status_code != 200 or "errors" in data:
        raise BenchError(f"listing stores failed: HTTP {response.status_code} {data}")
    ids = [e["node"]["id"] for e in data["data"]["stores"]["edges"] if e["node"]["isOpen"]]
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="wait up to this many seconds for other work on the machine to finish (120)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a scratch database on, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (default: SQLite in a temp dir)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 1024:
        parser.error("--clients must be between 1 and 1024")
    if not 0 < args.seconds <= 600 or not 0 <= args.warmup <= 120:
        parser.error("--seconds must be in (0, 600] and --warmup in [0, 120]")
    if args.database_url is not None:
        url = make_url(args.database_url)
        if url.get_backend_name() != "postgresql" or url.host not in {
            "127.0.0.1",
            "localhost",
            "::1",
        }:
            parser.error("--database-url must be a loopback postgresql+asyncpg:// URL")
    return args


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so that servers and the scratch database go."""

    def raise_exit(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, raise_exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server_url = make_url(args.database_url) if args.database_url else None
    bench_url: URL | None = None
    servers: list[Server] = []
    try:
        if server_url is None:
            database_url, database = sqlite_url(workdir), "sqlite"
        else:
            bench_url = create_postgres_database(server_url)
            database_url, database = bench_url.render_as_string(hide_password=False), "postgresql"
        env = {
            **os.environ,
            "DINEGRAPH_DATABASE_URL": database_url,
            "DINEGRAPH_MODE": "production",
            "DINEGRAPH_SECRET_KEY": secrets.token_urlsafe(48),
            "DINEGRAPH_SERVER_TIMING": "1",
            "PYTHONUNBUFFERED": "1",
        }
        log(f"migrating and seeding the demo chain into {database}")
        run_cli(["migrate"], env)
        seeded = run_cli(["seed", "--demo"], env).splitlines()
        log(seeded[0] if seeded else "seeded")

        product = start_server(
            "graphql", [*dinegraph_command(), "serve", "--workers", "1"], env, workdir
        )
        servers.append(product)
        floor = start_server("floor", [sys.executable, str(FLOOR_APP)], env, workdir)
        servers.append(floor)
        return asyncio.run(measure(args, database, database_url, product, floor))
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                stop_server(server)
        if server_url is not None and bench_url is not None:
            drop_postgres_database(server_url, bench_url)


async def measure(
    args: argparse.Namespace, database: str, database_url: str, product: Server, floor: Server
) -> dict[str, Any]:
    probe = PostgresProbe(database_url) if database == "postgresql" else None
    try:
        return await measure_with(args, database, probe, product, floor)
    finally:
        if probe is not None:
            await probe.close()


async def measure_with(
    args: argparse.Namespace,
    database: str,
    probe: PostgresProbe | None,
    product: Server,
    floor: Server,
) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    await asyncio.gather(
        wait_ready(product, "/health", deadline), wait_ready(floor, "/health", deadline)
    )
    revision = product_revision()
    store_ids = await open_store_ids(product)
    byte_equal = await verify_same_answers(product, floor, store_ids)
    results: dict[str, dict[str, Any]] = {}
    for server, send in (
        (product, graphql_sender(product.base_url)),
        (floor, floor_sender(floor.base_url)),
    ):
        busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
        log(f"{server.name}: {args.clients} clients, {args.warmup}s warm-up + {args.seconds}s")
        phase = await drive(
            send,
            store_ids,
            clients=args.clients,
            warmup=args.warmup,
            seconds=args.seconds,
            pid=server.process.pid,
            database=probe,
        )
        results[server.name] = summarise(phase, args.seconds, server)
        results[server.name]["machine_busy_before_pct"] = (
            None if busy is None else round(100 * busy, 1)
        )
        if phase.errors:
            log(f"{server.name}: {len(phase.errors)} errors, first: {phase.errors[0]}")
        other = results[server.name]["other_cpu_pct"]
        if other is not None and other > 25:
            log(f"WARNING: other work took {other}% of a core during the {server.name} run")
        log(f"{server.name}: {orjson.dumps(results[server.name]).decode()}")

    graphql, floor_result = results["graphql"], results["floor"]
    return {
        "scenario": "menu",
        "database": database,
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "stores": len(store_ids),
        "product": revision,
        "responses_byte_equal": byte_equal,
        "graphql": graphql,
        "floor": floor_result,
        "ratio_rps_graphql_to_floor": round(graphql["rps"] / floor_result["rps"], 3),
        "ratio_p50_graphql_to_floor": round(graphql["p50_ms"] / floor_result["p50_ms"], 3),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        try:
            result = run(args, Path(tmp))
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    errors = result["graphql"]["errors"] + result["floor"]["errors"]
    if errors:
        log(f"FAILED: {errors} requests failed during the runs; the figures above are suspect")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
