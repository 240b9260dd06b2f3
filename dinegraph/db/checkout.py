"""What checkout reads: the stores, the lines' SKUs at each store's price, their stock and
the kitchens' load, each in one statement however many lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db import mappers
from dinegraph.db.catalog import products_from, select_products, select_skus, skus_from
from dinegraph.db.tables import (
    products,
    skus,
    stock_levels,
    store_loads,
    store_prices,
    stores,
)
from dinegraph.domain.catalog import store_price
from dinegraph.domain.quotes import Candidates, CatalogItem
from dinegraph.domain.stock import StockView, stock_view


async def read_candidates(
    conn: AsyncConnection, sku_ids: Sequence[int], store_id: int | None
) -> Candidates:
    """Stores, the lines' SKUs at each store's price, their stock and every store's load."""
    store_filter = stores.c.id == store_id if store_id is not None else sa.true()
    store_rows = (await conn.execute(sa.select(stores).where(store_filter))).all()
    found_stores = [mappers.store(r) for r in store_rows]
    found_skus = {
        s.id: s for s in skus_from((await conn.execute(select_skus(skus.c.id.in_(sku_ids)))).all())
    }
    product_ids = {s.product_id for s in found_skus.values()}
    found_products = {
        p.id: p
        for p in products_from(
            (await conn.execute(select_products(products.c.id.in_(product_ids)))).all()
        )
    }
    store_ids = [s.id for s in found_stores]
    overrides: dict[tuple[int, int], int] = {}
    levels: dict[tuple[int, int], Any] = {}
    if found_skus and store_ids:
        for r in await conn.execute(
            sa.select(store_prices).where(
                store_prices.c.sku_id.in_(found_skus), store_prices.c.store_id.in_(store_ids)
            )
        ):
            overrides[(r.store_id, r.sku_id)] = r.price_fen
        for r in await conn.execute(
            sa.select(stock_levels).where(
                stock_levels.c.sku_id.in_(found_skus), stock_levels.c.store_id.in_(store_ids)
            )
        ):
            levels[(r.store_id, r.sku_id)] = r
    load_query = sa.select(store_loads.c.store_id, store_loads.c.pending_orders)
    pending = {r.store_id: r.pending_orders for r in await conn.execute(load_query)}
    items: dict[tuple[int, int], CatalogItem] = {}
    stock: dict[tuple[int, int], StockView] = {}
    for sid in store_ids:
        for sku in found_skus.values():
            product = found_products.get(sku.product_id)
            if product is None:
                continue
            key = (sid, sku.id)
            items[key] = CatalogItem(sku, product, store_price(sku, overrides.get(key)))
            level = levels.get(key)
            if level is not None:
                stock[key] = stock_view(sku, level.available, level.sold_out, level.version)
            elif sku.tracked:
                stock[key] = stock_view(sku, 0, False, 0)  # never stocked here
    return Candidates(found_stores, items, stock, pending)
