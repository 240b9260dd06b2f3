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
httpx.AsyncClient with that many connections; the ``burst`` of bench/coupon_claims.py), one
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

The processes, scratch-database and CPU helpers are those of bench/stock_contention.py.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import sqlalchemy as sa
from coupon_claims import Attempt, Burst, burst, insert_members, server_warnings
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from stock_contention import (
    ADJUST_STOCK,
    DISTURBED_PCT,
    BenchError,
    Demo,
    Server,
    check_database_url,
    demo_database,
    dinegraph_command,
    global_id,
    graphql,
    last_line,
    log,
    ms,
    percentile,
    pg_sessions,
    proc_status_kb,
    product_version,
    run_cli,
    start_server,
    stop_server,
    terminate_as_exit,
    wait_for_quiet,
    wait_ready,
)

from dinegraph.db.engine import WRITE, create_engine, local_write_lock
from dinegraph.db.tables import (
    order_lines,
    orders,
    products,
    skus,
    stock_ledger,
    stock_levels,
    stock_movements,
)
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings

REQUEST_TIMEOUT_S = 120.0
KEEPALIVE_EXPIRY_S = 2.0
SETUP_CONCURRENCY = 8
HOT_STORE = 1
SPREAD_M = 3000.0
SHOP_TIME_ZONE = ZoneInfo("Asia/Shanghai")
PAYMENT_TIMEOUT_MINUTES = 1440
SCENARIOS = ("routed", "hot_sku")
OK, ERROR = "ok", "error"
ROUTED_REFUSALS = frozenset({"OUT_OF_STOCK", "NO_STORE_CAN_SERVE", "SOLD_OUT"})
HOT_REFUSALS = frozenset({"OUT_OF_STOCK"})

PLACE = (
    "mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) "
    "{ order { id status store { id } total { fen } } errors { code message field } } }"
)
STORES = (
    "{ stores(first: 20) { edges { node { id isOpen location { lat lng } "
    "deliveryRadiusMeters } } } }"
)
MENU = (
    "query Menu($storeId: ID!, $channel: Channel!) { menu(storeId: $storeId, channel: $channel) "
    "{ categories { products { skus { id tracked stock { available soldOut } } } } } }"
)
RESTOCK = (
    "mutation Restock($input: RestockInput!) "
    "{ restock(input: $input) { movement { id } errors { code } } }"
)
# The floor's hold of one line: the product's conditional update (stock.change_level).
TAKE = sa.text(
    "UPDATE stock_levels SET available = available - :q, version = version + 1 "
    "WHERE store_id = :store AND sku_id = :sku AND available - :q >= 0 RETURNING available"
)
STATEMENTS = re.compile(r'db;desc="(\d+) statements"')

Pair = tuple[int, int]  # (store id, SKU id)


# --- the chain, as the API shows it ---------------------------------------------------------


@dataclass(frozen=True)
class Store:
    id: int
    location: GeoPoint
    radius_m: int


@dataclass(frozen=True)
class SkuInfo:
    product_id: int
    name: str
    specs: dict[str, str]
    price_fen: int


@dataclass
class Chain:
    stores: list[Store]  # open ones
    delivery_skus: list[int]  # on every open store's DELIVERY menu
    tracked: set[int]  # tracked SKUs (a counted level per store)
    hot_sku: int  # a tracked SKU on store 1's PICKUP menu
    pickup_untracked: list[int]  # made-to-order, on sale at store 1 for PICKUP (warm-up)
    delivery_untracked: list[int]  # made-to-order on DELIVERY, sold out nowhere (warm-up)
    catalog: dict[int, SkuInfo]  # what the floor writes into order_lines


async def read_chain(client: httpx.AsyncClient, server: Server, engine: AsyncEngine) -> Chain:
    data = await graphql(client, server.base_url, STORES, {}, {})
    stores = [
        Store(
            decode_id(n["id"], "Store", ["id"]),
            GeoPoint(n["location"]["lat"], n["location"]["lng"]),
            int(n["deliveryRadiusMeters"]),
        )
        for n in (e["node"] for e in data["stores"]["edges"])
        if n["isOpen"]
    ]
    if not any(s.id == HOT_STORE for s in stores):
        raise BenchError(f"store {HOT_STORE} is not open in the demo chain")

    async def menu(store_id: int, channel: str) -> list[dict[str, Any]]:
        variables = {"storeId": global_id("Store", store_id), "channel": channel}
        got = (await graphql(client, server.base_url, MENU, variables, {}))["menu"]
        if got is None:
            raise BenchError(f"no {channel} menu at store {store_id}")
        return [sku for c in got["categories"] for p in c["products"] for sku in p["skus"]]

    delivery: set[int] | None = None
    sold_out_somewhere: set[int] = set()
    tracked: set[int] = set()
    for store in stores:
        found = await menu(store.id, "DELIVERY")
        ids = {decode_id(s["id"], "Sku", ["id"]) for s in found}
        delivery = ids if delivery is None else delivery & ids
        for s in found:
            sku_id = decode_id(s["id"], "Sku", ["id"])
            if s["tracked"]:
                tracked.add(sku_id)
            elif s["stock"] is not None and s["stock"]["soldOut"]:
                sold_out_somewhere.add(sku_id)
    pickup = await menu(HOT_STORE, "PICKUP")
    hot = sorted(decode_id(s["id"], "Sku", ["id"]) for s in pickup if s["tracked"])
    pickup_untracked = sorted(
        decode_id(s["id"], "Sku", ["id"])
        for s in pickup
        if not s["tracked"] and not (s["stock"] and s["stock"]["soldOut"])
    )
    delivery_skus = sorted(delivery or ())
    delivery_untracked = [s for s in delivery_skus if s not in tracked | sold_out_somewhere]
    if not hot or not pickup_untracked or len(delivery_skus) < 3 or not delivery_untracked:
        raise BenchError("the demo menus lack tracked or made-to-order SKUs for the scenarios")
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(skus.c.id, skus.c.product_id, skus.c.name, skus.c.specs, skus.c.price_fen)
            .add_columns(products.c.name.label("product_name"))
            .join(products, products.c.id == skus.c.product_id)
        )
        catalog = {
            int(r.id): SkuInfo(
                int(r.product_id),
                line_name(str(r.product_name), str(r.name)),
                dict(r.specs),
                int(r.price_fen),
            )
            for r in rows
        }
    return Chain(
        stores, delivery_skus, tracked, hot[0], pickup_untracked, delivery_untracked, catalog
    )


def line_name(product: str, sku: str) -> str:
    """As the product names an order line (services.checkout._line_name)."""
    return product if not sku or sku == product else f"{product}（{sku}）"


# --- the orders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One order to place: PICKUP at a store, or DELIVERY to a point (routed)."""

    channel: str
    lines: tuple[tuple[int, int], ...]  # (SKU id, quantity), distinct SKUs
    store_id: int | None = None
    point: GeoPoint | None = None


def point_near(rng: random.Random, centre: GeoPoint, radius_m: float) -> GeoPoint:
    """A uniformly random point of the disc of ``radius_m`` around ``centre``."""
    r, bearing = radius_m * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
    dlat = r * math.cos(bearing) / 111_320.0
    dlng = r * math.sin(bearing) / (111_320.0 * math.cos(math.radians(centre.lat)))
    return GeoPoint(round(centre.lat + dlat, 6), round(centre.lng + dlng, 6))


def routed_specs(rng: random.Random, chain: Chain, count: int, pool: list[int]) -> list[Spec]:
    specs = []
    for _ in range(count):
        # Within SPREAD_M of a store, which delivers at least that far (checked in main).
        centre = rng.choice(chain.stores)
        chosen = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        specs.append(
            Spec(
                "DELIVERY",
                tuple((sku, rng.randint(1, 2)) for sku in chosen),
                point=point_near(rng, centre.location, SPREAD_M * 0.999),
            )
        )
    return specs


def pickup_specs(rng: random.Random, count: int, pool: list[int]) -> list[Spec]:
    return [Spec("PICKUP", ((rng.choice(pool), 1),), store_id=HOT_STORE) for _ in range(count)]


def nearest_store(chain: Chain, point: GeoPoint) -> int | None:
    """The nearest open store that delivers to ``point`` (what routing picks, all in stock
    and no kitchen queue: nothing is paid during the bench)."""
    best: tuple[int, int] | None = None
    for store in sorted(chain.stores, key=lambda s: s.id):
        d = distance_m(store.location, point)
        if d <= store.radius_m and (best is None or d < best[0]):
            best = (d, store.id)
    return None if best is None else best[1]


def request_body(spec: Spec, n: int) -> bytes:
    variables: dict[str, Any] = {
        "idempotencyKey": str(uuid.uuid4()),
        "channel": spec.channel,
        "lines": [{"skuId": global_id("Sku", s), "quantity": q} for s, q in spec.lines],
    }
    if spec.store_id is not None:
        variables["storeId"] = global_id("Store", spec.store_id)
    if spec.point is not None:
        variables["address"] = {
            "lat": spec.point.lat,
            "lng": spec.point.lng,
            "detail": f"压测大厦 {n % 40 + 1} 楼",
            "contactName": "压测",
            "contactPhone": f"138{n % 100_000_000:08d}",
        }
    return orjson.dumps(
        {"query": PLACE, "operationName": "Place", "variables": {"input": variables}}
    )


# --- the two ways to place an order ---------------------------------------------------------


@dataclass
class Record:
    """What the clients learnt, per order index: the order and its store, SQL counts."""

    placed: dict[int, tuple[int, int]] = field(default_factory=dict)  # i -> (order, store)
    statements: dict[int, tuple[str, int]] = field(default_factory=dict)  # i -> (outcome, n)


def graphql_attempt(
    client: httpx.AsyncClient,
    server: Server,
    specs: list[Spec],
    tokens: list[str],
    allowed: frozenset[str],
    record: Record,
) -> Attempt:
    """placeOrder through /graphql as member ``i`` (bodies and headers made beforehand)."""
    url = f"{server.base_url}/graphql"
    bodies = [request_body(spec, n) for n, spec in enumerate(specs)]
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
        timing = STATEMENTS.search(response.headers.get("server-timing", ""))
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
        if timing is not None:
            record.statements[i] = (outcome, int(timing.group(1)))
        return outcome, problem

    return attempt


def floor_attempt(
    engine: AsyncEngine,
    specs: list[Spec],
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
        if lock is None:
            return await place(i, store)
        async with lock:
            return await place(i, store)

    async def place(i: int, store: int) -> tuple[str, str | None]:
        spec = specs[i]
        held = sorted((s, q) for s, q in spec.lines if s in chain.tracked)
        conn = await engine.connect()
        try:
            conn = await conn.execution_options(**{WRITE: True})
            await conn.begin()
            balances = []
            for sku, quantity in held:
                available = (
                    await conn.execute(TAKE, {"q": quantity, "store": store, "sku": sku})
                ).scalar_one_or_none()
                if available is None:
                    await conn.rollback()
                    return "OUT_OF_STOCK", None
                balances.append((sku, quantity, int(available)))
            now = server_now()
            subtotal = sum(chain.catalog[s].price_fen * q for s, q in spec.lines)
            point = spec.point
            order_id = (
                await conn.execute(
                    orders.insert()
                    .values(
                        member_id=member_ids[i % len(member_ids)],
                        store_id=store,
                        channel=spec.channel,
                        status="PENDING_PAYMENT",
                        idempotency_key=str(uuid.uuid4()),
                        fingerprint="floor",
                        subtotal_fen=subtotal,
                        tier_discount_fen=0,
                        coupon_discount_fen=0,
                        delivery_fee_fen=0,
                        delivery_discount_fen=0,
                        packaging_fee_fen=0,
                        total_fen=subtotal,
                        refunded_fen=0,
                        address_lat=point.lat if point else None,
                        address_lng=point.lng if point else None,
                        address_detail="floor" if point else None,
                        contact_name="floor" if point else None,
                        contact_phone="13800000000" if point else None,
                        distance_m=None,
                        note="",
                        placed_at=now,
                        pay_by=now + timedelta(minutes=PAYMENT_TIMEOUT_MINUTES),
                        updated_at=now,
                        version=1,
                    )
                    .returning(orders.c.id)
                )
            ).scalar_one()
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
        finally:
            await conn.close()
        record.placed[i] = (int(order_id), store)
        return OK, None

    return attempt


# --- stock: setting levels, reading them, checking a run ------------------------------------


async def tracked_levels(engine: AsyncEngine) -> dict[Pair, int]:
    """(store, SKU) -> available, for every counted level of a tracked SKU."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(stock_levels.c.store_id, stock_levels.c.sku_id, stock_levels.c.available)
            .join(skus, skus.c.id == stock_levels.c.sku_id)
            .where(skus.c.tracked.is_(True), stock_levels.c.available.is_not(None))
        )
        return {(int(r.store_id), int(r.sku_id)): int(r.available) for r in rows}


async def set_levels(
    client: httpx.AsyncClient,
    server: Server,
    token: str,
    engine: AsyncEngine,
    wanted: dict[Pair, int],
) -> int:
    """Bring each (store, SKU) to its level through restock (up) or adjustStock (down), so
    the ledger agrees; returns how many levels had to change."""
    current = await tracked_levels(engine)
    headers = {"authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(pair: Pair, delta: int) -> None:
        store, sku = pair
        ids = {"storeId": global_id("Store", store), "skuId": global_id("Sku", sku)}
        reference = f"bench-{uuid.uuid4().hex[:16]}"
        async with gate:
            while delta:
                step = max(-9_999, min(9_999, delta))
                if step > 0:
                    query, name = RESTOCK, "restock"
                    values = {**ids, "quantity": step, "reference": reference}
                else:
                    query, name = ADJUST_STOCK, "adjustStock"
                    values = {**ids, "delta": step, "reason": "bench reset", "reference": reference}
                data = await graphql(client, server.base_url, query, {"input": values}, headers)
                if data[name]["errors"]:
                    raise BenchError(f"{name} {pair} failed: {data[name]['errors']}")
                delta -= step
                reference = f"bench-{uuid.uuid4().hex[:16]}"

    changes = {p: level - current.get(p, 0) for p, level in wanted.items()}
    changes = {p: d for p, d in changes.items() if d}
    await asyncio.gather(*(one(p, d) for p, d in changes.items()))
    got = await tracked_levels(engine)
    wrong = {p: (got.get(p), level) for p, level in wanted.items() if got.get(p) != level}
    if wrong:
        raise BenchError(f"could not set the levels (got, wanted): {dict(list(wrong.items())[:5])}")
    return len(changes)


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
    specs: list[Spec],
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


def summarise(run: Burst, record: Record, allowed: frozenset[str]) -> dict[str, Any]:
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

    def pct(values: list[float], q: float) -> float | None:
        return ms(percentile(values, q)) if values else None

    def cpu_pct(cpu: float | None) -> float | None:
        return None if cpu is None else round(100 * cpu / run.seconds, 1)

    other_cpu = None
    if run.machine_busy is not None:
        busy = run.machine_busy * len(os.sched_getaffinity(0)) * run.seconds
        known = (run.server_cpu_s or 0) + run.client_cpu_s + (run.database_cpu_s or 0)
        other_cpu = max(0.0, busy - known)

    def statements(accepted_or_refused: bool) -> int | None:
        counts = [n for o, n in record.statements.values() if (o == OK) == accepted_or_refused]
        return statistics.median_low(counts) if counts else None

    return {
        "orders_per_s": round(ok / run.seconds, 1),
        "requests_per_s": round(len(outcomes) / run.seconds, 1),
        "p50_ms": pct(everything, 50),
        "p99_ms": pct(everything, 99),
        "ok": ok,
        "refused": dict(sorted(refused.items())),
        "errors": errors,
        "seconds": round(run.seconds, 3),
        "max_ms": ms(everything[-1]),
        "ok_p50_ms": pct(accepted, 50),
        "ok_p99_ms": pct(accepted, 99),
        "refused_p50_ms": pct(refusals, 50),
        "refused_p99_ms": pct(refusals, 99),
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
        "server_cpu_pct": cpu_pct(run.server_cpu_s),
        "server_cpu_ms_per_request": (
            None if run.server_cpu_s is None else round(1000 * run.server_cpu_s / len(outcomes), 2)
        ),
        "client_cpu_pct": cpu_pct(run.client_cpu_s),
        "database_cpu_pct": cpu_pct(run.database_cpu_s),
        "other_cpu_pct": cpu_pct(other_cpu),
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
    specs: list[Spec],
    warm: list[Spec],
    levels: dict[Pair, int],
    allowed: frozenset[str],
    floor_stores: list[int | None],
) -> tuple[dict[str, Any], Record]:
    """Reset the levels, wait for a quiet machine, warm up, place the orders, check."""
    args, chain = bench.args, bench.chain
    changed = await set_levels(bench.client, bench.product, bench.hq_token, bench.engine, levels)
    log(f"{name}/{target}: {changed} levels reset")

    def attempt_for(these: list[Spec], record: Record, stores: list[int | None]) -> Attempt:
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
    warm_run = await burst(attempt_for(warm, Record(), warm_stores), len(warm), args.concurrency)
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
        server_pid=bench.product.process.pid if target == "graphql" else None,
        postgres=bench.demo.database == "postgresql",
    )
    result = summarise(run, record, allowed)
    result.update(await check_run(bench.engine, chain, specs, before, mark, record))
    result["machine_busy_before_pct"] = None if busy is None else round(100 * busy, 1)
    if sessions is not None:
        result["database_sessions_opened"] = (await pg_sessions(bench.engine) or 0) - sessions
    return result, record


# Complexity: A scenario reads top to bottom as the steps it measures.
async def scenario(bench: Bench, name: str, baseline: dict[Pair, int]) -> dict[str, Any]:  # noqa: C901
    args, chain = bench.args, bench.chain
    rng = random.Random(f"{args.seed}-{name}")
    if name == "routed":
        specs = routed_specs(rng, chain, args.orders, chain.delivery_skus)
        warm = routed_specs(rng, chain, args.concurrency, chain.delivery_untracked)
        levels, allowed = dict(baseline), ROUTED_REFUSALS
        nearest = [nearest_store(chain, s.point) if s.point else None for s in specs]
    else:
        specs = [Spec("PICKUP", ((chain.hot_sku, 1),), store_id=HOT_STORE)] * args.hot_attempts
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
        best: tuple[dict[str, Any], Record] | None = None
        for attempt_no in range(1, args.retries + 2):
            result, record = await one_run(
                bench, name, target, specs, warm, levels, allowed, floor_stores
            )
            result["attempt"] = attempt_no
            log(f"{name}/{target}: {orjson.dumps(result).decode()}")
            if not result["consistent"] or result["errors"]:
                best = (result, record)
                break  # a wrong answer is reported as it is, never measured away
            if best is None or (result["other_cpu_pct"] or 0) < (best[0]["other_cpu_pct"] or 0):
                best = (result, record)
            other = result["other_cpu_pct"]
            if other is None or other <= DISTURBED_PCT or attempt_no > args.retries:
                break
            log(f"{name}/{target}: other work took {other}% of a core meanwhile; again")
        assert best is not None
        result, record = best
        result["attempts"] = attempt_no
        if (result["other_cpu_pct"] or 0) > DISTURBED_PCT:
            log(f"WARNING: {name}/{target}: other work took {result['other_cpu_pct']}% of a core")
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
        "product": product_version(),
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
        "ratio_orders_per_s": (
            round(graphql_["orders_per_s"] / floor["orders_per_s"], 3)
            if floor["orders_per_s"]
            else None
        ),
        "ratio_requests_per_s": round(graphql_["requests_per_s"] / floor["requests_per_s"], 3),
        "ratio_ok_per_s_while_stock": (
            round(graphql_["ok_per_s_while_stock"] / floor["ok_per_s_while_stock"], 3)
            if graphql_["ok_per_s_while_stock"] and floor["ok_per_s_while_stock"]
            else None
        ),
        "ratio_p50": round(graphql_["p50_ms"] / floor["p50_ms"], 2) if floor["p50_ms"] else None,
        "server_peak_rss_mb": round(
            (proc_status_kb(bench.product.process.pid, "VmHWM") or 0) / 1024, 1
        ),
        "server_log_problems": bench.product.log_problems()[:5],
        "server_log_warnings": server_warnings(bench.product)[:5],
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version()},
    }


def print_line(result: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


async def measure(
    args: argparse.Namespace, demo: Demo, product: Server, hq_token: str, settings: Settings
) -> list[dict[str, Any]]:
    await wait_ready(product)
    assert settings.clock_start is not None
    clock_offset = settings.clock_start - datetime.now(UTC)  # as the server's Clock, near enough
    engine = create_engine(settings)
    limits = httpx.Limits(
        max_connections=args.concurrency,
        max_keepalive_connections=args.concurrency,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,  # see bench/coupon_claims.py
    )
    results: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False
        ) as client:
            chain = await read_chain(client, product, engine)
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
                result = await scenario(bench, name, baseline)
                print_line(result)
                results.append(result)
    finally:
        await engine.dispose()
    return results


def shop_noon() -> datetime:
    """Today 12:00 in Shanghai: every open demo store is in its hours (10:00-22:00 or so)."""
    return datetime.now(SHOP_TIME_ZONE).replace(hour=12, minute=0, second=0, microsecond=0)


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
    if not 1 <= args.orders <= 50_000 or not 1 <= args.hot_attempts <= 50_000:
        parser.error("--orders and --hot-attempts must be in [1, 50000]")
    if not 1 <= args.hot_stock <= 9_999 * 10:
        parser.error("--hot-stock must be in [1, 99990]")
    if not 1 <= args.concurrency <= 512 or not 0 <= args.retries <= 5:
        parser.error("--concurrency must be in [1, 512] and --retries in [0, 5]")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        parser.error(f"--scenarios takes {', '.join(SCENARIOS)}")
    check_database_url(parser, args.database_url)
    return args


def failures(results: Iterable[dict[str, Any]]) -> list[str]:
    found = []
    for result in results:
        for target in ("graphql", "floor"):
            got, where = result[target], f"{result['scenario']}/{target}"
            if got["oversold_units"]:
                found.append(f"{where}: OVERSOLD by {got['oversold_units']} units")
            if not got["consistent"]:
                found.append(f"{where}: {got['problems']}")
            if got["errors"]:
                found.append(f"{where}: {got['errors']} failed requests: {got['first_errors']}")
        if result["server_log_problems"]:
            found.append(f"the server logged errors: {result['server_log_problems']}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        workdir = Path(tmp)
        try:
            with demo_database(args.database_url, workdir) as demo:
                hq = last_line(run_cli(["staff-token", "--role", "HQ_ADMIN"], demo.env))
                noon = shop_noon()
                env = {
                    **demo.env,
                    # DINEGRAPH_CLOCK_START is refused in production mode.
                    "DINEGRAPH_MODE": "development",
                    "DINEGRAPH_CLOCK_START": noon.isoformat(),
                    "DINEGRAPH_SERVER_TIMING": "1",
                    "DINEGRAPH_PAYMENT_TIMEOUT_MINUTES": str(PAYMENT_TIMEOUT_MINUTES),
                }
                settings = Settings(
                    database_url=demo.url,
                    secret_key=SecretStr(demo.env["DINEGRAPH_SECRET_KEY"]),  # so tokens verify
                    clock_start=noon,
                )
                product = start_server(
                    "graphql", [*dinegraph_command(), "serve", "--workers", "1"], env, workdir
                )
                try:
                    results = asyncio.run(measure(args, demo, product, hq, settings))
                finally:
                    stop_server(product)
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 1
    problems = failures(results)
    for problem in problems:
        log(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
