"""Live feeds: the current state first, then every committed change, latest value only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from dinegraph.context import Context
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.events import Event
from dinegraph.domain.identity import require_store_manager
from dinegraph.domain.stock import LowStock, StockChanged, low_now, stock_view
from dinegraph.events.codec import low_stock_topic, stock_topic


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


async def latest_of(
    ctx: Context,
    topic: str,
    event_type: type[Event],
    load: Callable[[], Awaitable[V | None]],
    missing: DomainError,
) -> AsyncIterator[V]:
    """One object's feed: ``load()`` now (``missing`` when there is none to see), then again
    on each newer ``event_type`` on ``topic``, sent only when its version has grown."""
    box = await ctx.broker.hub.join([topic])  # before the snapshot: nothing slips between
    try:
        current = await load()
        if current is None:
            raise missing
        version = current.version
        yield current
        while True:
            for event in await box.take():
                if not isinstance(event, event_type) or event.version <= version:
                    continue
                fresh = await load()
                if fresh is None or fresh.version <= version:
                    continue
                version = fresh.version
                yield fresh
    finally:
        await ctx.broker.hub.leave([topic], box)


async def stock_feed(
    ctx: Context, store_id: int, sku_ids: list[int] | None
) -> AsyncIterator[StockChanged]:
    """Public: a store's stock, as every menu page shows it."""
    if await ctx.loaders.store.load(store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    wanted = set(sku_ids) if sku_ids is not None else None
    topics = [stock_topic(store_id)]
    # Join before reading the snapshot, so no change between the two can be missed;
    # versions drop anything the snapshot already covered.
    box = await ctx.broker.hub.join(topics)
    try:
        sent: dict[int, int] = {}
        for row in await ctx.reads.store_stock(store_id, sku_ids):
            # The snapshot read the SKUs already: nested `sku { ... }` costs no query.
            ctx.loaders.sku.prime(row.sku.id, row.sku)
            view = stock_view(row.sku, row.available, row.sold_out, row.version)
            sent[row.sku.id] = row.version
            yield StockChanged(store_id, row.sku.id, view.available, view.sold_out, row.version)
        while True:
            events = await box.take()
            ctx.refresh_loaders()  # each change is read with loaders of its own
            for event in events:
                if not isinstance(event, StockChanged):
                    continue
                if wanted is not None and event.sku_id not in wanted:
                    continue
                if event.version <= sent.get(event.sku_id, -1):
                    continue
                sent[event.sku_id] = event.version
                yield event
    finally:
        await ctx.broker.hub.leave(topics, box)


async def low_stock_feed(ctx: Context, store_ids: list[int]) -> AsyncIterator[LowStock]:
    """Staff of the stores: what is low now, then each level that falls to its threshold."""
    for store_id in store_ids:
        require_store_manager(ctx.viewer, store_id)
    topics = [low_stock_topic(s) for s in store_ids]
    box = await ctx.broker.hub.join(topics)
    try:
        for store_id in store_ids:
            for row in await ctx.reads.store_stock(store_id, None):
                alert = low_now(
                    store_id, row.sku, row.available, row.low_stock_threshold, row.version
                )
                if alert is not None:
                    yield alert
        while True:
            for event in await box.take():
                if isinstance(event, LowStock):
                    ctx.refresh_loaders()
                    yield event
    finally:
        await ctx.broker.hub.leave(topics, box)
