"""Menu reads: stores, categories, products, SKUs and store prices.

``CatalogReads`` is the catalog part of ``db.queries.ReadQueries`` (which inherits it),
and ``BatchReads`` the engine-and-one-statement base both share."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import mappers
from dinegraph.db.catalog import products_from, select_products, select_skus, skus_from
from dinegraph.db.tables import categories, product_channels, products, skus, store_prices, stores
from dinegraph.domain.catalog import Category, Channel, Product, Sku, Store


class BatchReads:
    """Holds the engine; ``_rows`` runs one statement on a fresh connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, query: sa.Executable) -> Sequence[sa.Row[object]]:
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).all()


class CatalogReads(BatchReads):
    """Catalog and menu reads; every method issues exactly one statement."""

    async def all_stores(self) -> list[Store]:
        return [mappers.store(r) for r in await self._rows(sa.select(stores).order_by(stores.c.id))]

    async def stores_by_ids(self, ids: Sequence[int]) -> list[Store]:
        rows = await self._rows(sa.select(stores).where(stores.c.id.in_(ids)))
        return [mappers.store(r) for r in rows]

    async def categories_by_ids(self, ids: Sequence[int]) -> list[Category]:
        rows = await self._rows(sa.select(categories).where(categories.c.id.in_(ids)))
        return [mappers.category(r) for r in rows]

    async def all_categories(self) -> list[Category]:
        rows = await self._rows(sa.select(categories).order_by(categories.c.sort, categories.c.id))
        return [mappers.category(r) for r in rows]

    async def products_by_ids(self, ids: Sequence[int]) -> list[Product]:
        return await self._products(products.c.id.in_(ids))

    async def products_by_category_ids(
        self, category_ids: Sequence[int], *, include_unlisted: bool
    ) -> dict[int, list[Product]]:
        where: sa.ColumnElement[bool] = products.c.category_id.in_(category_ids)
        if not include_unlisted:
            where = where & products.c.listed.is_(True)
        grouped: dict[int, list[Product]] = defaultdict(list)
        for product in await self._products(where):
            grouped[product.category_id].append(product)
        return grouped

    async def listed_products_on_channel(self, channel: Channel) -> list[Product]:
        """Listed products sold on ``channel``, in menu order."""
        on_channel = sa.exists().where(
            (product_channels.c.product_id == products.c.id)
            & (product_channels.c.channel == channel.value)
        )
        return await self._products(products.c.listed.is_(True) & on_channel)

    async def _products(self, where: sa.ColumnElement[bool]) -> list[Product]:
        return products_from(await self._rows(select_products(where)))

    async def skus_by_ids(self, ids: Sequence[int]) -> list[Sku]:
        return await self._skus(skus.c.id.in_(ids))

    async def skus_by_product_ids(self, product_ids: Sequence[int]) -> dict[int, list[Sku]]:
        grouped: dict[int, list[Sku]] = defaultdict(list)
        for sku in await self._skus(skus.c.product_id.in_(product_ids)):
            grouped[sku.product_id].append(sku)
        return grouped

    async def _skus(self, where: sa.ColumnElement[bool]) -> list[Sku]:
        return skus_from(await self._rows(select_skus(where)))

    async def store_prices(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
        rows = await self._rows(
            sa.select(store_prices).where(
                sa.tuple_(store_prices.c.store_id, store_prices.c.sku_id).in_(pairs)
            )
        )
        return {(r.store_id, r.sku_id): r.price_fen for r in rows}
