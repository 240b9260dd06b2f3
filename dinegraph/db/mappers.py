"""Rows of the catalog tables to domain objects: stores, categories, products and SKUs.

Shared here because three modules read those tables: the catalog repository, the read
queries and checkout's batched reads (db/checkout.py). Every other aggregate is mapped
next to its repository, in its area's module (``order_of`` in db/orders.py, ``coupon_of``
in db/coupons.py, …), and the read models of ``domain.reads`` where ``db/queries.py``
selects them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
)
from dinegraph.domain.geo import GeoPoint


class Prefixed:
    """The columns of a joined row that were labelled with a prefix, under their own names,
    for a mapper of their table: ``product(Prefixed(row, "p_"), ...)``."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Any, prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def store(row: Any) -> Store:
    return Store(
        id=row.id,
        code=row.code,
        name=row.name,
        address=row.address,
        location=GeoPoint(row.lat, row.lng),
        delivery_radius_m=row.delivery_radius_m,
        opens=row.opens,
        closes=row.closes,
        is_open=row.is_open,
        delivery_provider=row.delivery_provider,
        delivery_platforms=tuple(p for p in (row.delivery_platforms or "").split(",") if p),
        carrier_rule=row.carrier_rule,
    )


def category(row: Any) -> Category:
    return Category(id=row.id, name=row.name, parent_id=row.parent_id, sort=row.sort)


def product(row: Any, channels: Iterable[str]) -> Product:
    return Product(
        id=row.id,
        category_id=row.category_id,
        kind=ProductKind(row.kind),
        name=row.name,
        description=row.description,
        tags=tuple(row.tags),
        image_urls=tuple(row.image_urls),
        channels=frozenset(Channel(c) for c in channels),
        listed=row.listed,
        sort=row.sort,
    )


def sku(row: Any, components: Iterable[ComboComponent] = ()) -> Sku:
    return Sku(
        id=row.id,
        product_id=row.product_id,
        name=row.name,
        specs=dict(row.specs),
        price_fen=row.price_fen,
        tracked=row.tracked,
        sort=row.sort,
        components=tuple(components),
    )
