"""Reads of stock: the ledger of a store's SKU and movements by id."""

from __future__ import annotations

from dinegraph.context import Context
from dinegraph.domain.errors import DomainError
from dinegraph.domain.identity import require_stock_reader, require_store_manager
from dinegraph.domain.reads import LedgerRow
from dinegraph.domain.stock import DEFAULT_LOW_STOCK_THRESHOLD, Movement, StockLevel, stock_view
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


async def store_stock(ctx: Context, store_id: int) -> list[StockLevel]:
    """The store's tracked SKUs and made-to-order dishes as its staff manage them."""
    require_store_manager(ctx.viewer, store_id)
    levels = []
    for row in await ctx.reads.store_stock(store_id, None):
        ctx.loaders.sku.prime(row.sku.id, row.sku)  # the read has the SKUs already
        view = stock_view(row.sku, row.available, row.sold_out, row.version)
        threshold = row.low_stock_threshold
        levels.append(
            StockLevel(
                store_id=store_id,
                sku_id=row.sku.id,
                available=view.available,
                sold_out=view.sold_out,
                low_stock_threshold=DEFAULT_LOW_STOCK_THRESHOLD if threshold is None else threshold,
                version=row.version,
            )
        )
    return levels
