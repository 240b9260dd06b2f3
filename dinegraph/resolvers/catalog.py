"""Reads of the product centre: nearby stores, one store, a store's menu, nodes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dinegraph.domain.catalog import (
    Category,
    Channel,
    Product,
    Sku,
    Store,
    menu_sections,
    store_price,
    stores_by_distance,
)
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import can_see_unlisted
from dinegraph.domain.reads import StockRow
from dinegraph.domain.stock import StockView, combo_stock_view, stock_view
from dinegraph.resolvers.ids import decode_id
from dinegraph.resolvers.pagination import Page, page_of

if TYPE_CHECKING:
    from dinegraph.context import Context


async def stores_page(
    ctx: Context, *, near: GeoPoint | None, first: int | None, after: str | None
) -> Page[tuple[Store, int | None]]:
    """Every store, nearest first when ``near`` is given, else in id order."""
    stores = await ctx.reads.all_stores()
    for store in stores:
        ctx.loaders.store.prime(store.id, store)
    ranked: list[tuple[Store, int | None]]
    if near is None:
        ranked = [(store, None) for store in stores]
    else:
        ranked = list(stores_by_distance(stores, near))
    return page_of(ranked, first=first, after=after, max_page_size=ctx.settings.max_page_size)


async def store_by_global_id(ctx: Context, global_id: str, field: str = "id") -> Store | None:
    return await ctx.loaders.store.load(decode_id(global_id, "Store", [field]))


async def all_categories(ctx: Context) -> list[Category]:
    """Every category, top level first."""
    return await ctx.reads.all_categories()


async def menu_categories(ctx: Context, channel: Channel) -> list[tuple[Category, list[Product]]]:
    products = await ctx.loaders.listed_products_on_channel.load(channel)
    categories = await ctx.reads.all_categories()
    return menu_sections(categories, products)


async def category_products(ctx: Context, category: Category) -> list[Product]:
    return await ctx.loaders.products_of_category.load(category.id)


async def skus_of(ctx: Context, product: Product) -> list[Sku]:
    return await ctx.loaders.skus_of_product.load(product.id)


async def price_at(ctx: Context, sku: Sku, store_id: int | None) -> int:
    if store_id is None:
        return sku.price_fen
    return store_price(sku, await ctx.loaders.store_price.load((store_id, sku.id)))


async def stock_at(ctx: Context, sku: Sku, store_id: int | None) -> StockView | None:
    if store_id is None:
        return None
    row = await ctx.loaders.stock.load((store_id, sku.id))
    if row is None:
        view = stock_view(sku, None, False, 0)
    else:
        view = stock_view(sku, row.available, row.sold_out, row.version)
    if sku.components:
        view = combo_stock_view(sku, view, await component_stock(ctx, store_id, [sku]))
    return view


async def component_stock(
    ctx: Context,
    store_id: int,
    combos: Iterable[Sku],
    known: Mapping[tuple[int, int], StockRow | None] | None = None,
) -> dict[int, StockView | None]:
    """The stock at a store of every component of these combos, in two batched loads;
    ``known``: stock rows already read (a pair read and absent maps to None)."""
    ids = sorted({part.sku_id for sku in combos for part in sku.components})
    if not ids:
        return {}
    found = await ctx.loaders.sku.load_many(ids)
    pairs = [(store_id, sku_id) for sku_id in ids]
    if known is None:
        rows = await ctx.loaders.stock.load_many(pairs)
    else:
        missing = [pair for pair in pairs if pair not in known]
        loaded = dict(zip(missing, await ctx.loaders.stock.load_many(missing), strict=True))
        rows = [known[pair] if pair in known else loaded[pair] for pair in pairs]
    views: dict[int, StockView | None] = {}
    for sku_id, sku, row in zip(ids, found, rows, strict=True):
        if sku is None:
            views[sku_id] = None
        elif row is None:
            views[sku_id] = stock_view(sku, None, False, 0)
        else:
            views[sku_id] = stock_view(sku, row.available, row.sold_out, row.version)
    return views


async def visible_products(ctx: Context, ids: Iterable[int]) -> list[Product | None]:
    """Products by id; unlisted ones only for staff, as if they did not exist for others."""
    found = await ctx.loaders.product.load_many(list(ids))
    if can_see_unlisted(ctx.viewer):
        return found
    return [p if p is not None and p.listed else None for p in found]


async def visible_skus(ctx: Context, ids: Iterable[int]) -> list[Sku | None]:
    skus = await ctx.loaders.sku.load_many(list(ids))
    products = await visible_products(ctx, [s.product_id if s else 0 for s in skus])
    return [
        s if s is not None and p is not None else None for s, p in zip(skus, products, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class MenuSku:
    sku: Sku
    price_fen: int
    stock: StockView


@dataclass(frozen=True, slots=True)
class MenuProduct:
    product: Product
    skus: list[MenuSku]

    @property
    def on_sale(self) -> bool:
        """Some SKU of it can be ordered at the store now (not sold out, its combo parts
        included): what search and 猜你喜欢 show."""
        return any(not sku.stock.sold_out for sku in self.skus)


async def priced_menu(
    ctx: Context, store_id: int, channel: Channel
) -> list[tuple[Category, list[MenuProduct]]]:
    """A store's menu with every SKU priced and stocked, loaded in batches up front.

    Resolving price and stock per SKU would schedule hundreds of tasks per menu; batching
    here keeps the same six statements and makes those fields plain values.
    """
    sections = await menu_categories(ctx, channel)
    products = [p for _, group in sections for p in group]
    priced = await priced_products(ctx, store_id, products)
    by_product = {p.product.id: p for p in priced}
    return [(c, [by_product[p.id] for p in group]) for c, group in sections]


async def priced_products(
    ctx: Context, store_id: int, products: Sequence[Product]
) -> list[MenuProduct]:
    """Products with every SKU priced and stocked at a store, in five batched reads."""
    # Straight from the batch reads, not key by key through the loaders: a menu has hundreds
    # of SKUs, and each key through a loader costs a future and a callback of its own.
    product_ids = [p.id for p in products]
    grouped = await ctx.reads.skus_by_product_ids(product_ids) if product_ids else {}
    sku_lists = [grouped.get(i, []) for i in product_ids]
    pairs = [(store_id, s.id) for skus in sku_lists for s in skus]
    found_prices = await ctx.reads.store_prices(pairs) if pairs else {}
    found_stock = await ctx.reads.stock_rows(pairs) if pairs else {}
    prices = {pair: found_prices.get(pair) for pair in pairs}
    stocks: dict[tuple[int, int], StockRow | None] = {pair: found_stock.get(pair) for pair in pairs}
    parts = await component_stock(
        ctx, store_id, [s for skus in sku_lists for s in skus], known=stocks
    )

    def priced(sku: Sku) -> MenuSku:
        row = stocks[(store_id, sku.id)]
        view = (
            stock_view(sku, row.available, row.sold_out, row.version)
            if row is not None
            else stock_view(sku, None, False, 0)
        )
        if sku.components:
            view = combo_stock_view(sku, view, parts)
        return MenuSku(sku, store_price(sku, prices[(store_id, sku.id)]), view)

    return [
        MenuProduct(p, [priced(s) for s in skus])
        for p, skus in zip(products, sku_lists, strict=True)
    ]
