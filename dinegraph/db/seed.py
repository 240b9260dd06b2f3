"""The demo chain (味知堂, Shenzhen): stores, categories, products, SKUs, prices and stock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db import demo_data
from dinegraph.db.coupons import template_values
from dinegraph.db.demo_history import SHANGHAI, generate_history, insert_history
from dinegraph.db.engine import WRITE
from dinegraph.db.recommendations import build_recommendations
from dinegraph.db.tables import (
    categories,
    combo_components,
    coupon_templates,
    product_channels,
    products,
    riders,
    search_synonyms,
    skus,
    stock_ledger,
    stock_levels,
    stock_movements,
    store_prices,
    stores,
)
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.campaigns import (
    BargainRules,
    CampaignItem,
    CampaignKind,
    CampaignSpec,
    GroupRules,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.coupons import CouponTemplate
from dinegraph.domain.identity import StaffRole, StaffViewer
from dinegraph.domain.pricing import CouponKind, CouponScope
from dinegraph.domain.services.campaigns import CreateCampaign, create_campaign
from dinegraph.domain.stock import LedgerKind, MovementLine, MovementSource, fingerprint

LOW_STOCK_THRESHOLD = 5


class AlreadySeeded(Exception):
    """The database holds stores already; the demo chain only goes into an empty one."""


async def seed_demo(
    engine: AsyncEngine, *, now: datetime | None = None, rng_seed: int = 20261122
) -> dict[str, int]:
    """Load the demo chain into an empty database; returns how many rows of each kind.

    ``now`` is the server's time the demo will be served at (``DINEGRAPH_CLOCK_START`` when
    set; the real time by default): the campaigns run and the coupons are claimable around it.
    """
    now = now or datetime.now(UTC)
    rng = random.Random(rng_seed)
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            if await conn.scalar(sa.select(sa.func.count()).select_from(stores)):
                raise AlreadySeeded("the database already holds stores; demo data not loaded")
            store_ids = await _stores(conn)
            category_ids = await _categories(conn)
            sku_ids, tracked, untracked = await _products(conn, category_ids)
            counts = await _store_state(conn, rng, store_ids, sku_ids, tracked, untracked)
            counts["coupon_templates"] = await _coupon_templates(conn, category_ids, now)
            counts["riders"] = await _riders(conn, store_ids)
            counts["search_synonyms"] = await _search_synonyms(conn, now)
    counts["campaigns"] = await _campaigns(engine, sku_ids, now)
    counts.update(await _history(engine, now))
    return {
        "stores": len(store_ids),
        "categories": len(category_ids),
        "products": len(demo_data.PRODUCTS),
        "skus": len(sku_ids),
        **counts,
    }


async def _search_synonyms(conn: AsyncConnection, now: datetime) -> int:
    rows = [
        {"term": s["term"], "synonyms": s["synonyms"], "updated_at": now}
        for s in demo_data.SEARCH_SYNONYMS
    ]
    await conn.execute(search_synonyms.insert(), rows)
    return len(rows)


# Enough order history that a demo member's 猜你喜欢 makes sense at once, small enough that
# seeding stays quick (about a second with the model's build).
DEMO_HISTORY_MEMBERS = 400
DEMO_HISTORY_ORDERS = 2400


async def _history(engine: AsyncEngine, now: datetime) -> dict[str, int]:
    history = generate_history(
        members=DEMO_HISTORY_MEMBERS, orders=DEMO_HISTORY_ORDERS, now=now, demo_members=True
    )
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            written = await insert_history(conn, history)
    await build_recommendations(engine, now, SHANGHAI)
    return {"history_" + k: v for k, v in written.items()}


async def _riders(conn: AsyncConnection, store_ids: dict[str, int]) -> int:
    rows: list[dict[str, object]] = [
        {
            "store_id": store_ids[r["store"]],
            "name": r["name"],
            "phone": r["phone"],
            "active": True,
            "busy": False,
        }
        for r in demo_data.RIDERS
    ]
    await conn.execute(riders.insert(), rows)
    return len(rows)


def _time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


async def _insert_ids(
    conn: AsyncConnection, table: sa.Table, rows: list[dict[str, object]]
) -> list[int]:
    result = await conn.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [int(r) for r in result.scalars()]


async def _stores(conn: AsyncConnection) -> dict[str, int]:
    rows: list[dict[str, object]] = [
        {
            "code": s["code"],
            "name": s["name"],
            "address": s["address"],
            "lat": s["lat"],
            "lng": s["lng"],
            "delivery_radius_m": s["delivery_radius_m"],
            "opens": _time(s["opens"]),
            "closes": _time(s["closes"]),
            "is_open": s["is_open"],
            "delivery_provider": s.get("delivery_provider", "DADA"),
        }
        for s in demo_data.STORES
    ]
    ids = await _insert_ids(conn, stores, rows)
    return {s["code"]: i for s, i in zip(demo_data.STORES, ids, strict=True)}


async def _categories(conn: AsyncConnection) -> dict[str, int]:
    ids: dict[str, int] = {}
    # Parents first, so children can point at them.
    ordered = sorted(demo_data.CATEGORIES, key=lambda c: c["parent"] is not None)
    for c in ordered:
        parent = ids[c["parent"]] if c["parent"] else None
        (new_id,) = await _insert_ids(
            conn, categories, [{"name": c["name"], "parent_id": parent, "sort": c["sort"]}]
        )
        ids[c["code"]] = new_id
    return ids


async def _products(
    conn: AsyncConnection, category_ids: dict[str, int]
) -> tuple[dict[str, int], list[int], list[int]]:
    product_rows: list[dict[str, object]] = [
        {
            "category_id": category_ids[p["category"]],
            "kind": p["kind"],
            "name": p["name"],
            "description": p["description"],
            "tags": p["tags"],
            "image_urls": p["image_urls"],
            "listed": p.get("listed", True),
            "sort": n,
        }
        for n, p in enumerate(demo_data.PRODUCTS)
    ]
    product_ids = await _insert_ids(conn, products, product_rows)
    await conn.execute(
        product_channels.insert(),
        [
            {"product_id": pid, "channel": channel}
            for p, pid in zip(demo_data.PRODUCTS, product_ids, strict=True)
            for channel in p["channels"]
        ],
    )
    sku_rows: list[dict[str, object]] = []
    sku_codes: list[str] = []
    for p, pid in zip(demo_data.PRODUCTS, product_ids, strict=True):
        for n, s in enumerate(p["skus"]):
            sku_codes.append(s["code"])
            sku_rows.append(
                {
                    "product_id": pid,
                    "name": s["name"],
                    "specs": s["specs"],
                    "price_fen": s["price_fen"],
                    "tracked": s["tracked"],
                    "sort": n,
                }
            )
    sku_ids = dict(zip(sku_codes, await _insert_ids(conn, skus, sku_rows), strict=True))
    component_rows = [
        {
            "combo_sku_id": sku_ids[p["skus"][0]["code"]],
            "component_sku_id": sku_ids[c["sku"]],
            "quantity": c["quantity"],
        }
        for p in demo_data.PRODUCTS
        for c in p.get("components", [])
    ]
    if component_rows:
        await conn.execute(combo_components.insert(), component_rows)
    tracked = [sku_ids[s["code"]] for p in demo_data.PRODUCTS for s in p["skus"] if s["tracked"]]
    untracked = [
        sku_ids[s["code"]]
        for p in demo_data.PRODUCTS
        for s in p["skus"]
        if not s["tracked"] and p["kind"] == "DISH"
    ]
    return sku_ids, tracked, untracked


async def _store_state(
    conn: AsyncConnection,
    rng: random.Random,
    store_ids: dict[str, int],
    sku_ids: dict[str, int],
    tracked: list[int],
    untracked: list[int],
) -> dict[str, int]:
    levels: list[dict[str, object]] = []
    ledger: list[dict[str, object]] = []
    for store_id in store_ids.values():
        opening: list[tuple[int, int]] = []
        for sku_id in tracked:
            # Most stores hold a few dozen of each pre-made dish; a few run low or out.
            available = rng.choice([0, 3, *range(8, 61)])
            levels.append(_level(store_id, sku_id, available=available, sold_out=False))
            if available:
                opening.append((sku_id, available))
        for sku_id in rng.sample(untracked, k=2):
            levels.append(_level(store_id, sku_id, available=None, sold_out=True))
        # Opening stock goes through the ledger like any restock: a level is its rows' sum.
        movement_id = await conn.scalar(
            stock_movements.insert()
            .values(
                store_id=store_id,
                source=MovementSource.RESTOCK.value,
                reference="demo-opening-stock",
                fingerprint=fingerprint(MovementLine(s, q) for s, q in opening),
                lines=[list(pair) for pair in opening],
                reason="开业备货",
                actor="seed",
            )
            .returning(stock_movements.c.id)
        )
        ledger += [
            {
                "movement_id": movement_id,
                "store_id": store_id,
                "sku_id": sku_id,
                "kind": LedgerKind.RESTOCK.value,
                "delta": quantity,
                "balance_after": quantity,
            }
            for sku_id, quantity in opening
        ]
    await conn.execute(stock_levels.insert(), levels)
    await conn.execute(stock_ledger.insert(), ledger)
    # The CBD store charges a little more for its dine-in dishes.
    cbd = store_ids[demo_data.STORES[0]["code"]]
    prices = [
        {"store_id": cbd, "sku_id": sku_id, "price_fen": price + 200}
        for sku_id, price in (
            await conn.execute(sa.select(skus.c.id, skus.c.price_fen).order_by(skus.c.id).limit(20))
        )
    ]
    await conn.execute(store_prices.insert(), prices)
    return {"stock_levels": len(levels), "store_prices": len(prices)}


async def _coupon_templates(
    conn: AsyncConnection, category_ids: dict[str, int], now: datetime
) -> int:
    """One claimable template of each kind, a 限时抢券 and a 裂变券 with its bonus."""
    month = timedelta(days=30)
    retail = frozenset(
        category_ids[c["code"]] for c in demo_data.CATEGORIES if c["parent"] == "retail"
    )
    bonus = CouponTemplate(
        id=0,
        title="好友助力奖励·无门槛10元",
        kind=CouponKind.NO_THRESHOLD,
        amount_off_fen=1000,
        valid_days=30,
        total_quantity=10_000,
        # Earned only through shares: never open for claiming directly.
        claim_starts_at=now - month,
        claim_ends_at=now - month + timedelta(seconds=1),
    )
    (bonus_id,) = await _insert_ids(conn, coupon_templates, [template_values(bonus)])
    templates = [
        CouponTemplate(
            id=0,
            title="满100减20",
            kind=CouponKind.THRESHOLD,
            amount_off_fen=2000,
            threshold_fen=10_000,
            valid_days=30,
            total_quantity=5_000,
            per_member_limit=2,
        ),
        CouponTemplate(
            id=0,
            title="新人无门槛5元",
            kind=CouponKind.NO_THRESHOLD,
            amount_off_fen=500,
            valid_days=14,
            total_quantity=10_000,
            new_members_only=True,
        ),
        CouponTemplate(
            id=0,
            title="预制菜88折(最高减30元)",
            kind=CouponKind.PERCENT,
            percent_off=12,
            cap_fen=3000,
            scope=CouponScope(category_ids=retail),
            valid_from=now,
            valid_until=now + 2 * month,
            total_quantity=3_000,
        ),
        CouponTemplate(
            id=0,
            title="外卖免配送费",
            kind=CouponKind.FREE_DELIVERY,
            scope=CouponScope(channels=frozenset({Channel.DELIVERY})),
            valid_days=7,
            total_quantity=20_000,
            per_member_limit=3,
        ),
        CouponTemplate(
            id=0,
            title="限时抢券·满200减50",
            kind=CouponKind.THRESHOLD,
            amount_off_fen=5000,
            threshold_fen=20_000,
            valid_days=7,
            total_quantity=1_000,
            claim_starts_at=now - timedelta(hours=1),
            claim_ends_at=now + timedelta(days=3),
        ),
        CouponTemplate(
            id=0,
            title="邀3位好友·满60减10",
            kind=CouponKind.THRESHOLD,
            amount_off_fen=1000,
            threshold_fen=6000,
            valid_days=30,
            total_quantity=10_000,
            fission_friends=3,
            fission_bonus_template_id=bonus_id,
        ),
    ]
    await _insert_ids(conn, coupon_templates, [template_values(t) for t in templates])
    return len(templates) + 1


class _DemoCampaign(NamedTuple):
    kind: CampaignKind
    name: str
    sku: str
    price_fen: int
    per_member_limit: int
    group: GroupRules | None = None
    bargain: BargainRules | None = None
    one_store: bool = False


# One running campaign of each kind, on pre-made dishes the stores hold plenty of. The
# group-buy runs at one store, so its share page needs no store picked (pickup there).
DEMO_CAMPAIGNS = (
    _DemoCampaign(
        CampaignKind.GROUP_BUY,
        "酸菜鱼三人团·34.9元",
        "R-SCY-2P",
        3490,
        2,
        group=GroupRules(3, 24),
        one_store=True,
    ),
    _DemoCampaign(
        CampaignKind.BARGAIN,
        "盐焗鸡整只·砍到9.9元",
        "R-YJJ-WHOLE",
        990,
        1,
        bargain=BargainRules(helps=5, hours=48, daily_help_cap=5),
    ),
    _DemoCampaign(CampaignKind.FLASH_SALE, "糖醋排骨9.9元秒杀", "R-TCPG-400G", 990, 1),
)
DEMO_QUOTA = 5
DEMO_CAMPAIGN_DAYS = 30


async def _campaigns(engine: AsyncEngine, sku_ids: dict[str, int], now: datetime) -> int:
    """The demo campaigns, set up the way an operator would (each store's quota held from
    its stock through the ledger), at the open stores that stock plenty of the dish; they
    started an hour before ``now`` and run for DEMO_CAMPAIGN_DAYS after it."""
    head_office = StaffViewer(0, "seed", StaffRole.HQ_ADMIN, frozenset())
    for demo in DEMO_CAMPAIGNS:
        sku_id = sku_ids[demo.sku]
        async with engine.connect() as conn:
            stocked = (
                await conn.scalars(
                    sa.select(stock_levels.c.store_id)
                    .join(stores, stores.c.id == stock_levels.c.store_id)
                    .where(
                        stock_levels.c.sku_id == sku_id,
                        stock_levels.c.available >= DEMO_QUOTA * 2,
                        stores.c.is_open.is_(True),  # not the store closed for refitting
                    )
                    .order_by(stock_levels.c.store_id)
                )
            ).all()
        spec = CampaignSpec(
            kind=demo.kind,
            name=demo.name,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=DEMO_CAMPAIGN_DAYS),
            items=(CampaignItem(sku_id, demo.price_fen),),
            store_ids=tuple(stocked[:1] if demo.one_store else stocked),
            channels=frozenset({Channel.PICKUP, Channel.DELIVERY}),
            quota_per_store=DEMO_QUOTA,
            per_member_limit=demo.per_member_limit,
            new_members_only=False,
            group=demo.group,
            bargain=demo.bargain,
        )
        await create_campaign(
            CreateCampaign(spec=spec, now=now), uow=SqlUnitOfWork(engine), viewer=head_office
        )
    return len(DEMO_CAMPAIGNS)


def _level(
    store_id: int, sku_id: int, *, available: int | None, sold_out: bool
) -> dict[str, object]:
    return {
        "store_id": store_id,
        "sku_id": sku_id,
        "available": available,
        "sold_out": sold_out,
        "low_stock_threshold": LOW_STOCK_THRESHOLD,
        "version": 1,
    }
