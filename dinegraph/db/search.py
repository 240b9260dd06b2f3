"""What product search reads (the catalogue, synonyms, units sold) and writes (misses)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.catalog import products_from, select_products
from dinegraph.db.engine import WRITE
from dinegraph.db.tables import (
    categories,
    order_lines,
    orders,
    products,
    search_misses,
    search_synonyms,
    skus,
)
from dinegraph.domain.catalog import Product
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.search import (
    MISSES_KEPT,
    SearchDocument,
    SearchMiss,
    SynonymEntry,
    SynonymSet,
)

# Orders whose lines were sold: paid, whatever became of them since, unless given back.
_SOLD = [
    s.value
    for s in OrderStatus
    if s not in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED, OrderStatus.REFUNDED)
]


class SqlSearchReads:
    def __init__(self, engine: AsyncEngine, *, misses_kept: int = MISSES_KEPT) -> None:
        self._engine = engine
        self._misses_kept = misses_kept

    async def catalogue(self) -> tuple[list[SearchDocument], list[SynonymSet]]:
        async with self._engine.connect() as conn:
            listed = products_from(
                (await conn.execute(select_products(products.c.listed.is_(True)))).all()
            )
            parents = {
                r.id: (r.name, r.parent_id)
                for r in await conn.execute(
                    sa.select(categories.c.id, categories.c.name, categories.c.parent_id)
                )
            }
            sku_names: dict[int, list[str]] = defaultdict(list)
            for row in await conn.execute(
                sa.select(skus.c.product_id, skus.c.name).order_by(skus.c.sort, skus.c.id)
            ):
                sku_names[row.product_id].append(row.name)
            synonyms = [entry.synonyms for entry in await _synonym_entries(conn)]
        documents = [
            SearchDocument(
                product_id=p.id,
                name=p.name,
                description=p.description,
                tags=p.tags,
                categories=_category_chain(parents, p.category_id),
                sku_names=tuple(sku_names[p.id]),
                channels=p.channels,
                sort=p.sort,
            )
            for p in listed
        ]
        return documents, synonyms

    async def units_sold(self, store_id: int, since: datetime) -> dict[int, int]:
        units = sa.func.sum(order_lines.c.quantity - order_lines.c.refunded_quantity)
        query = (
            sa.select(order_lines.c.product_id, units.label("units"))
            .join(orders, orders.c.id == order_lines.c.order_id)
            .where(
                orders.c.store_id == store_id,
                orders.c.status.in_(_SOLD),
                orders.c.placed_at >= since,
            )
            .group_by(order_lines.c.product_id)
        )
        async with self._engine.connect() as conn:
            return {r.product_id: int(r.units or 0) for r in await conn.execute(query)}

    async def record_miss(self, store_id: int, query: str, at: datetime) -> None:
        make = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = make(search_misses).values(
            store_id=store_id, query=query, count=1, first_seen_at=at, last_seen_at=at
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["store_id", "query"],
            set_={"count": search_misses.c.count + 1, "last_seen_at": at},
        ).returning(search_misses.c.count)
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                count = await conn.scalar(upsert)
                if count == 1:  # a new row: the table may have passed its bound
                    await _forget_beyond_bound(conn, self._misses_kept)

    async def misses(self, limit: int) -> list[SearchMiss]:
        query = (
            sa.select(
                search_misses.c.store_id,
                search_misses.c.query,
                search_misses.c.count.label("times"),  # Row.count is a tuple's method
                search_misses.c.first_seen_at,
                search_misses.c.last_seen_at,
            )
            .order_by(
                search_misses.c.count.desc(),
                search_misses.c.last_seen_at.desc(),
                search_misses.c.id,
            )
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            SearchMiss(r.store_id, r.query, r.times, r.first_seen_at, r.last_seen_at) for r in rows
        ]

    async def synonym_entries(self) -> list[SynonymEntry]:
        async with self._engine.connect() as conn:
            return await _synonym_entries(conn)

    async def products_named(
        self, fragment: str, *, after_id: int | None, limit: int
    ) -> list[Product]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select_products_named(fragment, after_id, limit))).all()
        return products_from(rows)


LIKE_ESCAPE = "\\"


def contains_pattern(fragment: str) -> str:
    """A LIKE pattern matching names that hold ``fragment`` as typed: its ``%``, ``_`` and
    escape characters are escaped, not wildcards."""
    escaped = (
        fragment.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def select_products_named(
    fragment: str, after_id: int | None, limit: int
) -> sa.Select[tuple[object, ...]]:
    """Products whose name holds ``fragment``, any letter case, by id: ``ILIKE '%…%'`` on
    PostgreSQL, which the trigram index ``ix_products_name_trgm`` serves; on SQLite
    ``lower(name) LIKE lower(…)``, a scan (ASCII letters folded)."""
    where: sa.ColumnElement[bool] = products.c.name.ilike(
        contains_pattern(fragment), escape=LIKE_ESCAPE
    )
    if after_id is not None:
        where = sa.and_(where, products.c.id > after_id)
    return select_products(where).order_by(None).order_by(products.c.id).limit(limit)


async def _synonym_entries(conn: AsyncConnection) -> list[SynonymEntry]:
    rows = await conn.execute(sa.select(search_synonyms).order_by(search_synonyms.c.term))
    return [SynonymEntry(SynonymSet(r.term, tuple(r.synonyms)), r.updated_at) for r in rows]


async def _forget_beyond_bound(conn: AsyncConnection, kept_most: int) -> None:
    count = await conn.scalar(sa.select(sa.func.count()).select_from(search_misses))
    if count is None or count <= kept_most:
        return
    kept = (
        sa.select(search_misses.c.id)
        .order_by(search_misses.c.last_seen_at.desc(), search_misses.c.id.desc())
        .limit(kept_most)
    )
    await conn.execute(search_misses.delete().where(search_misses.c.id.not_in(kept)))


def _category_chain(
    parents: dict[int, tuple[str, int | None]], category_id: int
) -> tuple[str, ...]:
    """A category's name and those above it (bounded: the tree has no cycles, but a row
    written outside the product centre might)."""
    names: list[str] = []
    current: int | None = category_id
    while current is not None and current in parents and len(names) < 8:
        name, current = parents[current]
        names.append(name)
    return tuple(names)
