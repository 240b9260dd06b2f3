"""The recommendation model in storage: histories read for a build and for a member's
profile, and the model's versions written whole and swapped in at once.

A build inserts a ``BUILDING`` version, writes its neighbours and popularity under it, and
marks it ``READY`` in one last statement; readers always take the newest ready version, so
they never see half a model. Two builds at once each write their own version: the later one
to finish is served, and each deletes versions older than the one it made ready.
"""

from __future__ import annotations

import asyncio
import time as clock
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.behaviour import prune_events, writing
from dinegraph.db.tables import (
    behaviour_events,
    order_lines,
    orders,
    recommendation_models,
    recommendation_neighbours,
    recommendation_popularity,
)
from dinegraph.domain.behaviour import RETENTION_DAYS, Actor
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.recommendations import (
    Basket,
    Interaction,
    MealPeriod,
    Model,
    Neighbour,
    Signal,
    build_model,
    meal_period,
)

HISTORY_DAYS = 365  # orders and events a build learns from
PROFILE_DAYS = 180  # a member's history that counts when serving
PROFILE_ORDERS = 50
PROFILE_EVENTS = 200
_NOT_SOLD = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED, OrderStatus.REFUNDED)
# A member's own history also counts the order awaiting payment: it is the order the page
# after ordering follows, and WeChat Pay's notice may not have arrived when it is shown.
_NOT_CHOSEN = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
_PRODUCT_SIGNALS = {s.value: s for s in Signal if s is not Signal.ORDER}


@dataclass(frozen=True, slots=True)
class BuildReport:
    version: int
    orders: int
    events: int
    products: int
    seconds: float
    pruned_events: int


async def _baskets(
    engine: AsyncEngine, tz: ZoneInfo, since: datetime, member_id: int | None = None
) -> list[Basket]:
    """Orders sold since ``since`` (all, or a member's latest, those awaiting payment
    included), as baskets of products.

    The orders and their lines are read in two whole queries: rows streamed one at a time
    cost a switch between the event loop and the driver each."""
    sold = [orders.c.placed_at >= since, orders.c.status.not_in([s.value for s in _NOT_SOLD])]
    if member_id is not None:
        chosen = [
            orders.c.placed_at >= since,
            orders.c.status.not_in([s.value for s in _NOT_CHOSEN]),
        ]
        recent = (
            sa.select(orders.c.id)
            .where(orders.c.member_id == member_id, *chosen)
            .order_by(orders.c.id.desc())
            .limit(PROFILE_ORDERS)
        )
        sold = [orders.c.id.in_(recent.scalar_subquery())]
    heads_query = sa.select(
        orders.c.id, orders.c.member_id, orders.c.store_id, orders.c.placed_at
    ).where(*sold)
    lines_query = (
        sa.select(order_lines.c.order_id, order_lines.c.product_id)
        .join(orders, order_lines.c.order_id == orders.c.id)
        .where(*sold)
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    )
    lines: dict[int, list[int]] = defaultdict(list)
    async with engine.connect() as conn:
        heads = (await conn.execute(heads_query)).all()
        for order_id, product_id in (await conn.execute(lines_query)).all():
            lines[order_id].append(product_id)
    return sorted(
        (
            Basket(
                member=f"m:{member}" if member is not None else f"o:{order_id}",
                store_id=store_id,
                period=meal_period(at.astimezone(tz).time()),
                product_ids=tuple(lines[order_id]),
                at=at,
            )
            for order_id, member, store_id, at in heads
            if lines[order_id]
        ),
        key=lambda basket: basket.at,
    )


async def _interactions(
    engine: AsyncEngine, since: datetime, actor: Actor | None = None
) -> list[Interaction]:
    e = behaviour_events
    query = sa.select(e.c.actor, e.c.product_id, e.c.kind, e.c.occurred_at).where(
        e.c.occurred_at >= since,
        e.c.product_id.is_not(None),
        e.c.kind.in_(list(_PRODUCT_SIGNALS)),
    )
    if actor is not None:
        query = query.where(e.c.actor == actor.key).order_by(e.c.id.desc()).limit(PROFILE_EVENTS)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [
            Interaction(r.actor, r.product_id, _PRODUCT_SIGNALS[r.kind], r.occurred_at)
            for r in rows
        ]


async def history_of(
    engine: AsyncEngine, actor: Actor, now: datetime, tz: ZoneInfo
) -> tuple[list[Basket], list[Interaction]]:
    """A member's recent orders and a member's or device's recent events."""
    since = now - timedelta(days=PROFILE_DAYS)
    baskets = (
        await _baskets(engine, tz, since, actor.member_id) if actor.member_id is not None else []
    )
    return baskets, await _interactions(engine, since, actor)


async def build_recommendations(engine: AsyncEngine, now: datetime, tz: ZoneInfo) -> BuildReport:
    """Read the history, build the model off the event loop, write it as a new version."""
    started = clock.perf_counter()
    pruned = await prune_events(engine, now - timedelta(days=RETENTION_DAYS))
    since = now - timedelta(days=HISTORY_DAYS)
    baskets = await _baskets(engine, tz, since)
    interactions = await _interactions(engine, since)
    model = await asyncio.to_thread(build_model, baskets, interactions)
    async with writing(engine) as conn:
        version = await conn.scalar(
            recommendation_models.insert()
            .values(status="BUILDING", started_at=now)
            .returning(recommendation_models.c.version)
        )
    assert version is not None
    await _write_rows(engine, version, model)
    seconds = round(clock.perf_counter() - started, 3)
    async with writing(engine) as conn:
        await conn.execute(
            recommendation_models.update()
            .where(recommendation_models.c.version == version)
            .values(
                status="READY",
                built_at=now,
                orders=len(baskets),
                events=len(interactions),
                products=len(model.neighbours),
                seconds=seconds,
            )
        )
    await _forget_before(engine, version)
    return BuildReport(
        version, len(baskets), len(interactions), len(model.neighbours), seconds, pruned
    )


async def _write_rows(engine: AsyncEngine, version: int, model: Model) -> None:
    neighbours = [
        {
            "version": version,
            "product_id": product_id,
            "rank": rank,
            "neighbour_id": n.product_id,
            "score": n.score,
            "together": n.together,
        }
        for product_id, ranked in model.neighbours.items()
        for rank, n in enumerate(ranked)
    ]
    popularity = [
        {
            "version": version,
            "store_id": store_id,
            "period": period.value if period is not None else "",
            "rank": rank,
            "product_id": product_id,
            "score": score,
        }
        for (store_id, period), ranked in model.popularity.items()
        for rank, (product_id, score) in enumerate(ranked)
    ]
    for table, rows in (
        (recommendation_neighbours, neighbours),
        (recommendation_popularity, popularity),
    ):
        for start in range(0, len(rows), 2000):  # short transactions: servers keep writing
            async with writing(engine) as conn:
                await conn.execute(table.insert(), rows[start : start + 2000])


async def _forget_before(engine: AsyncEngine, version: int) -> None:
    """Delete every older version's rows, by their own version: a slower build still writing
    an older version whose model row is gone leaves rows that only this finds."""
    m = recommendation_models
    async with writing(engine) as conn:
        for table in (recommendation_neighbours, recommendation_popularity):
            await conn.execute(table.delete().where(table.c.version < version))
        await conn.execute(m.delete().where(m.c.version < version))


async def current_version(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.max(recommendation_models.c.version)).where(
                recommendation_models.c.status == "READY"
            )
        )
    return int(found) if found is not None else None


async def load_model(engine: AsyncEngine, version: int) -> Model:
    n, p = recommendation_neighbours, recommendation_popularity
    neighbours: dict[int, list[Neighbour]] = defaultdict(list)
    popularity: dict[tuple[int, MealPeriod | None], list[tuple[int, float]]] = defaultdict(list)
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(n).where(n.c.version == version).order_by(n.c.product_id, n.c.rank)
        )
        for r in rows:
            neighbours[r.product_id].append(Neighbour(r.neighbour_id, r.score, r.together))
        rows = await conn.execute(
            sa.select(p).where(p.c.version == version).order_by(p.c.store_id, p.c.period, p.c.rank)
        )
        for r in rows:
            period = MealPeriod(r.period) if r.period else None
            popularity[(r.store_id, period)].append((r.product_id, r.score))
    return Model(
        neighbours={k: tuple(v) for k, v in neighbours.items()},
        popularity={k: tuple(v) for k, v in popularity.items()},
    )


class SqlRecommendationSource:
    """``domain.services.recommendations.RecommendationSource`` over the database."""

    def __init__(self, engine: AsyncEngine, tz: ZoneInfo) -> None:
        self._engine = engine
        self._tz = tz

    async def current_version(self) -> int | None:
        return await current_version(self._engine)

    async def load_model(self, version: int) -> Model:
        return await load_model(self._engine, version)

    async def history_of(
        self, actor: Actor, now: datetime
    ) -> tuple[list[Basket], list[Interaction]]:
        return await history_of(self._engine, actor, now, self._tz)
