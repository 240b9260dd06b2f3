"""The catalog repository: loads and saves product-centre aggregates in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db import mappers
from dinegraph.db.tables import (
    categories,
    combo_components,
    product_channels,
    products,
    search_synonyms,
    skus,
    store_prices,
    stores,
)
from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
)
from dinegraph.domain.stamps import CATALOG, SEARCH, price_stamp

if TYPE_CHECKING:  # search's text libraries load only where search runs
    from dinegraph.domain.search import SynonymSet


class SqlCatalogRepository:
    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        self._conn = conn
        self._moved = moved if moved is not None else set()  # stamps its writes move

    async def get_store(self, store_id: int) -> Store | None:
        row = (await self._conn.execute(sa.select(stores).where(stores.c.id == store_id))).first()
        return mappers.store(row) if row else None

    async def get_category(self, category_id: int) -> Category | None:
        query = sa.select(categories).where(categories.c.id == category_id)
        row = (await self._conn.execute(query)).first()
        return mappers.category(row) if row else None

    async def category_parents(self) -> Mapping[int, int | None]:
        rows = await self._conn.execute(sa.select(categories.c.id, categories.c.parent_id))
        return {row.id: row.parent_id for row in rows}

    async def add_category(self, *, name: str, parent_id: int | None, sort: int) -> Category:
        new_id = await self._insert(categories, name=name, parent_id=parent_id, sort=sort)
        self._moved.add(CATALOG)
        return Category(id=new_id, name=name, parent_id=parent_id, sort=sort)

    async def save_category(self, category: Category) -> None:
        await self._conn.execute(
            categories.update()
            .where(categories.c.id == category.id)
            .values(name=category.name, parent_id=category.parent_id, sort=category.sort)
        )
        self._moved.add(CATALOG)

    async def get_product(self, product_id: int) -> Product | None:
        row = (
            await self._conn.execute(sa.select(products).where(products.c.id == product_id))
        ).first()
        if row is None:
            return None
        channels = await self._conn.scalars(
            sa.select(product_channels.c.channel).where(product_channels.c.product_id == row.id)
        )
        return mappers.product(row, channels)

    async def add_product(
        self,
        *,
        category_id: int,
        kind: ProductKind,
        name: str,
        description: str,
        tags: tuple[str, ...],
        image_urls: tuple[str, ...],
        channels: frozenset[Channel],
        listed: bool,
        sort: int,
    ) -> Product:
        product = Product(
            id=0,
            category_id=category_id,
            kind=kind,
            name=name,
            description=description,
            tags=tags,
            image_urls=image_urls,
            channels=channels,
            listed=listed,
            sort=sort,
        )
        new_id = await self._insert(products, **_product_values(product))
        await self._write_channels(new_id, channels)
        self._moved.add(CATALOG)
        return replace(product, id=new_id)

    async def save_product(self, product: Product) -> None:
        await self._conn.execute(
            products.update().where(products.c.id == product.id).values(**_product_values(product))
        )
        await self._conn.execute(
            product_channels.delete().where(product_channels.c.product_id == product.id)
        )
        await self._write_channels(product.id, product.channels)
        self._moved.add(CATALOG)

    async def get_sku(self, sku_id: int) -> Sku | None:
        row = (await self._conn.execute(sa.select(skus).where(skus.c.id == sku_id))).first()
        if row is None:
            return None
        parts = await self._conn.execute(
            sa.select(combo_components).where(combo_components.c.combo_sku_id == sku_id)
        )
        return mappers.sku(row, (ComboComponent(p.component_sku_id, p.quantity) for p in parts))

    async def skus_with_kinds(self, sku_ids: Iterable[int]) -> dict[int, tuple[Sku, ProductKind]]:
        ids = sorted(set(sku_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(
            sa.select(skus, products.c.kind.label("product_kind"))
            .join(products, products.c.id == skus.c.product_id)
            .where(skus.c.id.in_(ids))
        )
        return {row.id: (mappers.sku(row), ProductKind(row.product_kind)) for row in rows}

    async def next_sku_sort(self, product_id: int) -> int:
        current = await self._conn.scalar(
            sa.select(sa.func.max(skus.c.sort)).where(skus.c.product_id == product_id)
        )
        return 0 if current is None else int(current) + 1

    async def add_sku(
        self,
        *,
        product_id: int,
        name: str,
        specs: Mapping[str, str],
        price_fen: int,
        tracked: bool,
        sort: int,
        components: tuple[ComboComponent, ...],
    ) -> Sku:
        new_id = await self._insert(
            skus,
            product_id=product_id,
            name=name,
            specs=dict(specs),
            price_fen=price_fen,
            tracked=tracked,
            sort=sort,
        )
        await self._write_components(new_id, components)
        self._moved.add(CATALOG)
        return Sku(
            id=new_id,
            product_id=product_id,
            name=name,
            specs=dict(specs),
            price_fen=price_fen,
            tracked=tracked,
            sort=sort,
            components=components,
        )

    async def save_sku(self, sku: Sku) -> None:
        await self._conn.execute(
            skus.update()
            .where(skus.c.id == sku.id)
            .values(name=sku.name, specs=dict(sku.specs), price_fen=sku.price_fen)
        )
        await self._conn.execute(
            combo_components.delete().where(combo_components.c.combo_sku_id == sku.id)
        )
        await self._write_components(sku.id, sku.components)
        self._moved.add(CATALOG)

    async def set_store_price(self, store_id: int, sku_id: int, price_fen: int | None) -> None:
        key = (store_prices.c.store_id == store_id) & (store_prices.c.sku_id == sku_id)
        await self._conn.execute(store_prices.delete().where(key))
        if price_fen is not None:
            await self._conn.execute(
                store_prices.insert().values(store_id=store_id, sku_id=sku_id, price_fen=price_fen)
            )
        self._moved.add(price_stamp(store_id))

    async def save_synonyms(self, entry: SynonymSet, at: datetime) -> None:
        await self._conn.execute(
            search_synonyms.delete().where(search_synonyms.c.term == entry.term)
        )
        if entry.synonyms:
            await self._conn.execute(
                search_synonyms.insert().values(
                    term=entry.term, synonyms=list(entry.synonyms), updated_at=at
                )
            )
        self._moved.add(SEARCH)

    async def _insert(self, table: sa.Table, **values: object) -> int:
        result = await self._conn.execute(table.insert().values(**values).returning(table.c.id))
        return int(result.scalar_one())

    async def _write_channels(self, product_id: int, channels: Iterable[Channel]) -> None:
        rows = [{"product_id": product_id, "channel": c.value} for c in sorted(channels)]
        if rows:
            await self._conn.execute(product_channels.insert(), rows)

    async def _write_components(
        self, combo_sku_id: int, components: Iterable[ComboComponent]
    ) -> None:
        rows = [
            {"combo_sku_id": combo_sku_id, "component_sku_id": c.sku_id, "quantity": c.quantity}
            for c in components
        ]
        if rows:
            await self._conn.execute(combo_components.insert(), rows)


def _product_values(product: Product) -> dict[str, object]:
    return {
        "category_id": product.category_id,
        "kind": product.kind.value,
        "name": product.name,
        "description": product.description,
        "tags": list(product.tags),
        "image_urls": list(product.image_urls),
        "listed": product.listed,
        "sort": product.sort,
    }


def select_products(where: sa.ColumnElement[bool]) -> sa.Select[tuple[object, ...]]:
    """Products with their channels aggregated in, so a page of them is one statement."""
    channel_list = (
        sa.select(sa.func.aggregate_strings(product_channels.c.channel, ","))
        .where(product_channels.c.product_id == products.c.id)
        .scalar_subquery()
    )
    return (
        sa.select(products, channel_list.label("channel_list"))
        .where(where)
        .order_by(products.c.sort, products.c.id)
    )


def products_from(rows: Sequence[sa.Row[object]]) -> list[Product]:
    return [mappers.product(r, r.channel_list.split(",") if r.channel_list else ()) for r in rows]


def select_skus(where: sa.ColumnElement[bool]) -> sa.Select[tuple[object, ...]]:
    """SKUs with their combo components, one row per component."""
    return (
        sa.select(skus, combo_components.c.component_sku_id, combo_components.c.quantity)
        .outerjoin(combo_components, combo_components.c.combo_sku_id == skus.c.id)
        .where(where)
        .order_by(skus.c.product_id, skus.c.sort, skus.c.id, combo_components.c.component_sku_id)
    )


def skus_from(rows: Sequence[sa.Row[object]]) -> list[Sku]:
    by_id: dict[int, tuple[sa.Row[object], list[ComboComponent]]] = {}
    for row in rows:
        entry = by_id.setdefault(row.id, (row, []))
        if row.component_sku_id is not None:
            entry[1].append(ComboComponent(row.component_sku_id, row.quantity))
    return [mappers.sku(row, parts) for row, parts in by_id.values()]
