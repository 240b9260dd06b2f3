"""Reads of stock: the ledger of a store's SKU and movements by id."""

from __future__ import annotations

from dinegraph.context import Context
from dinegraph.domain.errors import DomainError
from dinegraph.domain.identity import require_stock_reader
from dinegraph.domain.reads import LedgerRow
from dinegraph.domain.stock import Movement
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


async def ledger_page(
    ctx: Context, *, store_id: int, sku_id: int | None, first: int | None, after: str | None
) -> Page[LedgerRow]:
    """Newest first; pages by row id, so rows added meanwhile never shift a page."""
    require_stock_reader(ctx.viewer, store_id)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("ledger", after)
    rows = await ctx.reads.ledger_rows(
        store_id=store_id, sku_id=sku_id, before_id=before, limit=size + 1
    )
    return keyset_page(rows, size=size, kind="ledger", key=lambda r: r.id, after=before)


async def visible_movements(ctx: Context, ids: list[int]) -> list[Movement | None]:
    found = {m.id: m for m in await ctx.reads.movements_by_ids(ids)}
    visible: list[Movement | None] = []
    for movement_id in ids:
        movement = found.get(movement_id)
        try:
            if movement is not None:
                require_stock_reader(ctx.viewer, movement.store_id)
        except DomainError:
            movement = None
        visible.append(movement)
    return visible
