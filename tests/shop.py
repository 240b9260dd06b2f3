"""Test shops for orders: stores of their own far from the demo chain, SKUs with set stock,
members of chosen tiers, and an app whose clock says noon (so every store is open)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.tables import members, stock_levels, stores
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.catalog import Channel, ProductKind
from dinegraph.domain.tiers import Tier
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient

SHANGHAI = ZoneInfo("Asia/Shanghai")
_places = itertools.count()

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status store { id } total { fen } lines { sku { id } quantity } }
    errors { code message field }
  }
}
"""
PAY = """
mutation Pay($orderId: ID!) { payOrder(orderId: $orderId) { order { id status } errors { code message } } }
"""  # noqa: E501


def next_noon() -> datetime:
    """The coming 12:00 in Shanghai: every store with normal hours is open.

    Never in the past: servers of the same test run on the real clock would otherwise see
    these orders' payment deadlines gone by and cancel them.
    """
    now = datetime.now(SHANGHAI)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon > now else noon + timedelta(days=1)


@asynccontextmanager
async def shop_client(
    settings: Settings, engine: AsyncEngine, **overrides: Any
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    """An in-process app on the test database whose clock starts at noon today."""
    shop_settings = settings.model_copy(update=overrides)
    services = replace(default_services(shop_settings), clock=Clock(next_noon()))
    app = create_app(shop_settings, engine, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield GraphQLClient(client), services


@dataclass(frozen=True)
class Shop:
    """Stores near one spot (far from the demo chain and from other shops) and their SKUs."""

    store_ids: list[int]
    centre: tuple[float, float]

    def store(self, n: int = 0) -> str:
        return encode_id("Store", self.store_ids[n])

    def near(self, metres_north: float = 0.0) -> dict[str, Any]:
        """A delivery address ``metres_north`` of the first store."""
        lat, lng = self.centre
        return {
            "lat": lat + metres_north / 111_195,
            "lng": lng,
            "detail": "1号楼 101",
            "contactName": "测试",
            "contactPhone": "13900000000",
        }


async def new_shop(engine: AsyncEngine, *, stores_north_m: tuple[int, ...] = (0,)) -> Shop:
    """Stores open around the clock, ``stores_north_m`` metres north of a fresh spot."""
    n = next(_places)
    lat, lng = 31.0 + (n % 40) * 0.5, 100.0 + (n // 40) * 0.5 + (uuid.uuid4().int % 1000) * 1e-5
    ids: list[int] = []
    async with SqlUnitOfWork(engine) as uow:
        conn = uow._conn
        assert conn is not None
        for k, north in enumerate(stores_north_m):
            store_id = await conn.scalar(
                stores.insert()
                .values(
                    code=f"T-{uuid.uuid4().hex[:10]}",
                    name=f"测试门店{n}-{k}",
                    address="测试路1号",
                    lat=lat + north / 111_195,
                    lng=lng,
                    delivery_radius_m=5000,
                    opens=time(0),
                    closes=time(0),
                    is_open=True,
                )
                .returning(stores.c.id)
            )
            ids.append(int(store_id))
        await uow.commit()
    return Shop(ids, (lat, lng))


async def new_sku(
    engine: AsyncEngine,
    *,
    price_fen: int,
    stock: dict[int, int] | None = None,
    channels: frozenset[Channel] = frozenset(Channel),
    tracked: bool = True,
    name: str = "测试菜",
) -> int:
    """A listed product with one SKU; ``stock`` sets its level at stores (tracked)."""
    async with SqlUnitOfWork(engine) as uow:
        category = await uow.catalog.add_category(
            name=f"测试{uuid.uuid4().hex[:6]}", parent_id=None, sort=0
        )
        product = await uow.catalog.add_product(
            category_id=category.id,
            kind=ProductKind.RETAIL if tracked else ProductKind.DISH,
            name=name,
            description="",
            tags=(),
            image_urls=(),
            channels=channels,
            listed=True,
            sort=0,
        )
        sku = await uow.catalog.add_sku(
            product_id=product.id,
            name="",
            specs={},
            price_fen=price_fen,
            tracked=tracked,
            sort=0,
            components=(),
        )
        conn = uow._conn
        assert conn is not None
        for store_id, level in (stock or {}).items():
            await conn.execute(
                stock_levels.insert().values(
                    store_id=store_id,
                    sku_id=sku.id,
                    available=level,
                    sold_out=False,
                    low_stock_threshold=0,
                    version=1,
                )
            )
        await uow.commit()
    return sku.id


async def new_member(
    settings: Settings, engine: AsyncEngine, tier: Tier = Tier.NORMAL, *, age_days: int = 0
) -> tuple[int, dict[str, str]]:
    """A member of ``tier``, ``age_days`` old; with an Authorization header."""
    async with SqlUnitOfWork(engine) as uow:
        member = await uow.members.add(phone=None, openid=f"o-{uuid.uuid4().hex}", nickname="食客")
        conn = uow._conn
        assert conn is not None
        await conn.execute(
            members.update()
            .where(members.c.id == member.id)
            .values(
                tier=tier.value,
                created_at=datetime.now(SHANGHAI) - timedelta(days=age_days),
            )
        )
        await uow.commit()
    return member.id, {"Authorization": f"Bearer {issue_member_token(settings, member.id)}"}


async def level_of(engine: AsyncEngine, store_id: int, sku_id: int) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(stock_levels.c.available).where(
                stock_levels.c.store_id == store_id, stock_levels.c.sku_id == sku_id
            )
        )
    return int(found or 0)


def line(sku_id: int, quantity: int) -> dict[str, Any]:
    return {"skuId": encode_id("Sku", sku_id), "quantity": quantity}


def place_input(
    *lines: dict[str, Any],
    channel: str = "DELIVERY",
    store: str | None = None,
    address: dict[str, Any] | None = None,
    coupon: str | None = None,
    key: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "idempotencyKey": key or uuid.uuid4().hex,
        "channel": channel,
        "lines": list(lines),
    }
    if store is not None:
        values["storeId"] = store
    if address is not None:
        values["address"] = address
    if coupon is not None:
        values["couponId"] = coupon
    if note is not None:
        values["note"] = note
    return values


async def new_members(settings: Settings, engine: AsyncEngine, count: int) -> list[dict[str, str]]:
    """``count`` fresh NORMAL members, as Authorization headers."""
    async with SqlUnitOfWork(engine) as uow:
        made = [
            await uow.members.add(phone=None, openid=f"o-{uuid.uuid4().hex}", nickname="食客")
            for _ in range(count)
        ]
        await uow.commit()
    return [{"Authorization": f"Bearer {issue_member_token(settings, m.id)}"} for m in made]


# --- campaigns --------------------------------------------------------------------------

CREATE_CAMPAIGN = """
mutation Create($input: CreateCampaignInput!) {
  createCampaign(input: $input) {
    campaign { id kind state name items { price { fen } } }
    errors { code message field }
  }
}
"""
OPEN_GROUP = """
mutation Open($campaignId: ID!) {
  startGroupBuy(campaignId: $campaignId) { group { id shareCode seatsLeft expiresAt } order { id } errors { code message } }
}
"""  # noqa: E501
JOIN_GROUP = """
mutation Join($shareCode: String!) {
  joinGroupBuy(shareCode: $shareCode) { group { id seatsLeft status } order { id } errors { code message } }
}
"""  # noqa: E501
BUY_FLASH = """
mutation Flash($campaignId: ID!, $order: CampaignOrderInput) {
  buyFlashSale(campaignId: $campaignId, order: $order) {
    order { id status total { fen } lines { unitPrice { fen } quantity } }
    errors { code message field }
  }
}
"""


def campaign_input(
    kind: str,
    *,
    sku_id: int,
    price_fen: int,
    store_ids: list[int],
    now: datetime,
    quota: int = 10,
    channels: tuple[str, ...] = ("PICKUP",),
    hours: float = 6,
    **extra: Any,
) -> dict[str, Any]:
    """A campaign running from an hour before ``now`` for ``hours`` after it."""
    return {
        "kind": kind,
        "name": f"测试活动{uuid.uuid4().hex[:6]}",
        "startsAt": (now - timedelta(hours=1)).isoformat(),
        "endsAt": (now + timedelta(hours=hours)).isoformat(),
        "items": [{"skuId": encode_id("Sku", sku_id), "priceFen": price_fen}],
        "storeIds": [encode_id("Store", s) for s in store_ids],
        "channels": list(channels),
        "quotaPerStore": quota,
        **extra,
    }


async def new_campaign(
    client: GraphQLClient, operator: dict[str, str], kind: str, **spec: Any
) -> str:
    """A running campaign set up through the admin mutation; its global id."""
    body = await client.execute(CREATE_CAMPAIGN, {"input": campaign_input(kind, **spec)}, operator)
    payload = body["data"]["createCampaign"]
    assert payload["errors"] == [], payload
    return str(payload["campaign"]["id"])
