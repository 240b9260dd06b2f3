"""DataLoaders, made fresh for every request: batching and caching only, no rules."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader

from dinegraph.domain.catalog import Category, Channel, Product, Sku, Store
from dinegraph.domain.coupons import CouponTemplate
from dinegraph.domain.delivery import Delivery
from dinegraph.domain.orders import Order, OrderLine
from dinegraph.domain.reads import ReadModels, StockRow
from dinegraph.domain.refunds import Refund

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _by_key(keys: Sequence[K], found: dict[K, V]) -> list[V | None]:
    return [found.get(key) for key in keys]


def _by_id(items: Sequence[V], key: Callable[[V], int]) -> dict[int, V]:
    return {key(item): item for item in items}


@dataclass(frozen=True, slots=True)
class Loaders:
    store: DataLoader[int, Store | None]
    category: DataLoader[int, Category | None]
    product: DataLoader[int, Product | None]
    sku: DataLoader[int, Sku | None]
    skus_of_product: DataLoader[int, list[Sku]]
    listed_products_on_channel: DataLoader[Channel, list[Product]]
    products_of_category: DataLoader[int, list[Product]]
    store_price: DataLoader[tuple[int, int], int | None]
    stock: DataLoader[tuple[int, int], StockRow | None]
    coupon_template: DataLoader[int, CouponTemplate | None]
    order: DataLoader[int, Order | None]
    order_lines: DataLoader[int, list[OrderLine]]
    pending_orders: DataLoader[int, int]
    delivery: DataLoader[int, Delivery | None]
    delivery_of_order: DataLoader[int, Delivery | None]
    refund: DataLoader[int, Refund | None]
    refunds_of_order: DataLoader[int, list[Refund]]


# Complexity: One small batch function per DataLoader; the count is theirs, not branching.
def make_loaders(reads: ReadModels, *, include_unlisted: bool) -> Loaders:  # noqa: C901
    async def stores(ids: list[int]) -> list[Store | None]:
        return _by_key(ids, _by_id(await reads.stores_by_ids(ids), lambda s: s.id))

    async def categories(ids: list[int]) -> list[Category | None]:
        return _by_key(ids, _by_id(await reads.categories_by_ids(ids), lambda c: c.id))

    async def products(ids: list[int]) -> list[Product | None]:
        return _by_key(ids, _by_id(await reads.products_by_ids(ids), lambda p: p.id))

    async def skus(ids: list[int]) -> list[Sku | None]:
        return _by_key(ids, _by_id(await reads.skus_by_ids(ids), lambda s: s.id))

    async def skus_of_products(ids: list[int]) -> list[list[Sku]]:
        grouped = await reads.skus_by_product_ids(ids)
        return [grouped.get(i, []) for i in ids]

    async def products_on_channels(channels: list[Channel]) -> list[list[Product]]:
        return [await reads.listed_products_on_channel(c) for c in channels]

    async def products_of_categories(ids: list[int]) -> list[list[Product]]:
        grouped = await reads.products_by_category_ids(ids, include_unlisted=include_unlisted)
        return [grouped.get(i, []) for i in ids]

    async def store_prices(pairs: list[tuple[int, int]]) -> list[int | None]:
        return _by_key(pairs, await reads.store_prices(pairs))

    async def stock(pairs: list[tuple[int, int]]) -> list[StockRow | None]:
        return _by_key(pairs, await reads.stock_rows(pairs))

    async def coupon_templates(ids: list[int]) -> list[CouponTemplate | None]:
        return _by_key(ids, _by_id(await reads.templates_by_ids(ids), lambda t: t.id))

    async def orders(ids: list[int]) -> list[Order | None]:
        return _by_key(ids, _by_id(await reads.orders_by_ids(ids), lambda o: o.id))

    async def lines_of_orders(ids: list[int]) -> list[list[OrderLine]]:
        grouped = await reads.order_lines(ids)
        return [grouped.get(i, []) for i in ids]

    async def pending(ids: list[int]) -> list[int]:
        found = await reads.pending_orders(ids)
        return [found.get(i, 0) for i in ids]

    async def deliveries_by_id(ids: list[int]) -> list[Delivery | None]:
        return _by_key(ids, _by_id(await reads.deliveries_by_ids(ids), lambda d: d.id))

    async def deliveries_of_orders(ids: list[int]) -> list[Delivery | None]:
        return _by_key(ids, await reads.latest_deliveries(ids))

    async def refunds(ids: list[int]) -> list[Refund | None]:
        return _by_key(ids, _by_id(await reads.refunds_by_ids(ids), lambda r: r.id))

    async def refunds_of_orders(ids: list[int]) -> list[list[Refund]]:
        grouped = await reads.refunds_of_orders(ids)
        return [grouped.get(i, []) for i in ids]

    return Loaders(
        store=DataLoader(stores),
        category=DataLoader(categories),
        product=DataLoader(products),
        sku=DataLoader(skus),
        skus_of_product=DataLoader(skus_of_products),
        listed_products_on_channel=DataLoader(products_on_channels),
        products_of_category=DataLoader(products_of_categories),
        store_price=DataLoader(store_prices),
        stock=DataLoader(stock),
        coupon_template=DataLoader(coupon_templates),
        order=DataLoader(orders),
        order_lines=DataLoader(lines_of_orders),
        pending_orders=DataLoader(pending),
        delivery=DataLoader(deliveries_by_id),
        delivery_of_order=DataLoader(deliveries_of_orders),
        refund=DataLoader(refunds),
        refunds_of_order=DataLoader(refunds_of_orders),
    )
