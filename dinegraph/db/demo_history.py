"""Order histories for the demo chain: members with taste profiles (川湘辣味, 粤式, 海鲜, 甜口,
清淡养生), home stores, meal periods, weather days, dishes ordered with their usual rice and
drink, and power-law popularity. The demo seed loads a small one, so a demo member's 猜你喜欢
makes sense at once; bench/recommendations.py loads a large one and holds part of it out."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db import demo_data
from dinegraph.db.tables import members, order_lines, orders

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Taste:
    name: str
    categories: frozenset[str]
    tags: frozenset[str]


TASTES = (
    Taste("川湘辣味", frozenset({"hot-xiang"}), frozenset({"辣", "酸辣", "湘味", "湘菜"})),
    Taste(
        "粤式",
        frozenset({"hot-yue", "staple-dimsum", "soup-pot"}),
        frozenset({"粤式", "客家"}),
    ),
    Taste("海鲜", frozenset({"hot-sea"}), frozenset({"海鲜"})),
    Taste("甜口", frozenset({"drink-dessert"}), frozenset({"甜", "酸甜", "甜品", "儿童"})),
    Taste(
        "清淡养生",
        frozenset({"soup-stew", "soup-pot", "hot-veg"}),
        frozenset({"清淡", "滋补", "清润", "素食"}),
    ),
)
MAINS = frozenset({"hot-yue", "hot-xiang", "hot-sea", "hot-veg", "combo"})
RICE = frozenset({"staple-rice", "staple-noodle"})
DRINKS = frozenset({"drink-tea", "drink-dessert"})
SOUPS = frozenset({"soup-stew", "soup-pot"})
DIMSUM = frozenset({"staple-dimsum"})
# A meal's hour (store-local) by period, and how often each period is ordered.
PERIOD_HOURS = {"BREAKFAST": (8, 10), "LUNCH": (11, 13), "DINNER": (17, 20), "LATE": (21, 23)}
PERIOD_SHARE = (("BREAKFAST", 0.1), ("LUNCH", 0.45), ("DINNER", 0.38), ("LATE", 0.07))
WEATHER_SHARE = (("CLEAR", 0.45), ("RAIN", 0.3), ("HOT", 0.15), ("COLD", 0.1))


@dataclass(frozen=True, slots=True)
class HistoryMember:
    key: str  # openid of the member row
    nickname: str
    tastes: tuple[Taste, ...]
    home_store: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryOrder:
    member: int  # index into History.members
    store: str
    channel: str
    placed_at: datetime
    weather: str
    skus: tuple[str, ...]  # SKU codes, one unit each


@dataclass(frozen=True, slots=True)
class History:
    members: tuple[HistoryMember, ...]
    orders: tuple[HistoryOrder, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class _Dish:
    code: str
    sku: str
    category: str
    tags: frozenset[str]
    channels: frozenset[str]


def _dishes() -> list[_Dish]:
    return [
        _Dish(
            p["code"],
            p["skus"][0]["code"],
            p["category"],
            frozenset(p["tags"]),
            frozenset(p["channels"]),
        )
        for p in demo_data.PRODUCTS
        if p["kind"] != "RETAIL" and "旧版" not in p["name"]
    ]


def _fits(dish: _Dish, taste: Taste) -> bool:
    return dish.category in taste.categories or bool(dish.tags & taste.tags)


def _pick(rng: random.Random, dishes: Sequence[_Dish], weights: dict[str, float]) -> _Dish:
    return rng.choices(list(dishes), weights=[weights[d.code] for d in dishes])[0]


def _choice(rng: random.Random, shares: Sequence[tuple[str, float]]) -> str:
    return rng.choices([s for s, _ in shares], weights=[w for _, w in shares])[0]


# Demo members who sign in with these numbers (member-token --phone, or an SMS code in
# development) and find their history at once.
DEMO_MEMBERS = (
    ("13666000001", "爱吃辣的小王", ("川湘辣味",)),
    ("13666000002", "广府阿May", ("粤式", "甜口")),
    ("13666000003", "海鲜控老陈", ("海鲜", "清淡养生")),
)


def generate_history(
    *,
    members: int,
    orders: int,
    now: datetime,
    days: int = 120,
    seed: int = 20261202,
    stores: Sequence[str] | None = None,
    demo_members: bool = False,
    prefix: str = "demo-history",
) -> History:
    """``orders`` orders by ``members`` members over the ``days`` before ``now``."""
    rng = random.Random(seed)
    dishes = _dishes()
    store_codes = list(stores or [s["code"] for s in demo_data.STORES if s["is_open"]])
    # Power-law popularity: a few dishes sell most (rank r sells about 1/r^0.9).
    order = dishes[:]
    rng.shuffle(order)
    weights = {d.code: 1.0 / (rank + 1) ** 0.9 for rank, d in enumerate(order)}
    people: list[HistoryMember] = []
    if demo_members:
        by_name = {t.name: t for t in TASTES}
        for n, (phone, nickname, tastes) in enumerate(DEMO_MEMBERS):
            people.append(
                HistoryMember(
                    f"demo-member-{n + 1}",
                    nickname,
                    tuple(by_name[t] for t in tastes),
                    store_codes[0],
                    phone,
                )
            )
    while len(people) < members:
        n = len(people)
        chosen = tuple(rng.sample(TASTES, k=rng.choice((1, 1, 2))))
        people.append(
            HistoryMember(f"{prefix}-{n}", f"食客{n:05d}", chosen, rng.choice(store_codes))
        )
    # Each member's own favourites: the dishes they come back for.
    favourites = [
        [d for d in dishes if any(_fits(d, t) for t in m.tastes)] or dishes for m in people
    ]
    activity = [rng.paretovariate(1.5) for _ in people]
    for n in range(len(DEMO_MEMBERS) if demo_members else 0):
        activity[n] = max(activity[n], 8.0)  # the demo members have a history to show
    shelves: dict[tuple[int | None, str, frozenset[str]], list[_Dish]] = {}

    def shelf(who: int | None, channel: str, categories: frozenset[str]) -> list[_Dish]:
        """What sells on the channel in those categories: the member's liked ones first, else
        all (``who`` None: all)."""
        key = (who, channel, categories)
        if key not in shelves:
            found = [d for d in dishes if channel in d.channels and d.category in categories]
            codes = {d.code for d in found}
            liked = [d for d in favourites[who] if d.code in codes] if who is not None else []
            shelves[key] = liked or found
        return shelves[key]

    start = now - timedelta(days=days)
    made: list[HistoryOrder] = []
    everyone = range(len(people))
    cumulative = list(itertools.accumulate(activity))
    for _ in range(orders):
        who = rng.choices(everyone, cum_weights=cumulative)[0]
        member = people[who]
        day = start + timedelta(days=rng.randrange(days))
        weather = _choice(rng, WEATHER_SHARE)
        period = _choice(rng, PERIOD_SHARE)
        low, high = PERIOD_HOURS[period]
        local = day.astimezone(SHANGHAI).replace(
            hour=rng.randint(low, high), minute=rng.randrange(60), second=0, microsecond=0
        )
        placed = min(local.astimezone(UTC), now - timedelta(hours=1))
        channel = rng.choice(("DINE_IN", "PICKUP", "DELIVERY"))
        store = member.home_store if rng.random() < 0.8 else rng.choice(store_codes)
        basket: list[_Dish] = []
        if period == "BREAKFAST":
            basket.append(_pick(rng, shelf(None, channel, DIMSUM), weights))
            basket.append(_pick(rng, shelf(None, channel, frozenset({"drink-tea"})), weights))
        else:
            source = (
                shelf(who, channel, MAINS) if rng.random() < 0.75 else shelf(None, channel, MAINS)
            )
            basket.append(_pick(rng, source, weights))
            if rng.random() < 0.6:
                basket.append(_pick(rng, shelf(None, channel, RICE), weights))
        warm = weather in ("RAIN", "COLD")
        if rng.random() < (0.55 if warm else 0.15):
            basket.append(_pick(rng, shelf(who, channel, SOUPS), weights))
        if rng.random() < (0.7 if weather == "HOT" else 0.35):
            basket.append(_pick(rng, shelf(who, channel, DRINKS), weights))
        skus = tuple(dict.fromkeys(d.sku for d in basket))
        made.append(HistoryOrder(who, store, channel, placed, weather, skus))
    made.sort(key=lambda o: o.placed_at)
    return History(tuple(people), tuple(made))


FINGERPRINT = "generated-history"


async def insert_history(conn: AsyncConnection, history: History) -> dict[str, int]:
    """Write the members and their orders (completed, paid) in the caller's transaction."""
    prefix = history.members[0].key if history.members else "history"
    from dinegraph.db.tables import products, skus, stores

    found = await conn.execute(
        sa.select(skus.c.id, skus.c.product_id, skus.c.price_fen, products.c.name)
        .join(products, products.c.id == skus.c.product_id)
        .order_by(skus.c.id)
    )
    by_product: dict[str, list[Any]] = {}
    for row in found:
        by_product.setdefault(row.name, []).append(row)
    # SKU codes are not stored: a product's SKUs were written in demo_data's order.
    sku_ids = {
        sku["code"]: row
        for p in demo_data.PRODUCTS
        for sku, row in zip(p["skus"], by_product.get(p["name"], []), strict=False)
    }
    store_ids = {r.code: r.id for r in await conn.execute(sa.select(stores.c.code, stores.c.id))}
    # Plain executemany, then one read of the ids: RETURNING in the order of the rows would
    # insert them one at a time on SQLite.
    await conn.execute(
        members.insert(),
        [
            {
                "phone": m.phone,
                "phone_index": m.phone,
                "wechat_openid": m.key,
                "nickname": m.nickname,
                "tier": "NORMAL",
                "points": 0,
            }
            for m in history.members
        ],
    )
    keys = [m.key for m in history.members]
    by_key: dict[str, int] = {}
    for start in range(0, len(keys), 5000):
        found_ids = await conn.execute(
            sa.select(members.c.wechat_openid, members.c.id).where(
                members.c.wechat_openid.in_(keys[start : start + 5000])
            )
        )
        by_key.update({r.wechat_openid: r.id for r in found_ids})
    member_ids = [by_key[k] for k in keys]
    rows: list[dict[str, object]] = []
    for n, o in enumerate(history.orders):
        total = sum(sku_ids[s].price_fen for s in o.skus)
        rows.append(
            {
                "member_id": member_ids[o.member],
                "store_id": store_ids[o.store],
                "channel": o.channel,
                "status": "COMPLETED",
                "idempotency_key": f"{prefix}-{n}",
                "fingerprint": FINGERPRINT,
                "subtotal_fen": total,
                "tier_discount_fen": 0,
                "coupon_discount_fen": 0,
                "delivery_fee_fen": 0,
                "delivery_discount_fen": 0,
                "packaging_fee_fen": 0,
                "total_fen": total,
                "placed_at": o.placed_at,
                "pay_by": o.placed_at + timedelta(minutes=15),
                "paid_at": o.placed_at,
                "completed_at": o.placed_at + timedelta(minutes=40),
                "updated_at": o.placed_at + timedelta(minutes=40),
                "version": 1,
            }
        )
    for start in range(0, len(rows), 5000):
        await conn.execute(orders.insert(), rows[start : start + 5000])
    by_order: dict[str, int] = {}
    found_orders = await conn.execute(
        sa.select(orders.c.idempotency_key, orders.c.id).where(orders.c.fingerprint == FINGERPRINT)
    )
    by_order.update({r.idempotency_key: r.id for r in found_orders})
    order_ids = [by_order[f"{prefix}-{n}"] for n in range(len(rows))]
    lines = [
        {
            "order_id": order_id,
            "line_no": k + 1,
            "sku_id": sku_ids[s].id,
            "product_id": sku_ids[s].product_id,
            "name": sku_ids[s].name,
            "specs": {},
            "unit_price_fen": sku_ids[s].price_fen,
            "quantity": 1,
        }
        for order_id, o in zip(order_ids, history.orders, strict=True)
        for k, s in enumerate(o.skus)
    ]
    for start in range(0, len(lines), 10000):
        await conn.execute(order_lines.insert(), lines[start : start + 10000])
    return {"members": len(member_ids), "orders": len(order_ids), "order_lines": len(lines)}
