"""Reads of deliveries: one trip, a store's live map, the replay of a trip, live feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from dinegraph.context import Context
from dinegraph.domain.delivery import (
    Delivery,
    DeliveryChanged,
    can_follow_courier,
    can_read_delivery,
    changed,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import PartnerViewer, require_store_manager
from dinegraph.domain.reads import PositionRow
from dinegraph.events.codec import courier_topic, store_deliveries_topic
from dinegraph.resolvers.pagination import Page, decode_cursor, encode_cursor, page_size


async def visible_deliveries(ctx: Context, ids: Sequence[int]) -> list[Delivery | None]:
    found = await ctx.loaders.delivery.load_many(list(ids))
    return [d if d is not None and can_read_delivery(ctx.viewer, d) else None for d in found]


async def in_progress(ctx: Context, store_id: int) -> list[Delivery]:
    """The store's live map: deliveries on their way (its staff)."""
    require_store_manager(ctx.viewer, store_id)
    return await ctx.reads.deliveries_in_progress(store_id, limit=500)


async def track(
    ctx: Context, delivery: Delivery, *, first: int | None, after: str | None
) -> Page[PositionRow]:
    """A trip replayed in recording order. A trip is short (a report every few seconds for
    half an hour), so pages are by offset."""
    size = page_size(first, ctx.settings.max_page_size)
    start = decode_cursor(after) + 1 if after is not None else 0
    rows = await ctx.reads.track(delivery.id, start, size + 1)
    return Page(
        items=[(encode_cursor(start + n), r) for n, r in enumerate(rows[:size])],
        has_next_page=len(rows) > size,
        has_previous_page=start > 0,
        total_count=None,
    )


async def _may_follow_order(ctx: Context, order_id: int) -> bool:
    order = await ctx.loaders.order.load(order_id)
    if order is None:
        return False
    delivery = None
    if isinstance(ctx.viewer, PartnerViewer):
        delivery = await ctx.loaders.delivery_of_order.load(order_id)
    return can_follow_courier(ctx.viewer, order.member_id, order.store_id, delivery)


async def courier_feed(ctx: Context, order_id: int) -> AsyncIterator[DeliveryChanged | None]:
    """The order's courier: the latest status, position and ETA (None before dispatch), then
    every change; a slow reader gets the newest state, never a queue."""
    topics = [courier_topic(order_id)]
    box = await ctx.broker.hub.join(topics)  # before the snapshot: nothing slips between
    try:
        if not await _may_follow_order(ctx, order_id):
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        current = await ctx.reads.latest_deliveries([order_id])
        delivery = current.get(order_id)
        seen = (delivery.id, delivery.version) if delivery else (0, 0)
        yield changed(delivery) if delivery else None
        while True:
            events = await box.take()
            ctx.refresh_loaders()  # each change is read with loaders of its own
            for event in events:
                if not isinstance(event, DeliveryChanged):
                    continue
                key = (event.delivery_id, event.version)
                if key <= seen:
                    continue
                seen = key
                yield event
    finally:
        await ctx.broker.hub.leave(topics, box)


async def store_delivery_feed(ctx: Context, store_id: int) -> AsyncIterator[DeliveryChanged]:
    """The store's live map (its staff): every delivery on its way, then each change."""
    require_store_manager(ctx.viewer, store_id)
    topics = [store_deliveries_topic(store_id)]
    box = await ctx.broker.hub.join(topics)
    try:
        seen: dict[int, int] = {}
        for delivery in await ctx.reads.deliveries_in_progress(store_id, limit=500):
            seen[delivery.id] = delivery.version
            yield changed(delivery)
        while True:
            events = await box.take()
            ctx.refresh_loaders()  # each change is read with loaders of its own
            for event in events:
                if not isinstance(event, DeliveryChanged):
                    continue
                if event.version <= seen.get(event.delivery_id, 0):
                    continue
                seen[event.delivery_id] = event.version
                yield event
    finally:
        await ctx.broker.hub.leave(topics, box)
