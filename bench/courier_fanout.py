"""Courier fan-out benchmark: couriers report positions, members and store maps follow them live.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end) and sets
up --deliveries deliveries in progress through the API, on a ``dinegraph serve`` of its own
(stopped before anything is measured): fresh members (inserted straight into the database,
their tokens minted with the server's key, as in bench/checkout.py) each place one
DELIVERY order pinned to one of the open stores that dispatch to DADA (round-robin), to an
address 1.5-3 km from it (`placeOrder`, a made-to-order SKU), pay it (`payOrder`); the
store's manager moves it to ACCEPTED, PREPARING and READY (`updateOrderStatus`), which
dispatches it to DADA (the development platform names a courier at once); the bench reads
the delivery from `order(id) { delivery }` and, with DADA's partner key, reports it
PICKED_UP and DELIVERING (`reportDeliveryStatus`).

The server runs in DEVELOPMENT mode, as in bench/checkout.py: only that mode takes
``DINEGRAPH_CLOCK_START``. Every server of the run is started with the clock of one frame
that began at the coming 12:00 Asia/Shanghai (never a past noon) and runs at the real rate,
so the stores are open and each courier's ``recordedAt`` (the frame's time when the report
is sent) keeps growing from one server to the next. The payment timeout is a day. The
orders are paid through the development payment adapter (``DINEGRAPH_DEVELOPMENT_PAYMENTS``,
the WeChat Pay merchant left out): WeChat Pay's API is a closed port here.

Then, for each configuration, fresh servers on that database and:

1. reports only (no subscriber): every courier reports every --interval seconds through
   ``reportCourierPosition`` (DADA's key, --report-connections keep-alive HTTP connections
   shared by the couriers), 5 s of warm-up then --calibrate seconds measured: the server's
   CPU per report without fan-out;
2. the subscribers connect (nothing reported meanwhile): per order one ``courierUpdates``
   subscriber as its member, per store --map-subscribers ``storeDeliveryFeed`` subscribers
   as its manager, each on its own graphql-transport-ws connection, spread over
   --client-procs subscriber processes (this script with --worker), process k on server k
   mod the number of servers; each waits for its initial state;
3. the couriers report again: --warmup seconds, then --seconds measured (more windows of
   the same length, up to --retries, when other work took over 30% of a core meanwhile;
   the least disturbed is reported);
4. reporting stops, every subscriber waits (up to --drain seconds) for the last version of
   each delivery it follows, and the subscriber processes hand their receipts over.

Each courier starts at its store and moves in a straight line toward the customer at
--speed m/s (then stays there); its reports are spread evenly over the interval. A courier
never has two reports in flight: a slot that comes while the last report is unanswered is
skipped (``slots_skipped``), and a report waits until 1.1 s after the last answer (the
server refuses a delivery's reports closer than 1 s apart, RATE_LIMITED).

Latency: from t0 = just before the report's request is written to its socket (so it
includes the report's own transaction, commit and publication) to the moment a subscriber
process reads the push carrying the version the report's answer named; ``from_response``
measures the same receipts from when the report's answer arrived (negative when the push
came first). CLOCK_MONOTONIC, shared by all processes of the machine. p50/p99/max are over
every (measured report, subscriber that follows it) pair that heard that very version. A
subscriber may skip to a newer version of a delivery (the product keeps only the newest
state per delivery for a slow reader): such versions count as ``skipped``; a version never
heard and never followed by a newer one counts as ``never_delivered``, and
``final_missing`` counts (subscriber, delivery) pairs still without the last version once
the drain ended.

Configurations: ``memory_1proc`` (one ``dinegraph serve --workers 1``, memory broker; SQLite
or PostgreSQL), ``postgres_2proc`` (PostgreSQL only: two processes on the PostgreSQL broker,
LISTEN/NOTIFY on the same database; reports through the first, half of the subscribers on
each), ``postgres_2proc_spread`` (the same with the reports spread over both processes, as a
balancer in front of them would: each takes half the reports and sends the pushes of the
other's), and ``floor``: bench/courier_floor.py, a bare Starlette app that takes the same
report requests and subscriptions and sends the same number of pushes, each message encoded
once per topic (no database, no GraphQL), measured in the same run after the product.

Server CPU and memory come from /proc/<pid> (CPU over each window; VmRSS before the
subscribers, with them connected and at the end; VmHWM); ``server_cpu_ms_per_report`` and
``server_cpu_ms_per_push`` both divide the same window's CPU, ``push_cpu_ms_net`` first takes
off what the reports cost without subscribers. Each configuration waits for a quiet machine
first. Prints one JSON line per product configuration (each with the floor beside it) on
stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/courier_fanout.py [--deliveries 500] [--seconds 60]
    .venv/bin/python bench/courier_fanout.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from harness.cpu import (
    CpuSnapshot,
    busy_pct,
    pct_of_core,
    rss_mb,
    snapshot,
    usage,
    wait_for_quiet,
)
from harness.database import Demo, demo_database, pg_sessions
from harness.gqlws import subscribe_message
from harness.http import LeanConnection, graphql, graphql_body, pooled_client, statement_count
from harness.ids import global_id
from harness.processes import (
    LOOPBACK,
    Server,
    WorkerPool,
    answer_commands,
    cli_value,
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
from harness.shop import (
    OrderSpec,
    coming_noon,
    development_couriers,
    development_env,
    development_payments,
    insert_members,
    place_order_body,
    point_between,
    read_chain,
)
from harness.stats import latency_figures, pct_ms, ratio
from harness.ws import Subscriptions
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.db.tables import deliveries
from dinegraph.db.tables import stores as stores_table
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_member_token, issue_staff_token
from dinegraph.settings import Settings

THIS = Path(__file__).resolve()
PROVIDER = "DADA"
REPORT_GAP_S = 1.1  # after the last answer: the server's default minimum interval is 1 s
REPORT_WARMUP_S = 5.0  # before the reports-only window
DESTINATION_M = (1500.0, 3000.0)  # the customer, this far from the store
READY_TIMEOUT_S = 300.0

REPORT = (
    "mutation Report($input: ReportCourierPositionInput!) { reportCourierPosition(input: $input) "
    "{ accepted delivery { version } errors { code message } } }"
)
TRACK = (
    "subscription Track($orderId: ID!) { courierUpdates(orderId: $orderId) "
    "{ status position { lat lng } etaSeconds courier { name } version } }"
)
STORE_MAP = (
    "subscription($s: ID!) { storeDeliveryFeed(storeId: $s) "
    "{ deliveryId status position { lat lng } etaSeconds version } }"
)
PAY = (
    "mutation Pay($orderId: ID!) "
    "{ payOrder(orderId: $orderId) { order { id status } errors { code } } }"
)
MOVE = (
    "mutation($input: UpdateOrderStatusInput!) "
    "{ updateOrderStatus(input: $input) { order { status } errors { code } } }"
)
ORDER_DELIVERY = "query($id: ID!) { order(id: $id) { delivery { id status provider } } }"
DELIVERY_STATUS = (
    "mutation($input: ReportDeliveryStatusInput!) "
    "{ reportDeliveryStatus(input: $input) { delivery { status version } errors { code } } }"
)


@dataclass(frozen=True)
class Frame:
    """The servers' clock: ``start`` at monotonic ``anchor``, running at the real rate."""

    start: datetime
    anchor: float

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t - self.anchor)

    def now(self) -> datetime:
        return self.at(time.monotonic())


# --- the subscriber process (--worker) -------------------------------------------------------


class Followers:
    """A subscriber process's subscribers: a member following one order's courier, or a
    manager's map following every delivery of a store, each on its own connection."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]
        self.subs: list[dict[str, Any]] = spec["subs"]
        self.ids: dict[str, int] = spec["ids"]  # delivery global id -> id
        self.gate = asyncio.Semaphore(spec["concurrency"])
        self.subscriptions = Subscriptions()
        self.problems = self.subscriptions.problems
        count = len(self.subs)
        self.got: list[list[float]] = [[] for _ in range(count)]  # d, v, t, d, v, t, ...
        self.latest: list[dict[int, int]] = [{} for _ in range(count)]
        self.follows = [s["ds"] if s["k"] == "m" else [s["d"]] for s in self.subs]
        self.waiting = [set(f) for f in self.follows]  # deliveries not heard of yet
        self.ready = [asyncio.Event() for _ in range(count)]

    def on_next(self, j: int, at: float, message: dict[str, Any]) -> None:
        payload = message.get("payload") or {}
        data = payload.get("data")
        if data is None or "errors" in payload:
            self.problems.append(f"errors: {str(payload.get('errors'))[:200]}")
            return
        sub = self.subs[j]
        if sub["k"] == "c":
            update = data["courierUpdates"]
            d = sub["d"]
        else:
            update = data["storeDeliveryFeed"]
            d = self.ids.get(update["deliveryId"], 0)
            if not d:
                self.problems.append(f"a delivery nobody set up: {update['deliveryId']}")
                return
        v = int(update["version"])
        self.got[j].extend((d, v, at))
        if self.latest[j].get(d, 0) < v:
            self.latest[j][d] = v
        left = self.waiting[j]
        if left:
            left.discard(d)
            if not left:
                self.ready[j].set()

    async def open_one(self, j: int) -> None:
        sub = self.subs[j]
        async with self.gate:
            ws = await self.subscriptions.open(self.url, sub["auth"])
            self.subscriptions.read(ws, functools.partial(self.on_next, j))
            if sub["k"] == "c":
                query, variables = TRACK, {"orderId": sub["order"]}
            else:
                query, variables = STORE_MAP, {"s": sub["store"]}
            await ws.send(subscribe_message("1", query, variables))
            await asyncio.wait_for(self.ready[j].wait(), READY_TIMEOUT_S)

    async def open_all(self, _command: dict[str, Any]) -> dict[str, Any]:
        """``open``: every subscriber, each waiting for its initial state (a courier
        subscriber its delivery, a map subscriber every delivery of its store)."""
        started = time.monotonic()
        opened = await asyncio.gather(
            *(self.open_one(j) for j in range(len(self.subs))), return_exceptions=True
        )
        failures = [repr(r) for r in opened if isinstance(r, BaseException)]
        return {
            "open": len(self.subs) - len(failures),
            "failed": len(failures),
            "first_failure": failures[0] if failures else None,
            "connect_s": round(time.monotonic() - started, 3),
            "problems": self.problems[:5],
            **cpu_reply(),
        }

    def unsatisfied(self, finals: dict[int, int]) -> int:
        """(subscriber, delivery) pairs still without the delivery's last version."""
        left = 0
        for heard, follows in zip(self.latest, self.follows, strict=True):
            for d in follows:
                final = finals.get(d)
                if final is not None and heard.get(d, 0) < final:
                    left += 1
        return left

    async def drain(self, command: dict[str, Any]) -> dict[str, Any]:
        """``drain`` (finals, timeout, since): wait until every subscriber heard the last
        version of each delivery it follows, then hand over every receipt since ``since``."""
        finals = {int(k): int(v) for k, v in command["finals"].items()}
        started = time.monotonic()
        deadline = started + float(command["timeout"])
        left = self.unsatisfied(finals)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            left = self.unsatisfied(finals)
        since = float(command["since"])
        kept: list[list[float]] = []
        for receipts in self.got:
            mine: list[float] = []
            for n in range(0, len(receipts), 3):
                if receipts[n + 2] >= since:
                    mine += receipts[n : n + 3]
            kept.append(mine)
        return {
            "unsatisfied": left,
            "drain_s": round(time.monotonic() - started, 3),
            "got": kept,
            "problems": self.problems[:5],
            "problem_count": len(self.problems),
            **cpu_reply(),
        }


async def worker() -> None:
    """A subscriber process: the spec on the first stdin line (too long for a command
    line), then one JSON command a line (``open``, ``cpu``, ``drain``, ``close``), each
    answered with one line."""
    commands = await worker_commands()
    followers = Followers(orjson.loads(await commands.readline()))
    handlers = {"open": followers.open_all, "drain": followers.drain}
    await answer_commands(commands, handlers, followers.subscriptions.close)


# --- the deliveries ---------------------------------------------------------------------------


@dataclass
class Trip:
    """One delivery in progress and its courier, who moves toward the customer."""

    delivery_id: int
    delivery_gid: str
    order_id: int
    order_gid: str
    store_id: int
    store_gid: str
    member_id: int
    origin: GeoPoint
    destination: GeoPoint
    started: float | None = None  # monotonic time of the first report: at the store then
    last_answer: float = 0.0

    def position(self, t: float, speed: float) -> tuple[float, float]:
        if self.started is None:
            self.started = t
        total = distance_m(self.origin, self.destination)
        share = 1.0 if total <= 0 else min(1.0, speed * (t - self.started) / total)
        lat = self.origin.lat + (self.destination.lat - self.origin.lat) * share
        lng = self.origin.lng + (self.destination.lng - self.origin.lng) * share
        return round(lat, 6), round(lng, 6)


@dataclass
class Setup:
    trips: list[Trip]
    store_ids: list[int]
    member_tokens: dict[int, str]  # member id -> token (minted again per configuration)
    manager_tokens: dict[int, str]  # store id -> STORE_MANAGER token
    partner_key: str
    seconds: float
    requests: int


# Complexity: The scenario's set-up, one step after another.
async def set_up(  # noqa: C901
    args: argparse.Namespace,
    demo: Demo,
    engine: AsyncEngine,
    settings: Settings,
    server: Server,
    partner_key: str,
) -> Setup:
    """--deliveries orders placed, paid, made READY (dispatched to DADA) and DELIVERING."""
    started = time.monotonic()
    async with pooled_client(args.setup_concurrency) as client:
        chain = await read_chain(client, server.base_url, engine)
        async with engine.connect() as conn:
            providers = {
                int(r.id): str(r.delivery_provider)
                for r in await conn.execute(
                    sa.select(stores_table.c.id, stores_table.c.delivery_provider)
                )
            }
        stores = sorted(
            (s for s in chain.stores if providers.get(s.id) == PROVIDER), key=lambda s: s.id
        )
        if args.stores:
            stores = stores[: args.stores]
        if not stores:
            raise BenchError(f"no open store dispatches to {PROVIDER}")
        narrow = [s.id for s in stores if s.radius_m < DESTINATION_M[0] / 0.9]
        if narrow:
            raise BenchError(f"stores {narrow} deliver less than {DESTINATION_M[0] / 0.9:.0f} m")
        log(
            f"{len(stores)} open {PROVIDER} stores {[s.id for s in stores]}, "
            f"{len(chain.delivery_untracked)} made-to-order DELIVERY SKUs"
        )
        member_ids = await insert_members(
            engine, f"courier-{uuid.uuid4().hex[:6]}", args.deliveries
        )
        tokens = {m: issue_member_token(settings, m) for m in member_ids}
        managers: dict[int, str] = {}
        for store in stores:
            viewer = await identity_db.ensure_staff(
                engine,
                username=f"bench-map-{store.id}",
                role=StaffRole.STORE_MANAGER,
                store_ids=[store.id],
            )
            managers[store.id] = issue_staff_token(settings, viewer)
        rng = random.Random(f"{args.seed}-couriers")
        plan = []
        for i in range(args.deliveries):
            store = stores[i % len(stores)]
            high = min(DESTINATION_M[1], store.radius_m * 0.9)
            point = point_between(rng, store.location, DESTINATION_M[0], high)
            plan.append((store, point, rng.choice(chain.delivery_untracked)))
        gate = asyncio.Semaphore(args.setup_concurrency)
        partner = {"x-api-key": partner_key}
        requests = 0
        done = 0

        async def ask(query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
            nonlocal requests
            requests += 1
            return await graphql(client, server.base_url, query, variables, headers)

        async def one(i: int) -> Trip:
            nonlocal done, requests
            store, point, sku = plan[i]
            member = member_ids[i]
            me = {"authorization": f"Bearer {tokens[member]}"}
            manager = {"authorization": f"Bearer {managers[store.id]}"}
            async with gate:
                spec = OrderSpec("DELIVERY", ((sku, 1),), store_id=store.id, point=point)
                requests += 1
                response = await client.post(
                    f"{server.base_url}/graphql",
                    content=place_order_body(spec, i),
                    headers={**me, "content-type": "application/json"},
                )
                answer = orjson.loads(response.content)
                placed = (answer.get("data") or {}).get("placeOrder") or {}
                if response.status_code != 200 or placed.get("errors") or not placed.get("order"):
                    raise BenchError(f"placeOrder {i} failed: HTTP {response.status_code} {answer}")
                order_gid = placed["order"]["id"]
                paid = (await ask(PAY, {"orderId": order_gid}, me))["payOrder"]
                if paid["errors"]:
                    raise BenchError(f"payOrder {i} refused: {paid['errors']}")
                for status in ("ACCEPTED", "PREPARING", "READY"):
                    moved = (
                        await ask(
                            MOVE, {"input": {"orderId": order_gid, "status": status}}, manager
                        )
                    )["updateOrderStatus"]
                    if moved["errors"]:
                        raise BenchError(f"order {i} to {status} refused: {moved['errors']}")
                found = (await ask(ORDER_DELIVERY, {"id": order_gid}, me))["order"]["delivery"]
                if found is None or found["provider"] != PROVIDER or found["status"] != "ASSIGNED":
                    raise BenchError(f"order {i}: not dispatched to a {PROVIDER} courier: {found}")
                for status in ("PICKED_UP", "DELIVERING"):
                    went = (
                        await ask(
                            DELIVERY_STATUS,
                            {"input": {"deliveryId": found["id"], "status": status}},
                            partner,
                        )
                    )["reportDeliveryStatus"]
                    if went["errors"] or went["delivery"]["status"] != status:
                        raise BenchError(f"delivery of order {i} to {status}: {went}")
            done += 1
            if done % 100 == 0:
                log(f"setup: {done}/{args.deliveries} deliveries on their way")
            return Trip(
                delivery_id=decode_id(found["id"], "Delivery", ["id"]),
                delivery_gid=found["id"],
                order_id=decode_id(order_gid, "Order", ["id"]),
                order_gid=order_gid,
                store_id=store.id,
                store_gid=global_id("Store", store.id),
                member_id=member,
                origin=store.location,
                destination=point,
            )

        trips = list(await asyncio.gather(*(one(i) for i in range(args.deliveries))))
    seconds = time.monotonic() - started
    log(f"setup: {len(trips)} deliveries in {seconds:.1f}s ({requests} requests)")
    return Setup(
        trips, [s.id for s in stores], tokens, managers, partner_key, round(seconds, 1), requests
    )


# --- the couriers ----------------------------------------------------------------------------


@dataclass
class Report:
    delivery: int
    slot: float  # when it was due
    sent: float  # just before the request was written
    answered: float
    version: int | None  # the delivery's version after it, when accepted
    code: str | None  # why not
    statements: int | None


class Reporter:
    """Every courier reports every ``interval`` seconds, at most one report in flight each,
    over ``connections`` keep-alive connections shared by all (spread over ``ports`` in turn,
    as a balancer would spread them)."""

    def __init__(
        self,
        trips: list[Trip],
        ports: list[int],
        headers: dict[str, str],
        frame: Frame,
        args: argparse.Namespace,
    ) -> None:
        self.trips = trips
        self.ports = ports
        self.headers = headers
        self.frame = frame
        self.interval = args.interval
        self.speed = args.speed
        self.connections = args.report_connections
        self.reports: list[Report] = []
        self.slots_skipped = 0
        self.problems: list[str] = []
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: asyncio.Queue[LeanConnection] = asyncio.Queue()

    def start(self) -> None:
        for k in range(self.connections):
            port = self.ports[k % len(self.ports)]
            self._pool.put_nowait(LeanConnection(LOOPBACK, port, self.headers))
        begin = time.monotonic() + 0.2
        count = len(self.trips)
        self._tasks = [
            asyncio.create_task(self._courier(trip, begin + self.interval * k / count))
            for k, trip in enumerate(self.trips)
        ]

    async def stop(self) -> None:
        self.stopping = True
        await asyncio.gather(*self._tasks)
        while not self._pool.empty():
            await self._pool.get_nowait().aclose()

    def body(self, trip: Trip, t: float) -> bytes:
        lat, lng = trip.position(t, self.speed)
        position = {
            "deliveryId": trip.delivery_gid,
            "lat": lat,
            "lng": lng,
            "recordedAt": self.frame.at(t).isoformat(),
        }
        return graphql_body(REPORT, {"input": position}, "Report")

    async def _send(self, trip: Trip) -> tuple[float, float, int, bytes, bytes]:
        conn = await self._pool.get()
        try:
            for attempt in (1, 2):
                body = self.body(trip, time.monotonic())
                sent = time.monotonic()
                try:
                    status, head, data = await conn.post("/graphql", body)
                except (OSError, asyncio.IncompleteReadError):
                    # A keep-alive connection the server closed meanwhile: once more, anew.
                    await conn.aclose()
                    conn = LeanConnection(LOOPBACK, conn.port, self.headers)
                    if attempt == 2:
                        raise
                else:
                    return sent, time.monotonic(), status, head, data
            raise AssertionError("unreachable")
        finally:
            self._pool.put_nowait(conn)

    async def _courier(self, trip: Trip, slot: float) -> None:
        while True:
            now = time.monotonic()
            if slot > now:
                await asyncio.sleep(slot - now)
            if self.stopping:
                return
            earliest = trip.last_answer + REPORT_GAP_S
            if time.monotonic() < earliest:
                await asyncio.sleep(earliest - time.monotonic())
            try:
                sent, answered, status, head, data = await self._send(trip)
            except (OSError, asyncio.IncompleteReadError, BenchError) as exc:
                at = time.monotonic()
                self.reports.append(
                    Report(trip.delivery_id, slot, at, at, None, "CONNECTION", None)
                )
                self.problems.append(f"{type(exc).__name__}: {exc}")
                trip.last_answer = at
            else:
                trip.last_answer = answered
                version, code = None, None
                answer = orjson.loads(data)
                if status != 200 or "errors" in answer:
                    code = f"HTTP_{status}" if status != 200 else "GRAPHQL_ERRORS"
                    self.problems.append(f"{code}: {data[:200]!r}")
                else:
                    payload = answer["data"]["reportCourierPosition"]
                    if payload["errors"]:
                        code = "+".join(e["code"] for e in payload["errors"])
                        if len(self.problems) < 20:
                            self.problems.append(f"{code}: {payload['errors'][0]['message']}")
                    elif not payload["accepted"]:
                        code = "STALE"
                    else:
                        version = int(payload["delivery"]["version"])
                self.reports.append(
                    Report(
                        trip.delivery_id,
                        slot,
                        sent,
                        answered,
                        version,
                        code,
                        statement_count(head),
                    )
                )
            slot += self.interval
            now = time.monotonic()
            if slot < now:
                missed = math.ceil((now - slot) / self.interval)
                self.slots_skipped += missed
                slot += missed * self.interval

    def finals(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for r in self.reports:
            if r.version is not None and last.get(r.delivery, 0) < r.version:
                last[r.delivery] = r.version
        return last


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    cpu: CpuSnapshot  # the servers, this process, PostgreSQL, the machine
    workers: float  # CPU seconds of the subscriber processes
    sessions: int | None


@dataclass
class Window:
    attempt: int
    begin: Snapshot
    end: Snapshot
    slots_skipped: int
    server_rss_begin_mb: dict[str, float | None]
    server_rss_end_mb: dict[str, float | None]


@dataclass
class Target:
    name: str
    servers: list[Server]
    headers: dict[str, str]  # of the reports
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sub:
    kind: str  # "c": courierUpdates of an order; "m": storeDeliveryFeed of a store
    key: int  # the order or the store
    follows: list[int]  # delivery ids
    proc: int  # subscriber process


def plan_subscribers(setup: Setup, args: argparse.Namespace) -> list[Sub]:
    """Each order's courier subscriber, then each store's map subscribers; round-robin over
    the subscriber processes, so with two servers each store has half its maps on each."""
    by_store: dict[int, list[int]] = {}
    for trip in setup.trips:
        by_store.setdefault(trip.store_id, []).append(trip.delivery_id)
    subs = [Sub("c", t.order_id, [t.delivery_id], 0) for t in setup.trips]
    for store in setup.store_ids:
        subs += [Sub("m", store, by_store.get(store, []), 0) for _ in range(args.map_subscribers)]
    for n, sub in enumerate(subs):
        sub.proc = n % args.client_procs
    return subs


def worker_specs(
    subs: list[Sub],
    setup: Setup,
    settings: Settings,
    servers: list[Server],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    trips = {t.order_id: t for t in setup.trips}
    # Fresh member tokens: they live 30 minutes, and a run may take longer.
    members = {t.member_id: issue_member_token(settings, t.member_id) for t in setup.trips}
    ids = {t.delivery_gid: t.delivery_id for t in setup.trips}
    specs: list[dict[str, Any]] = []
    for k in range(args.client_procs):
        server = servers[k % len(servers)]
        mine: list[dict[str, Any]] = []
        for sub in subs:
            if sub.proc != k:
                continue
            if sub.kind == "c":
                trip = trips[sub.key]
                token = members[trip.member_id]
                mine.append(
                    {
                        "k": "c",
                        "order": trip.order_gid,
                        "d": trip.delivery_id,
                        "auth": {"authorization": f"Bearer {token}"},
                    }
                )
            else:
                token = setup.manager_tokens[sub.key]
                mine.append(
                    {
                        "k": "m",
                        "store": global_id("Store", sub.key),
                        "ds": sub.follows,
                        "auth": {"authorization": f"Bearer {token}"},
                    }
                )
        specs.append(
            {
                "url": server.ws_url,
                "concurrency": args.connect_concurrency,
                "subs": mine,
                "ids": ids,
            }
        )
    return specs


class Run:
    """One target's servers, subscriber processes and database: CPU snapshots."""

    def __init__(self, target: Target, engine: AsyncEngine, postgres: bool) -> None:
        self.target = target
        self.engine = engine
        self.postgres = postgres
        self.subscribers: WorkerPool | None = None

    async def snapshot(self) -> Snapshot:
        workers = 0.0 if self.subscribers is None else await self.subscribers.cpu_s()
        return Snapshot(
            at=time.monotonic(),
            cpu=snapshot(
                [s.pid for s in self.target.servers], ("postgres",) if self.postgres else ()
            ),
            workers=workers,
            sessions=await pg_sessions(self.engine) if self.postgres else None,
        )

    def rss(self) -> dict[str, float | None]:
        return {s.name: rss_mb(s.pid) for s in self.target.servers}

    async def window(self, seconds: float, reporter: Reporter, attempt: int = 1) -> Window:
        rss_begin = self.rss()
        begin = await self.snapshot()
        skipped0 = reporter.slots_skipped
        await asyncio.sleep(max(0.0, begin.at + seconds - time.monotonic()))
        end = await self.snapshot()
        skipped = reporter.slots_skipped - skipped0
        return Window(attempt, begin, end, skipped, rss_begin, self.rss())


def cpu_figures(w: Window, servers: list[Server]) -> Result:
    elapsed = w.end.at - w.begin.at
    cpu = usage(w.begin.cpu, w.end.cpu)
    workers = w.end.workers - w.begin.workers
    used = {s.name: u or 0.0 for s, u in zip(servers, cpu.servers_s, strict=True)}
    return {
        "seconds": round(elapsed, 3),
        "server_cpu_s": used,
        "server_cpu_pct": {k: pct_of_core(v, elapsed) for k, v in used.items()},
        "client_cpu_pct": pct_of_core(cpu.client_s + workers, elapsed),
        "database_cpu_pct": pct_of_core(cpu.database_s, elapsed),
        "database_sessions_opened": (
            w.end.sessions - w.begin.sessions
            if w.begin.sessions is not None and w.end.sessions is not None
            else None
        ),
        "other_cpu_pct": pct_of_core(cpu.other_s(elapsed, extra_known_s=workers), elapsed),
    }


def report_figures(reports: list[Report], w: Window, offered: float) -> dict[str, Any]:
    """The reports sent inside the window."""
    inside = [r for r in reports if w.begin.at <= r.sent < w.end.at]
    elapsed = w.end.at - w.begin.at
    refused: dict[str, int] = {}
    for r in inside:
        if r.code is not None:
            refused[r.code] = refused.get(r.code, 0) + 1
    answers = [r.answered - r.sent for r in inside]
    lags = [r.sent - r.slot for r in inside]
    statements = [r.statements for r in inside if r.version is not None and r.statements]
    return {
        "offered_reports_per_s": round(offered, 1),
        "reports": len(inside),
        "reports_per_s": round(len(inside) / elapsed, 1),
        "accepted": sum(1 for r in inside if r.version is not None),
        "refused": dict(sorted(refused.items())),
        "slots_skipped": w.slots_skipped,
        "answer_p50_ms": pct_ms(answers, 50),
        "answer_p99_ms": pct_ms(answers, 99),
        "send_lag_p50_ms": pct_ms(lags, 50),
        "send_lag_p99_ms": pct_ms(lags, 99),
        "sql_statements_per_report": statistics.median_low(statements) if statements else None,
    }


def push_figures(
    reports: list[Report],
    w: Window,
    subs: list[Sub],
    receipts: list[dict[tuple[int, int], float]],
    newest: list[dict[int, int]],
    server_of_proc: list[str],
) -> dict[str, Any]:
    """Every (report accepted inside the window, subscriber following its delivery) pair."""
    following: dict[int, list[int]] = {}
    for n, sub in enumerate(subs):
        for d in sub.follows:
            following.setdefault(d, []).append(n)
    from_send: dict[str, list[float]] = {"c": [], "m": []}
    from_answer: list[float] = []
    by_server: dict[str, list[float]] = {name: [] for name in dict.fromkeys(server_of_proc)}
    expected = skipped = never = 0
    for r in reports:
        if r.version is None or not w.begin.at <= r.sent < w.end.at:
            continue
        key = (r.delivery, r.version)
        for n in following.get(r.delivery, ()):
            expected += 1
            at = receipts[n].get(key)
            if at is None:
                if newest[n].get(r.delivery, 0) > r.version:
                    skipped += 1
                else:
                    never += 1
                continue
            latency = at - r.sent
            from_send[subs[n].kind].append(latency)
            from_answer.append(at - r.answered)
            by_server[server_of_proc[subs[n].proc]].append(latency)
    received = len(from_send["c"]) + len(from_send["m"])
    pushes_in_window = sum(
        1 for rec in receipts for at in rec.values() if w.begin.at <= at < w.end.at
    )
    result: dict[str, Any] = {
        "pushes_expected": expected,
        "pushes_received": received,
        "skipped": skipped,
        "never_delivered": never,
        **latency_figures(from_send["c"] + from_send["m"]),
        "courier": latency_figures(from_send["c"]),
        "map": latency_figures(from_send["m"]),
        "from_response": latency_figures(from_answer),
        "pushes_in_window": pushes_in_window,
        "pushes_per_s": round(pushes_in_window / (w.end.at - w.begin.at), 1),
    }
    if len(by_server) > 1:
        result["by_process"] = {name: latency_figures(v) for name, v in by_server.items()}
    return result


async def run_target(
    target: Target,
    setup: Setup,
    settings: Settings,
    engine: AsyncEngine,
    frame: Frame,
    args: argparse.Namespace,
    postgres: bool,
) -> Result:
    """Reports only; subscribers connect; reports with fan-out; drain; the figures."""
    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
    out: Result = {
        "processes": len(target.servers),
        **target.notes,
        "machine_busy_before_pct": busy_pct(busy),
    }
    run = Run(target, engine, postgres)
    offered = len(setup.trips) / args.interval
    # Reports through the first process, or through all of them in turn (``_spread``).
    spread = target.name.endswith("_spread")
    ports = [s.port for s in (target.servers if spread else target.servers[:1])]

    # 1. Reports alone: what a report costs the server without anybody listening.
    reporter = Reporter(setup.trips, ports, target.headers, frame, args)
    reporter.start()
    await asyncio.sleep(REPORT_WARMUP_S)
    calibration = await run.window(args.calibrate, reporter)
    await reporter.stop()
    alone = {
        **cpu_figures(calibration, target.servers),
        **report_figures(reporter.reports, calibration, offered),
    }
    alone_cpu = sum(alone["server_cpu_s"].values())
    alone["server_cpu_ms_per_report"] = (
        round(1000 * alone_cpu / alone["reports"], 3) if alone["reports"] else None
    )
    out["reports_only"] = alone
    problems = list(reporter.problems)
    log(f"{target.name}: reports only: {json_line(alone)}")
    rss_before = run.rss()

    # 2. The subscribers connect.
    subs = plan_subscribers(setup, args)
    run.subscribers = WorkerPool()
    names = [target.servers[k % len(target.servers)].name for k in range(args.client_procs)]
    pids = [s.pid for s in target.servers]
    try:
        specs = worker_specs(subs, setup, settings, target.servers, args)
        for spec, name in zip(specs, names, strict=True):
            await run.subscribers.spawn([str(THIS), "--worker"], name, first=spec)
        before = snapshot(pids)
        opened = await run.subscribers.ask({"cmd": "open"}, READY_TIMEOUT_S + 60)
        connecting = usage(before, snapshot(pids))
        failed = sum(r["failed"] for r in opened)
        if failed or sum(r["open"] for r in opened) != len(subs):
            first = next((r["first_failure"] for r in opened if r["first_failure"]), None)
            raise BenchError(f"{target.name}: {failed} of {len(subs)} subscribers failed: {first}")
        connect_s = max(r["connect_s"] for r in opened)
        out["subscribers"] = {
            "courier": sum(1 for s in subs if s.kind == "c"),
            "map": sum(1 for s in subs if s.kind == "m"),
            "connect_s": connect_s,
            "server_cpu_ms_per_subscriber": round(
                1000 * sum(u or 0.0 for u in connecting.servers_s) / len(subs), 2
            ),
        }
        log(f"{target.name}: {len(subs)} subscribers connected in {connect_s}s")
        rss_connected = run.rss()

        # 3. Reports with fan-out: warm-up, then measured windows.
        reporter = Reporter(setup.trips, ports, target.headers, frame, args)
        reporter.start()
        await asyncio.sleep(args.warmup)
        windows: list[Window] = []

        async def measure_window(attempt: int) -> Window:
            windows.append(await run.window(args.seconds, reporter, attempt))
            other = cpu_figures(windows[-1], target.servers)["other_cpu_pct"]
            log(f"{target.name}: window {attempt}: other work {other}% of a core")
            return windows[-1]

        best, attempts = await least_disturbed(
            measure_window,
            retries=args.retries,
            other_pct=lambda w: cpu_figures(w, target.servers)["other_cpu_pct"],
            label=target.name,
        )
        await reporter.stop()
        problems += reporter.problems

        # 4. Drain, then the receipts.
        replies = await run.subscribers.ask(
            {
                "cmd": "drain",
                "finals": {str(d): v for d, v in reporter.finals().items()},
                "timeout": args.drain,
                "since": windows[0].begin.at,
            },
            args.drain + 120,
        )
    finally:
        await run.subscribers.close()
    receipts: list[dict[tuple[int, int], float]] = [{} for _ in subs]
    newest: list[dict[int, int]] = [{} for _ in subs]
    local = [0] * args.client_procs
    order: list[tuple[int, int]] = []  # (process, index there) of each subscriber
    for sub in subs:
        order.append((sub.proc, local[sub.proc]))
        local[sub.proc] += 1
    for n, (k, j) in enumerate(order):
        flat = replies[k]["got"][j]
        mine, top = receipts[n], newest[n]
        for i in range(0, len(flat), 3):
            d, v, at = int(flat[i]), int(flat[i + 1]), flat[i + 2]
            mine.setdefault((d, v), at)
            if top.get(d, 0) < v:
                top[d] = v
    worker_problems = [p for r in replies for p in r["problems"]]

    def figures(w: Window) -> Result:
        cpu = cpu_figures(w, target.servers)
        got = {
            **cpu,
            **report_figures(reporter.reports, w, offered),
            **push_figures(reporter.reports, w, subs, receipts, newest, names),
        }
        total = sum(cpu["server_cpu_s"].values())
        got["server_cpu_ms_per_report"] = (
            round(1000 * total / got["reports"], 3) if got["reports"] else None
        )
        got["server_cpu_ms_per_push"] = (
            round(1000 * total / got["pushes_in_window"], 3) if got["pushes_in_window"] else None
        )
        net = total - (alone["server_cpu_ms_per_report"] or 0) / 1000 * got["reports"]
        got["push_cpu_ms_net"] = (
            round(1000 * net / got["pushes_in_window"], 3) if got["pushes_in_window"] else None
        )
        got["server_rss_begin_mb"] = w.server_rss_begin_mb
        got["server_rss_end_mb"] = w.server_rss_end_mb
        return got

    out["measured"] = {**figures(best), "attempt": best.attempt, "attempts": attempts}
    out["final_missing"] = sum(r["unsatisfied"] for r in replies)
    out["drain_s"] = max(r["drain_s"] for r in replies)
    out["server_rss_mb"] = {
        s.name: {
            "before_subscribers": rss_before[s.name],
            "connected": rss_connected[s.name],
            "peak": rss_mb(s.pid, "VmHWM"),
        }
        for s in target.servers
    }
    out["report_problems"] = sorted(set(problems))[:5]
    out["subscriber_problems"] = worker_problems[:5]
    out["subscriber_problem_count"] = sum(r["problem_count"] for r in replies)
    out["server_log_problems"] = [p for s in target.servers for p in s.log_problems()][:5]
    out["server_log_warnings"] = [
        w for s in target.servers for w in s.log_warnings() if "accepted delivery" not in w
    ][:5]
    return out


CONFIGS = ("memory_1proc", "postgres_2proc", "postgres_2proc_spread")


# --- the targets -----------------------------------------------------------------------------


def start_servers(
    name: str, processes: int, demo: Demo, frame: Frame, broker_url: str, workdir: Path
) -> list[Server]:
    """The product's servers of one configuration, each on the frame's clock as it stands."""
    servers = []
    for k in range(processes):
        label = f"{name}-{'AB'[k]}" if processes > 1 else name
        env = {
            **development_couriers(development_payments(development_env(demo.env, frame.now()))),
            "DINEGRAPH_BROKER_URL": broker_url,
        }
        servers.append(start_product(label, env, workdir))
    return servers


async def floor_trips(engine: AsyncEngine, setup: Setup) -> list[dict[str, Any]]:
    """The deliveries as they stand in the product's database, for the floor's /setup."""
    trips = {t.delivery_id: t for t in setup.trips}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(deliveries).where(deliveries.c.id.in_(list(trips))))
        ).all()
    return [
        {
            "id": int(r.id),
            "gid": trips[int(r.id)].delivery_gid,
            "order": trips[int(r.id)].order_gid,
            "store": trips[int(r.id)].store_gid,
            "status": str(r.status),
            "lat": r.lat,
            "lng": r.lng,
            "eta": r.eta_seconds,
            "courier": r.courier_name,
            "version": int(r.version),
            "dest_lat": float(r.destination_lat),
            "dest_lng": float(r.destination_lng),
        }
        for r in rows
    ]


async def measure_floor(
    args: argparse.Namespace,
    setup: Setup,
    settings: Settings,
    engine: AsyncEngine,
    frame: Frame,
    workdir: Path,
) -> Result:
    floor = start_floor("floor", "courier_floor.py", dict(os.environ), workdir)
    with stopping(floor):
        await wait_ready(floor)
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            response = await client.post(
                f"{floor.base_url}/setup", content=orjson.dumps(await floor_trips(engine, setup))
            )
            if response.status_code != 200:
                raise BenchError(f"floor /setup: HTTP {response.status_code}")
        target = Target("floor", [floor], {})
        return await run_target(target, setup, settings, engine, frame, args, False)


async def measure(args: argparse.Namespace, demo: Demo, workdir: Path, out: Out) -> None:
    engine = demo.engine()
    settings = demo.settings()  # the server's secret key, so that the tokens verify
    frame = Frame(coming_noon(), time.monotonic())
    log(f"the servers' clock starts at {frame.start.isoformat()}")
    results: dict[str, Result] = {}
    try:
        partner_key = cli_value(
            [
                "create-api-key",
                "--name",
                "Dada",
                "--scopes",
                "delivery:write",
                "--partner",
                PROVIDER,
            ],
            demo.env,
        )
        (setup_server,) = start_servers("setup", 1, demo, frame, "memory://", workdir)
        with stopping(setup_server):
            await wait_ready(setup_server)
            setup = await set_up(args, demo, engine, settings, setup_server, partner_key)
            setup_problems = setup_server.log_problems()[:5]
        if setup_problems:
            raise BenchError(f"the setup server logged errors: {setup_problems}")
        configs = [("memory_1proc", "memory://", 1)]
        if demo.postgres:
            configs.append(("postgres_2proc", demo.postgres_broker_url(), 2))
            configs.append(("postgres_2proc_spread", demo.postgres_broker_url(), 2))
        configs = [c for c in configs if c[0] in args.configs or not args.configs]
        for name, broker_url, processes in configs:
            servers = start_servers(name, processes, demo, frame, broker_url, workdir)
            with stopping(*servers):
                await asyncio.gather(*(wait_ready(s) for s in servers))
                headers = {"x-api-key": partner_key}
                target = Target(name, servers, headers, {"broker": broker_url.split(":", 1)[0]})
                results[name] = await run_target(
                    target, setup, settings, engine, frame, args, demo.postgres
                )
            log(f"{name}: {json_line(results[name])}")
        floor_figures = await measure_floor(args, setup, settings, engine, frame, workdir)
        log(f"floor: {json_line(floor_figures)}")
    finally:
        await engine.dispose()
    revision = product_revision()
    for name, got in results.items():
        m, f = got["measured"], floor_figures["measured"]
        out(
            {
                "bench": "courier_fanout",
                "config": name,
                "product": revision.label(),
                "dinegraph_root": str(revision.root),
                "database": demo.database,
                "deliveries": len(setup.trips),
                "stores": len(setup.store_ids),
                "map_subscribers_per_store": args.map_subscribers,
                "report_interval_s": args.interval,
                "courier_speed_m_per_s": args.speed,
                "seconds": args.seconds,
                "warmup_s": args.warmup,
                "report_connections": args.report_connections,
                "client_procs": args.client_procs,
                "server_mode": "development",
                "clock_start": frame.start.isoformat(),
                "t0": "just before the reportCourierPosition request is written",
                "setup": {"seconds": setup.seconds, "requests": setup.requests},
                "graphql": got,
                "floor": floor_figures,
                "ratio_p50": ratio(m["p50_ms"], f["p50_ms"], 2),
                "ratio_p99": ratio(m["p99_ms"], f["p99_ms"], 2),
                "ratio_server_cpu_ms_per_push": ratio(
                    m["server_cpu_ms_per_push"], f["server_cpu_ms_per_push"], 2
                ),
                "machine": machine(open_files_limit=open_files_limit()),
            }
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=500, help="in progress (500)")
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between a courier's reports (2)"
    )
    parser.add_argument(
        "--map-subscribers", type=int, default=20, help="storeDeliveryFeed subscribers a store (20)"
    )
    parser.add_argument(
        "--stores", type=int, default=0, help="use the first N DADA stores (0: all of them)"
    )
    parser.add_argument("--speed", type=float, default=5.0, help="courier speed, m/s (5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured reporting (60)")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="reporting before the measurement (10)"
    )
    parser.add_argument(
        "--calibrate", type=float, default=10.0, help="reports-only measurement, seconds (10)"
    )
    parser.add_argument(
        "--drain", type=float, default=30.0, help="wait this long for the last pushes (30)"
    )
    parser.add_argument("--client-procs", type=int, default=2, help="subscriber processes (2)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=50, help="handshakes at once per process (50)"
    )
    parser.add_argument(
        "--report-connections", type=int, default=32, help="HTTP connections of the reports (32)"
    )
    parser.add_argument(
        "--setup-concurrency", type=int, default=16, help="setup requests in flight (16)"
    )
    parser.add_argument(
        "--configs",
        default="",
        help=f"comma-separated, of {', '.join(CONFIGS)} (default: all that apply)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the addresses (1)")
    add_common_options(
        parser,
        retries=1,
        retries_help="measure another window (up to this many) when other work disturbed it",
        database_help="; adds the two-process PostgreSQL-broker configuration",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    check_common_options(parser, args)
    if not 1 <= args.deliveries <= 5_000 or not 0.5 <= args.interval <= 60:
        parser.error("--deliveries must be in [1, 5000] and --interval in [0.5, 60]")
    if not 0 <= args.map_subscribers <= 200 or not 0 < args.speed <= 30:
        parser.error("--map-subscribers must be in [0, 200] and --speed in (0, 30]")
    if not 1 <= args.seconds <= 600 or not 0 <= args.warmup <= 120 or args.calibrate < 1:
        parser.error("--seconds must be in [1, 600], --warmup in [0, 120], --calibrate >= 1")
    if not 1 <= args.client_procs <= 8 or not 1 <= args.report_connections <= 512:
        parser.error("--client-procs must be in [1, 8] and --report-connections in [1, 512]")
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if set(args.configs) - set(CONFIGS):
        parser.error(f"--configs takes {', '.join(CONFIGS)}")
    if any(c.startswith("postgres_") for c in args.configs) and args.database_url is None:
        parser.error("the postgres_ configurations need --database-url")
    return args


def failures(lines: list[Result]) -> list[str]:
    found = []
    for line in lines:
        for path in ("graphql", "floor"):
            got, where = line[path], f"{line['config']}/{path}"
            m = got["measured"]
            if got["server_log_problems"]:
                found.append(f"{where}: the server logged errors: {got['server_log_problems']}")
            if got["final_missing"]:
                found.append(f"{where}: {got['final_missing']} last versions never arrived")
            if m["never_delivered"]:
                found.append(f"{where}: {m['never_delivered']} pushes never delivered")
            if m["refused"] or got["reports_only"]["refused"]:
                found.append(
                    f"{where}: reports refused: {m['refused']} {got['reports_only']['refused']}"
                )
            if got["subscriber_problem_count"]:
                found.append(f"{where}: subscribers saw {got['subscriber_problems']}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        raise_open_files(10_000 + 64)
        asyncio.run(worker())
        return 0

    def measure_in(workdir: Path, out: Out) -> None:
        stores = 14  # the demo chain's
        raise_open_files(args.deliveries + stores * args.map_subscribers + 1024)
        with demo_database(args.database_url, workdir) as demo:
            asyncio.run(measure(args, demo, workdir, out))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
