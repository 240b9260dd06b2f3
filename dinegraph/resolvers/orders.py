"""Reads of orders: quotes, one order, a member's and a store's lists, live feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from dinegraph.context import Context
from dinegraph.domain.checkout import Checkout
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    MemberViewer,
    StaffViewer,
    can_read_member,
    can_read_order,
    can_serve_member,
    require_order_board_reader,
)
from dinegraph.domain.orders import OPEN, Order, OrderChanged
from dinegraph.domain.quotes import Quote
from dinegraph.domain.services.checkout import build_quote
from dinegraph.events.codec import order_topic, store_orders_topic
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size
from dinegraph.resolvers.subscriptions import latest_of


async def quote_order(ctx: Context, checkout: Checkout) -> Quote:
    """Price a checkout for the viewer (a guest sees the prices of a new member)."""
    member_id = ctx.viewer.member_id if isinstance(ctx.viewer, MemberViewer) else None
    async with ctx.reader() as reader:
        return await build_quote(
            checkout,
            repos=reader,
            member_id=member_id,
            policy=ctx.services.orders,
            now=ctx.now(),
        )


async def visible_orders(ctx: Context, ids: Sequence[int]) -> list[Order | None]:
    found = await ctx.loaders.order.load_many(list(ids))
    return [
        o if o is not None and can_read_order(ctx.viewer, o.member_id, o.store_id) else None
        for o in found
    ]


async def member_orders(
    ctx: Context,
    member_id: int,
    *,
    statuses: Sequence[str] | None,
    first: int | None,
    after: str | None,
) -> Page[Order]:
    if can_read_member(ctx.viewer, member_id):
        return await _page(ctx, statuses, first, after, member_id=member_id)
    if not can_serve_member(ctx.viewer, member_id) or not isinstance(ctx.viewer, StaffViewer):
        raise DomainError(ErrorCode.FORBIDDEN)
    # A store manager serving the member sees their orders at the manager's own stores.
    stores = sorted(ctx.viewer.store_ids)
    return await _page(ctx, statuses, first, after, member_id=member_id, store_ids=stores)


async def store_orders(
    ctx: Context,
    store_id: int,
    *,
    statuses: Sequence[str] | None,
    first: int | None,
    after: str | None,
    sources: Sequence[str] | None = None,
) -> Page[Order]:
    """The order board of a store, for its staff and partners with ``orders:read``:
    newest first, from every source or the ones asked for."""
    require_order_board_reader(ctx.viewer, store_id)
    return await _page(ctx, statuses, first, after, sources=sources, store_id=store_id)


async def _page(
    ctx: Context,
    statuses: Sequence[str] | None,
    first: int | None,
    after: str | None,
    *,
    member_id: int | None = None,
    store_id: int | None = None,
    store_ids: Sequence[int] | None = None,
    sources: Sequence[str] | None = None,
) -> Page[Order]:
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("order", after)
    rows = await ctx.reads.orders_page(
        member_id=member_id,
        store_id=store_id,
        store_ids=store_ids,
        statuses=statuses,
        before_id=before,
        limit=size + 1,
        sources=sources,
    )
    for order in rows:
        ctx.loaders.order.prime(order.id, order)
    return keyset_page(rows, size=size, kind="order", key=lambda o: o.id, after=before)


async def _fresh(ctx: Context, order_id: int) -> Order | None:
    """The order as committed now; loaders are renewed so nested fields are current too."""
    ctx.refresh_loaders()
    return await ctx.loaders.order.load(order_id)


async def order_feed(ctx: Context, order_id: int) -> AsyncIterator[Order]:
    """The order's member (and its store's staff): its state now, then every change."""

    async def visible() -> Order | None:
        order = await _fresh(ctx, order_id)
        if order is None or not can_read_order(ctx.viewer, order.member_id, order.store_id):
            return None
        return order

    missing = DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
    async for order in latest_of(ctx, order_topic(order_id), OrderChanged, visible, missing):
        yield order


async def store_order_feed(ctx: Context, store_id: int) -> AsyncIterator[Order]:
    """The store's staff (and partners with ``orders:read``): every open order now, then
    each new order and status change, from every source."""
    require_order_board_reader(ctx.viewer, store_id)
    if await ctx.loaders.store.load(store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    topics = [store_orders_topic(store_id)]
    box = await ctx.broker.hub.join(topics)
    try:
        seen: dict[int, int] = {}
        snapshot = await ctx.reads.orders_page(
            store_id=store_id,
            statuses=[s.value for s in OPEN],
            before_id=None,
            limit=ctx.settings.max_page_size,
        )
        for order in reversed(snapshot):  # oldest first, as the board fills
            seen[order.id] = order.version
            yield order
        while True:
            events = [e for e in await box.take() if isinstance(e, OrderChanged)]
            ctx.refresh_loaders()
            fresh = await ctx.loaders.order.load_many([e.order_id for e in events])
            for found in fresh:
                if found is None or found.version <= seen.get(found.id, 0):
                    continue
                seen[found.id] = found.version
                yield found
    finally:
        await ctx.broker.hub.leave(topics, box)
