"""What checkout reads: the stores with their kitchens' load, the lines' SKUs with their
products, and each store's price and stock of them: three statements however many lines
or stores, each built once."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db import mappers
from dinegraph.db.catalog import skus_from
from dinegraph.db.tables import (
    combo_components,
    product_channels,
    products,
    skus,
    stock_levels,
    store_loads,
    store_prices,
    stores,
)
from dinegraph.domain.catalog import Product, Sku, store_price
from dinegraph.domain.quotes import Candidates, CatalogItem
from dinegraph.domain.stock import StockView, combo_stock_view, stock_view


def _at_stores(pinned: bool) -> sa.ColumnElement[bool]:
    return stores.c.id == sa.bindparam("store_id") if pinned else sa.true()


_LINE_SKUS = skus.c.id.in_(sa.bindparam("sku_ids", expanding=True))


@cache
def _stores(pinned: bool) -> sa.Select[Any]:
    return (
        sa.select(stores, store_loads.c.pending_orders)
        .select_from(stores)
        .outerjoin(store_loads, store_loads.c.store_id == stores.c.id)
        .where(_at_stores(pinned))
        .order_by(stores.c.id)
    )


_CHANNEL_LIST = (
    sa.select(sa.func.aggregate_strings(product_channels.c.channel, ","))
    .where(product_channels.c.product_id == products.c.id)
    .scalar_subquery()
)

# One row per SKU and combo component, each with its product (columns labelled p_...).
_SKUS_WITH_PRODUCTS = (
    sa.select(
        skus,
        combo_components.c.component_sku_id,
        combo_components.c.quantity,
        *(c.label(f"p_{c.name}") for c in products.c),
        _CHANNEL_LIST.label("p_channel_list"),
    )
    .select_from(skus)
    .join(products, products.c.id == skus.c.product_id)
    .outerjoin(combo_components, combo_components.c.combo_sku_id == skus.c.id)
    .where(_LINE_SKUS)
    .order_by(skus.c.product_id, skus.c.sort, skus.c.id, combo_components.c.component_sku_id)
)


@cache
def _prices_and_levels(pinned: bool) -> sa.Select[Any]:
    """Each (store, SKU) with a price of the store's own or a stock level there."""
    return (
        sa.select(
            stores.c.id.label("store_id"),
            skus.c.id.label("sku_id"),
            store_prices.c.price_fen,
            stock_levels.c.sku_id.label("level_sku_id"),
            stock_levels.c.available,
            stock_levels.c.sold_out,
            stock_levels.c.version,
        )
        .select_from(stores)
        .join(skus, sa.true())
        .outerjoin(
            store_prices,
            (store_prices.c.store_id == stores.c.id) & (store_prices.c.sku_id == skus.c.id),
        )
        .outerjoin(
            stock_levels,
            (stock_levels.c.store_id == stores.c.id) & (stock_levels.c.sku_id == skus.c.id),
        )
        .where(
            _at_stores(pinned),
            _LINE_SKUS,
            store_prices.c.price_fen.is_not(None) | stock_levels.c.sku_id.is_not(None),
        )
    )


async def read_candidates(
    conn: AsyncConnection, sku_ids: Sequence[int], store_id: int | None
) -> Candidates:
    """Stores, the lines' SKUs at each store's price, their stock and the stores' load."""
    pinned = store_id is not None
    keys: dict[str, Any] = {"sku_ids": sorted(set(sku_ids))}
    if pinned:
        keys["store_id"] = store_id
    store_rows = (await conn.execute(_stores(pinned), keys)).all()
    found_stores = [mappers.store(r) for r in store_rows]
    pending = {r.id: r.pending_orders for r in store_rows if r.pending_orders is not None}
    sku_rows = (await conn.execute(_SKUS_WITH_PRODUCTS, keys)).all()
    found_skus = skus_from(sku_rows)
    found_products = _products_of(sku_rows)
    overrides: dict[tuple[int, int], int] = {}
    levels: dict[tuple[int, int], Any] = {}
    if found_skus and found_stores:
        for r in await conn.execute(_prices_and_levels(pinned), keys):
            if r.price_fen is not None:
                overrides[(r.store_id, r.sku_id)] = r.price_fen
            if r.level_sku_id is not None:
                levels[(r.store_id, r.sku_id)] = r
    items: dict[tuple[int, int], CatalogItem] = {}
    stock: dict[tuple[int, int], StockView] = {}
    for sid in (s.id for s in found_stores):
        for sku in found_skus:
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
    combos = [sku for sku in found_skus if sku.components]
    if combos and found_stores:
        await _fold_components(conn, keys, combos, [s.id for s in found_stores], stock)
    return Candidates(found_stores, items, stock, pending)


async def _fold_components(
    conn: AsyncConnection,
    keys: dict[str, Any],
    combos: Sequence[Sku],
    store_ids: Sequence[int],
    stock: dict[tuple[int, int], StockView],
) -> None:
    """A combo is sold out at a store where a component is (two statements more, only for
    carts with combos): its view in ``stock`` says so, and routing and the lines follow."""
    part_ids = sorted({part.sku_id for combo in combos for part in combo.components})
    part_keys = {**keys, "sku_ids": part_ids}
    parts = {s.id: s for s in skus_from((await conn.execute(_SKUS_WITH_PRODUCTS, part_keys)).all())}
    levels = {
        (r.store_id, r.sku_id): r
        for r in await conn.execute(_prices_and_levels("store_id" in keys), part_keys)
        if r.level_sku_id is not None
    }
    for sid in store_ids:
        views: dict[int, StockView | None] = {}
        for part_id, part in parts.items():
            level = levels.get((sid, part_id))
            if level is not None:
                views[part_id] = stock_view(part, level.available, level.sold_out, level.version)
            elif part.tracked:
                views[part_id] = stock_view(part, 0, False, 0)
        for combo in combos:
            own = stock.get((sid, combo.id)) or stock_view(combo, None, False, 0)
            folded = combo_stock_view(combo, own, views)
            if folded is not own:
                stock[(sid, combo.id)] = folded


def _products_of(rows: Sequence[Any]) -> dict[int, Product]:
    found: dict[int, Product] = {}
    for r in rows:
        if r.p_id not in found:
            channels = r.p_channel_list.split(",") if r.p_channel_list else ()
            found[r.p_id] = mappers.product(mappers.Prefixed(r, "p_"), channels)
    return found
