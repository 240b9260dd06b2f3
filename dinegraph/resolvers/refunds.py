"""Reads of refunds: an order's, by id, and a store's list of them (its requests to decide)."""

from __future__ import annotations

from collections.abc import Sequence

from dinegraph.context import Context
from dinegraph.domain.identity import can_read_order, require_store_manager
from dinegraph.domain.refunds import Refund, RefundStatus
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


async def visible_refunds(ctx: Context, ids: Sequence[int]) -> list[Refund | None]:
    """Refunds are read by whoever reads their order: its member, its store's staff."""
    found = await ctx.loaders.refund.load_many(list(ids))
    orders = await ctx.loaders.order.load_many([r.order_id for r in found if r is not None])
    readable = {
        o.id
        for o in orders
        if o is not None and can_read_order(ctx.viewer, o.member_id, o.store_id)
    }
    return [r if r is not None and r.order_id in readable else None for r in found]


async def refunds_of_order(ctx: Context, order_id: int) -> list[Refund]:
    """An order's refunds, oldest first (the order itself was checked as visible)."""
    refunds = await ctx.loaders.refunds_of_order.load(order_id)
    for refund in refunds:
        ctx.loaders.refund.prime(refund.id, refund)
    return refunds


async def store_refunds(
    ctx: Context,
    store_id: int,
    *,
    statuses: Sequence[RefundStatus] | None,
    first: int | None,
    after: str | None,
) -> Page[Refund]:
    """The refunds of a store's orders, newest first, for its staff."""
    require_store_manager(ctx.viewer, store_id)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("refund", after)
    rows = await ctx.reads.store_refunds(
        store_id, statuses=statuses, before_id=before, limit=size + 1
    )
    for refund in rows:
        ctx.loaders.refund.prime(refund.id, refund)
    return keyset_page(rows, size=size, kind="refund", key=lambda r: r.id, after=before)
