"""The demo chain as the ordering scenarios see it: its open stores and menus, members
inserted in bulk, placing an order, and the servers' clock."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.tables import members, orders, products, skus
from dinegraph.domain.geo import GeoPoint
from dinegraph.resolvers.ids import decode_id

from .http import graphql
from .ids import global_id
from .report import BenchError
from .stock import STORE_ID

SHOP_TIME_ZONE = ZoneInfo("Asia/Shanghai")
# Raised to a day, so that the unpaid-order sweep cannot give back held stock or quota in
# the middle of a scenario's checks.
PAYMENT_TIMEOUT_MINUTES = 1440
METRES_PER_DEGREE = 111_320.0

STORES = (
    "{ stores(first: 20) { edges { node { id isOpen location { lat lng } "
    "deliveryRadiusMeters } } } }"
)
MENU = (
    "query Menu($storeId: ID!, $channel: Channel!) { menu(storeId: $storeId, channel: $channel) "
    "{ categories { products { skus { id tracked stock { available soldOut } } } } } }"
)
PLACE = (
    "mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) "
    "{ order { id status store { id } total { fen } } errors { code message field } } }"
)


# --- the servers' clock --------------------------------------------------------------------


def shop_noon() -> datetime:
    """Today 12:00 in Shanghai: every open demo store is in its hours (10:00-22:00 or so)."""
    return datetime.now(SHOP_TIME_ZONE).replace(hour=12, minute=0, second=0, microsecond=0)


def coming_noon() -> datetime:
    """The coming 12:00 in Shanghai (never a past one: a server of another run on the real
    clock would see the orders' deadlines gone by)."""
    now = datetime.now(SHOP_TIME_ZONE)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon > now else noon + timedelta(days=1)


def development_env(env: dict[str, str], clock_start: datetime) -> dict[str, str]:
    """Serve in DEVELOPMENT mode, the only one that takes ``DINEGRAPH_CLOCK_START``: an
    order needs its store in its opening hours, whatever the hour of the run. That mode
    writes uvicorn's access log; the statement count is asked for, and unpaid orders wait
    a day."""
    return {
        **env,
        "DINEGRAPH_MODE": "development",
        "DINEGRAPH_CLOCK_START": clock_start.isoformat(),
        "DINEGRAPH_SERVER_TIMING": "1",
        "DINEGRAPH_PAYMENT_TIMEOUT_MINUTES": str(PAYMENT_TIMEOUT_MINUTES),
    }


def development_payments(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the WeChat Pay merchant, paying through the development adapter
    (``payOrder`` marks an order paid at once): for a DEVELOPMENT server whose scenario pays
    its orders, since the merchant's API is the closed port. Production refuses it."""
    kept = {k: v for k, v in env.items() if not k.startswith("DINEGRAPH_WECHATPAY_")}
    return {**kept, "DINEGRAPH_DEVELOPMENT_PAYMENTS": "1"}


def development_couriers(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the delivery platforms' settings: a DEVELOPMENT server then carries
    by the development couriers, who name a courier at once, where the real adapters would
    call the closed port and leave every trip waiting. For a scenario that follows trips."""
    platforms = ("DINEGRAPH_DADA_", "DINEGRAPH_SF_", "DINEGRAPH_DELIVERY_PLATFORMS")
    return {k: v for k, v in env.items() if not k.startswith(platforms)}


# --- members -------------------------------------------------------------------------------


async def insert_members(engine: AsyncEngine, tag: str, count: int) -> list[int]:
    """``count`` NORMAL members without a phone, in one bulk INSERT; their ids in order.
    Straight into the database: thousands of sign-ups are not what a scenario measures."""
    rows = [
        {
            "phone": None,
            "wechat_openid": f"bench-{tag}-{n:06d}",
            "nickname": f"券友{n}",
            "tier": "NORMAL",
            "points": 0,
        }
        for n in range(count)
    ]
    async with engine.begin() as conn:
        await conn.execute(members.insert(), rows)
        ids = (
            await conn.scalars(
                sa.select(members.c.id)
                .where(members.c.wechat_openid.like(f"bench-{tag}-%"))
                .order_by(members.c.wechat_openid)
            )
        ).all()
    if len(ids) != count:
        raise BenchError(f"inserted {count} members, found {len(ids)}")
    return [int(i) for i in ids]


# --- the chain, as the API shows it --------------------------------------------------------


@dataclass(frozen=True)
class Store:
    id: int
    location: GeoPoint
    radius_m: int


@dataclass(frozen=True)
class SkuInfo:
    product_id: int
    name: str  # as an order line names it
    specs: dict[str, str]
    price_fen: int


@dataclass
class Chain:
    stores: list[Store]  # open ones
    delivery_skus: list[int]  # on every open store's DELIVERY menu
    tracked: set[int]  # tracked SKUs (a counted level per store)
    hot_sku: int  # a tracked SKU on the first store's PICKUP menu
    pickup_untracked: list[int]  # made-to-order, on sale at the first store for PICKUP
    delivery_untracked: list[int]  # made-to-order on DELIVERY, sold out nowhere
    catalog: dict[int, SkuInfo]  # what a floor writes into order_lines


def line_name(product: str, sku: str) -> str:
    """As the product names an order line (services.checkout._line_name)."""
    return product if not sku or sku == product else f"{product}（{sku}）"


async def menu_skus(
    client: httpx.AsyncClient, base_url: str, store_id: int, channel: str
) -> list[dict[str, Any]]:
    """Every SKU of a store's menu on a channel: id, tracked, stock."""
    variables = {"storeId": global_id("Store", store_id), "channel": channel}
    got = (await graphql(client, base_url, MENU, variables))["menu"]
    if got is None:
        raise BenchError(f"no {channel} menu at store {store_id}")
    return [sku for c in got["categories"] for p in c["products"] for sku in p["skus"]]


def sku_id(sku: dict[str, Any]) -> int:
    return decode_id(sku["id"], "Sku", ["id"])


async def catalog(engine: AsyncEngine, sku_ids: list[int] | None = None) -> dict[int, SkuInfo]:
    """What an order line records of each SKU (all of them, or those given)."""
    query = (
        sa.select(skus.c.id, skus.c.product_id, skus.c.name, skus.c.specs, skus.c.price_fen)
        .add_columns(products.c.name.label("product_name"))
        .join(products, products.c.id == skus.c.product_id)
    )
    if sku_ids is not None:
        query = query.where(skus.c.id.in_(sku_ids))
    async with engine.connect() as conn:
        return {
            int(r.id): SkuInfo(
                int(r.product_id),
                line_name(str(r.product_name), str(r.name)),
                dict(r.specs),
                int(r.price_fen),
            )
            for r in await conn.execute(query)
        }


async def read_chain(client: httpx.AsyncClient, base_url: str, engine: AsyncEngine) -> Chain:
    """The open stores and their menus, through the API as a customer sees them."""
    data = await graphql(client, base_url, STORES)
    stores = [
        Store(
            decode_id(n["id"], "Store", ["id"]),
            GeoPoint(n["location"]["lat"], n["location"]["lng"]),
            int(n["deliveryRadiusMeters"]),
        )
        for n in (e["node"] for e in data["stores"]["edges"])
        if n["isOpen"]
    ]
    if not any(s.id == STORE_ID for s in stores):
        raise BenchError(f"store {STORE_ID} is not open in the demo chain")
    delivery: set[int] | None = None
    sold_out_somewhere: set[int] = set()
    tracked: set[int] = set()
    for store in stores:
        found = await menu_skus(client, base_url, store.id, "DELIVERY")
        ids = {sku_id(s) for s in found}
        delivery = ids if delivery is None else delivery & ids
        for s in found:
            if s["tracked"]:
                tracked.add(sku_id(s))
            elif s["stock"] is not None and s["stock"]["soldOut"]:
                sold_out_somewhere.add(sku_id(s))
    pickup = await menu_skus(client, base_url, STORE_ID, "PICKUP")
    hot = sorted(sku_id(s) for s in pickup if s["tracked"])
    pickup_untracked = sorted(
        sku_id(s) for s in pickup if not s["tracked"] and not (s["stock"] and s["stock"]["soldOut"])
    )
    delivery_skus = sorted(delivery or ())
    delivery_untracked = [s for s in delivery_skus if s not in tracked | sold_out_somewhere]
    if not hot or not pickup_untracked or len(delivery_skus) < 3 or not delivery_untracked:
        raise BenchError("the demo menus lack tracked or made-to-order SKUs for the scenarios")
    return Chain(
        stores,
        delivery_skus,
        tracked,
        hot[0],
        pickup_untracked,
        delivery_untracked,
        await catalog(engine),
    )


# --- orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSpec:
    """One order to place: PICKUP at a store, or DELIVERY to a point (routed when no store
    is given)."""

    channel: str
    lines: tuple[tuple[int, int], ...]  # (SKU id, quantity), distinct SKUs
    store_id: int | None = None
    point: GeoPoint | None = None


def place_order_body(spec: OrderSpec, n: int) -> bytes:
    """The placeOrder request of order ``n``, with a fresh idempotency key."""
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


async def insert_order(
    conn: AsyncConnection,
    *,
    member_id: int,
    store_id: int,
    channel: str,
    subtotal_fen: int,
    now: datetime,
    **columns: Any,
) -> int:
    """A floor's unpaid order row, as the product writes one without discounts or fees;
    ``columns`` are those the scenario's orders carry besides (an address, a campaign)."""
    values = {
        "member_id": member_id,
        "store_id": store_id,
        "channel": channel,
        "status": "PENDING_PAYMENT",
        "idempotency_key": str(uuid.uuid4()),
        "fingerprint": "floor",
        "subtotal_fen": subtotal_fen,
        "tier_discount_fen": 0,
        "coupon_discount_fen": 0,
        "delivery_fee_fen": 0,
        "delivery_discount_fen": 0,
        "packaging_fee_fen": 0,
        "total_fen": subtotal_fen,
        "refunded_fen": 0,
        **columns,
        "note": "",
        "placed_at": now,
        "pay_by": now + timedelta(minutes=PAYMENT_TIMEOUT_MINUTES),
        "updated_at": now,
        "version": 1,
    }
    inserted = await conn.execute(orders.insert().values(**values).returning(orders.c.id))
    return int(inserted.scalar_one())


def offset(centre: GeoPoint, distance_m: float, bearing: float) -> GeoPoint:
    """The point ``distance_m`` from ``centre`` on ``bearing`` (radians from north), on a
    flat map: close enough within a city."""
    dlat = distance_m * math.cos(bearing) / METRES_PER_DEGREE
    dlng = distance_m * math.sin(bearing) / (METRES_PER_DEGREE * math.cos(math.radians(centre.lat)))
    return GeoPoint(round(centre.lat + dlat, 6), round(centre.lng + dlng, 6))


def point_in_disc(rng: random.Random, centre: GeoPoint, radius_m: float) -> GeoPoint:
    """A uniformly random point of the disc of ``radius_m`` around ``centre``."""
    r, bearing = radius_m * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
    return offset(centre, r, bearing)


def point_between(rng: random.Random, centre: GeoPoint, low_m: float, high_m: float) -> GeoPoint:
    """A random point between ``low_m`` and ``high_m`` from ``centre``."""
    r, bearing = rng.uniform(low_m, high_m), rng.uniform(0.0, 2 * math.pi)
    return offset(centre, r, bearing)
