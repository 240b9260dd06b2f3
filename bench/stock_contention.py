"""Stock contention benchmark: concurrent recordSale on one hot SKU and on many, against a floor.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end), starts
``dinegraph serve --workers 1`` (production mode, generated secret key) on a free loopback
port, creates a store-1 partner API key (stock:write) and a store-1 manager token, then runs
two scenarios, each first through the product and then through the floor:

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
PostgreSQL through a bare asyncpg pool as large as the product's (pool_size + max_overflow).

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
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Helpers shared with bench/stock_fanout.py live here (that script imports this one).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dinegraph.db.engine import WRITE, create_engine, local_write_lock
from dinegraph.db.tables import skus, stock_ledger, stock_levels, stock_movements
from dinegraph.settings import Settings

LOOPBACK = "127.0.0.1"
DISTURBED_PCT = 30.0  # other work above this share of a core during a run: run it again
STARTUP_TIMEOUT_S = 60.0
STORE_ID = 1

RECORD_SALE = (
    "mutation RecordSale($input: RecordSaleInput!) "
    "{ recordSale(input: $input) { sale { id } errors { code } } }"
)
ADJUST_STOCK = (
    "mutation Adjust($input: AdjustStockInput!) "
    "{ adjustStock(input: $input) { movement { id } errors { code } } }"
)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark cannot produce trustworthy figures; the message says why."""


def global_id(type_name: str, node_id: int) -> str:
    """What strawberry's ``relay.GlobalID`` prints: base64 of ``Type:id``."""
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- processes (as bench/menu.py does) ------------------------------------------------------


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

    def log_problems(self) -> list[str]:
        """Tracebacks and ERROR lines in the server's log (access lines are ignored)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [
            line
            for line in text.splitlines()
            if " ERROR " in line or line.startswith("Traceback") or " CRITICAL " in line
        ]


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


async def wait_ready(server: Server, path: str = "/health") -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
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


def cpu_of_command(command: str) -> float:
    """CPU seconds of every process named ``command`` (e.g. the PostgreSQL server), with
    those of its exited children (the postmaster reaps backends that have closed, and their
    time shows in its cutime/cstime)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if head.partition("(")[2] == command:
            fields = tail.split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def machine_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def machine_busy_over(seconds: float) -> float | None:
    before = machine_cpu()
    time.sleep(seconds)
    after = machine_cpu()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float | None:
    """Wait (up to max_wait) until the machine is mostly idle; returns the last busy share.

    Other jobs on a small machine (a test run, another benchmark) would take CPU from the
    servers under test and make the figures meaningless.
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


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise BenchError("the command printed nothing")
    return lines[-1]


def product_version() -> str | None:
    """The commit the product was measured at (read-only git), "+dirty" with local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "dinegraph", "migrations"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if changed else "")


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


# --- the scratch database -------------------------------------------------------------------


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
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


def check_database_url(parser: argparse.ArgumentParser, value: str | None) -> None:
    if value is None:
        return
    url = make_url(value)
    if url.get_backend_name() != "postgresql" or url.host not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("--database-url must be a loopback postgresql+asyncpg:// URL")


@dataclass
class Demo:
    """A migrated and seeded scratch database, and the environment to serve it."""

    database: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL of the scratch database
    env: dict[str, str]
    api_key: str  # X-Api-Key: stock:write at store 1
    manager_token: str  # Authorization: Bearer, STORE_MANAGER of store 1


@contextlib.contextmanager
def demo_database(database_url: str | None, workdir: Path) -> Iterator[Demo]:
    """Create, migrate and seed a scratch database; drop it (PostgreSQL) on the way out."""
    server_url = make_url(database_url) if database_url else None
    bench_url: URL | None = None
    try:
        if server_url is None:
            url, database = f"sqlite+aiosqlite:///{workdir / 'bench.db'}", "sqlite"
        else:
            bench_url = create_postgres_database(server_url)
            url, database = bench_url.render_as_string(hide_password=False), "postgresql"
        env = {
            **os.environ,
            "DINEGRAPH_DATABASE_URL": url,
            "DINEGRAPH_BROKER_URL": "memory://",
            "DINEGRAPH_MODE": "production",
            "DINEGRAPH_SECRET_KEY": secrets.token_urlsafe(48),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DINEGRAPH_SERVER_TIMING", None)
        log(f"migrating and seeding the demo chain into {database}")
        run_cli(["migrate"], env)
        seeded = run_cli(["seed", "--demo"], env).splitlines()
        log(seeded[0] if seeded else "seeded")
        token = last_line(
            run_cli(["staff-token", "--role", "STORE_MANAGER", "--store", str(STORE_ID)], env)
        )
        key = last_line(
            run_cli(
                [
                    "create-api-key",
                    "--name",
                    "bench-pos",
                    "--scopes",
                    "stock:write",
                    "--store",
                    str(STORE_ID),
                ],
                env,
            )
        )
        yield Demo(database, url, env, key, token)
    finally:
        if server_url is not None and bench_url is not None:
            drop_postgres_database(server_url, bench_url)


def bench_engine(url: str) -> AsyncEngine:
    """The product's engine for this database (SQLite: WAL, BEGIN IMMEDIATE on writes)."""
    return create_engine(Settings(database_url=url))


async def tracked_sku_ids(engine: AsyncEngine) -> list[int]:
    """Tracked SKUs that have a counted level at store 1, in id order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(skus.c.id)
            .join(
                stock_levels,
                (stock_levels.c.sku_id == skus.c.id) & (stock_levels.c.store_id == STORE_ID),
            )
            .where(skus.c.tracked.is_(True), stock_levels.c.available.is_not(None))
            .order_by(skus.c.id)
        )
        return [int(r.id) for r in rows]


async def levels_of(engine: AsyncEngine, sku_ids: list[int]) -> dict[int, tuple[int, int]]:
    """sku id -> (available, version) at store 1."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                stock_levels.c.sku_id, stock_levels.c.available, stock_levels.c.version
            ).where(stock_levels.c.store_id == STORE_ID, stock_levels.c.sku_id.in_(sku_ids))
        )
        return {int(r.sku_id): (int(r.available), int(r.version)) for r in rows}


async def graphql(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, Any]:
    response = await client.post(
        f"{base_url}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = orjson.loads(response.content)
    if response.status_code != 200 or "errors" in body:
        raise BenchError(f"HTTP {response.status_code}: {body}")
    data: dict[str, Any] = body["data"]
    return data


async def set_levels(
    engine: AsyncEngine, base_url: str, token: str, sku_ids: list[int], level: int
) -> None:
    """Bring each SKU at store 1 to ``level`` units through adjustStock (so the ledger agrees)."""
    headers = {"authorization": f"Bearer {token}"}
    current = await levels_of(engine, sku_ids)
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for sku_id in sku_ids:
            delta = level - current[sku_id][0]
            while delta:
                step = max(-9_999, min(9_999, delta))
                data = await graphql(
                    client,
                    base_url,
                    ADJUST_STOCK,
                    {
                        "input": {
                            "storeId": global_id("Store", STORE_ID),
                            "skuId": global_id("Sku", sku_id),
                            "delta": step,
                            "reason": "bench reset",
                            "reference": f"bench-reset-{secrets.token_hex(8)}",
                        }
                    },
                    headers,
                )
                if data["adjustStock"]["errors"]:
                    raise BenchError(f"adjustStock failed: {data['adjustStock']['errors']}")
                delta -= step
    got = await levels_of(engine, sku_ids)
    if any(got[s][0] != level for s in sku_ids):
        raise BenchError(f"could not set the levels to {level}: {got}")


# --- a lean HTTP/1.1 keep-alive client ------------------------------------------------------


class RawHttp:
    """One keep-alive connection; POST and read a Content-Length answer. Cheap on the CPU,
    so that the client takes as little as possible from the server on a small machine."""

    _LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = (
            f"Host: {host}:{port}\r\ncontent-type: application/json\r\n{extra}content-length: "
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + self._head
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        match = self._LENGTH.search(head)
        if match is None:
            raise BenchError(f"answer without content-length: {head[:300]!r}")
        data = await self._reader.readexactly(int(match.group(1)))
        return int(head[9:12]), data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None


# --- driving the load ------------------------------------------------------------------------

ACCEPTED, OUT_OF_STOCK, ERROR = "accepted", "out_of_stock", "error"


@dataclass
class Run:
    """What the clients saw during one measured run."""

    start: float = 0.0
    # (completed at, seconds after start; latency in seconds; outcome; SKU index)
    samples: list[tuple[float, float, str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    database_cpu_s: float | None = None
    machine_busy: float | None = None  # share of all cores busy during the run


class Sender:
    """One client's way to make one sale: through GraphQL, or through the floor."""

    async def sell(self, sku_id: int, order: str) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class GraphQLSender(Sender):
    def __init__(self, port: int, api_key: str) -> None:
        self._http = RawHttp(LOOPBACK, port, {"x-api-key": api_key})
        self._store = global_id("Store", STORE_ID)

    async def sell(self, sku_id: int, order: str) -> str:
        body = orjson.dumps(
            {
                "query": RECORD_SALE,
                "operationName": "RecordSale",
                "variables": {
                    "input": {
                        "storeId": self._store,
                        "source": "POS",
                        "externalOrderId": order,
                        "lines": [{"skuId": global_id("Sku", sku_id), "quantity": 1}],
                    }
                },
            }
        )
        status, data = await self._http.post("/graphql", body)
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
        await self._http.close()


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
        if self._lock is None:
            return await self._sell(sku_id, order)
        async with self._lock:
            return await self._sell(sku_id, order)

    async def _sell(self, sku_id: int, order: str) -> str:
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(**{WRITE: True})
            await conn.begin()
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
        finally:
            await conn.close()


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
    server_pid: int | None,
    database: str,
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

    cpu0, machine0 = time.process_time(), machine_cpu()
    server0 = proc_cpu_seconds(server_pid) if server_pid else None
    db0 = cpu_of_command("postgres") if database == "postgresql" else None
    run.start = time.perf_counter()
    try:
        await asyncio.gather(*(client_loop(s) for s in senders))
    finally:
        for sender in senders:
            await sender.close()
    run.client_cpu_s = time.process_time() - cpu0
    machine1 = machine_cpu()
    if machine0 is not None and machine1 is not None and machine1[1] > machine0[1]:
        run.machine_busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])
    if server_pid and server0 is not None:
        server1 = proc_cpu_seconds(server_pid)
        run.server_cpu_s = None if server1 is None else server1 - server0
    if db0 is not None:
        run.database_cpu_s = cpu_of_command("postgres") - db0
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
        server_pid=None,
        database="",
    )
    if run.errors:
        raise BenchError(f"warm-up ({tag}) failed: {run.errors[:3]}")


# --- checking and summarising ---------------------------------------------------------------


async def pg_sessions(engine: AsyncEngine) -> int | None:
    """Sessions ever opened on this PostgreSQL database (None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            )
        )


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


def summarise(run: Run) -> dict[str, Any]:
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

    def pct(values: list[float], q: float) -> float | None:
        return ms(percentile(values, q)) if values else None

    def cpu_pct(cpu: float | None) -> float | None:
        return None if cpu is None else round(100 * cpu / elapsed, 1)

    other_cpu = None
    if run.machine_busy is not None:
        everything = run.machine_busy * len(os.sched_getaffinity(0)) * elapsed
        known = (run.server_cpu_s or 0) + run.client_cpu_s + (run.database_cpu_s or 0)
        other_cpu = max(0.0, everything - known)

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
        "p50_ms": pct(all_lat, 50),
        "p99_ms": pct(all_lat, 99),
        "max_ms": ms(all_lat[-1]),
        "accepted_p50_ms": pct(acc_lat, 50),
        "accepted_p99_ms": pct(acc_lat, 99),
        "refused_p50_ms": pct(ref_lat, 50),
        "refused_p99_ms": pct(ref_lat, 99),
        # CPU in % of one core over the run (the machine has nproc cores).
        "server_cpu_pct": cpu_pct(run.server_cpu_s),
        "client_cpu_pct": cpu_pct(run.client_cpu_s),
        "database_cpu_pct": cpu_pct(run.database_cpu_s),
        # Whatever else ran on the machine meanwhile (should be next to nothing).
        "other_cpu_pct": cpu_pct(other_cpu),
    }


# --- the scenarios ---------------------------------------------------------------------------


async def one_run(
    name: str,
    target: str,
    make_sender: Callable[[], Sender],
    pid: int | None,
    sku_ids: list[int],
    *,
    args: argparse.Namespace,
    demo: Demo,
    product: Server,
    engine: AsyncEngine,
) -> dict[str, Any]:
    """Set the levels, wait for a quiet machine, drive the load, check the database."""
    await set_levels(engine, product.base_url, demo.manager_token, sku_ids, args.stock)
    marker = await ledger_marker(engine)
    sessions = await pg_sessions(engine)
    prefix = f"{name}-{target}-{secrets.token_hex(4)}"
    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    log(f"{name}/{target}: {args.clients} clients, {len(sku_ids)} SKU(s) x {args.stock}")
    run = await drive(
        make_sender,
        sku_ids,
        clients=args.clients,
        seconds=args.seconds,
        budget=args.budget,
        prefix=prefix,
        server_pid=pid,
        database=demo.database,
    )
    accepted_by_sku: dict[int, int] = {}
    for _, _, outcome, index in run.samples:
        if outcome == ACCEPTED:
            accepted_by_sku[sku_ids[index]] = accepted_by_sku.get(sku_ids[index], 0) + 1
    result = summarise(run)
    result.update(
        await check_database(engine, sku_ids, args.stock, marker, accepted_by_sku, prefix)
    )
    result["machine_busy_before_pct"] = None if busy is None else round(100 * busy, 1)
    if sessions is not None:
        # New PostgreSQL connections during the run (a pool that churns shows here).
        result["database_sessions_opened"] = (await pg_sessions(engine) or 0) - sessions
    if run.errors:
        result["first_errors"] = sorted(set(run.errors))[:3]
    return result


async def scenario(
    name: str,
    sku_ids: list[int],
    *,
    args: argparse.Namespace,
    demo: Demo,
    product: Server,
    engine: AsyncEngine,
    make_floor: Callable[[], Sender],
) -> dict[str, Any]:
    out: dict[str, Any] = {"skus": len(sku_ids), "stock_per_sku": args.stock}
    targets = (
        ("graphql", lambda: GraphQLSender(product.port, demo.api_key), product.process.pid),
        ("floor", make_floor, None),
    )
    for target, make_sender, pid in targets:
        for attempt in range(1, args.retries + 2):
            result = await one_run(
                name,
                target,
                make_sender,
                pid,
                sku_ids,
                args=args,
                demo=demo,
                product=product,
                engine=engine,
            )
            result["attempt"] = attempt
            if not result["consistent"] or result["errors"]:
                break  # a wrong answer is reported as it is, never measured away
            other = result["other_cpu_pct"]
            if other is None or other <= DISTURBED_PCT or attempt > args.retries:
                break
            log(f"{name}/{target}: other work took {other}% of a core meanwhile; again")
        if result["other_cpu_pct"] is not None and result["other_cpu_pct"] > DISTURBED_PCT:
            log(f"WARNING: {name}/{target}: other work took {result['other_cpu_pct']}% of a core")
        log(f"{name}/{target}: {orjson.dumps(result).decode()}")
        out[target] = result
    graphql_, floor = out["graphql"], out["floor"]
    out["ratio_sales_per_s"] = (
        round(graphql_["sales_per_s"] / floor["sales_per_s"], 3) if floor["sales_per_s"] else None
    )
    out["ratio_requests_per_s"] = round(graphql_["requests_per_s"] / floor["requests_per_s"], 3)
    return out


async def measure(args: argparse.Namespace, demo: Demo, product: Server) -> dict[str, Any]:
    await wait_ready(product)
    engine = bench_engine(demo.url)
    pool: asyncpg.Pool | None = None
    if demo.database == "postgresql":
        # As many connections as the product's pool may open (pool_size + max_overflow).
        size = 2 * Settings().database_pool_size
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

    try:
        tracked = await tracked_sku_ids(engine)
        if len(tracked) < 3:
            raise BenchError(f"the demo has only {len(tracked)} tracked SKUs at store {STORE_ID}")
        hot, warm = tracked[0], tracked[-1]
        spread = tracked[1 : 1 + min(args.spread_skus, len(tracked) - 2)]
        log(f"hot SKU {hot}, spread over {len(spread)} SKUs, warm-up SKU {warm}")
        await set_levels(engine, product.base_url, demo.manager_token, [warm], 9_999)
        await warm_up(
            lambda: GraphQLSender(product.port, demo.api_key), warm, args.clients, 1.0, "graphql"
        )
        await warm_up(make_floor, warm, args.clients, 1.0, "floor")
        result: dict[str, Any] = {
            "scenario": "stock_contention",
            "product": product_version(),
            "database": demo.database,
            "clients": args.clients,
            "seconds": args.seconds,
            "budget": args.budget,
            "floor_driver": floor_driver,
        }
        for name, sku_ids in (("hot", [hot]), ("spread", spread)):
            result[name] = await scenario(
                name,
                sku_ids,
                args=args,
                demo=demo,
                product=product,
                engine=engine,
                make_floor=make_floor,
            )
        result["server_peak_rss_mb"] = round(
            (proc_status_kb(product.process.pid, "VmHWM") or 0) / 1024, 1
        )
        result["server_log_problems"] = product.log_problems()[:5]
        result["machine"] = {
            "nproc": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        }
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
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="run a measurement again (up to this many times) when other work disturbed it (2)",
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
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (default: SQLite in a temp dir)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 512:
        parser.error("--clients must be between 1 and 512")
    if not 0 < args.seconds <= 120 or not 1 <= args.budget <= 1_000_000:
        parser.error("--seconds must be in (0, 120] and --budget in [1, 1000000]")
    if not 1 <= args.stock <= 1_000_000 or args.spread_skus < 2:
        parser.error("--stock must be in [1, 1000000] and --spread-skus at least 2")
    check_database_url(parser, args.database_url)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        workdir = Path(tmp)
        try:
            with demo_database(args.database_url, workdir) as demo:
                product = start_server(
                    "graphql", [*dinegraph_command(), "serve", "--workers", "1"], demo.env, workdir
                )
                try:
                    result = asyncio.run(measure(args, demo, product))
                finally:
                    stop_server(product)
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    failed = False
    for name in ("hot", "spread"):
        for target in ("graphql", "floor"):
            got = result[name][target]
            if not got["consistent"]:
                log(f"FAILED: {name}/{target}: {got['problems']}")
                failed = True
            if got["errors"]:
                log(f"FAILED: {name}/{target}: {got['errors']} requests failed")
                failed = True
        if name == "hot" and not result[name]["graphql"]["out_of_stock"]:
            log("WARNING: the hot SKU never ran out; raise --seconds or lower --stock")
    if result["server_log_problems"]:
        log(f"FAILED: the server logged errors: {result['server_log_problems']}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
