"""The floor for the StoreMenu benchmark: the same SQL, the same JSON, no GraphQL.

Not part of the product. One route, ``GET|POST /menu?storeId=<Store global ID>``, runs the
statements dinegraph runs for the StoreMenu query (same tables, same SQLAlchemy Core
statements, same engine settings, one pooled connection per statement as the product's
``ReadQueries`` does, and the price and stock reads concurrently as the product's
DataLoaders do; a combo's components' SKUs and stock afterwards, as the product reads them),
maps the rows to the product's domain objects, reuses its pure functions (``menu_sections``,
``store_price``, ``stock_view``, ``combo_stock_view``, ``display_fen``) and answers with the
bytes the GraphQL endpoint answers: ``{"data": {"menu": ...}}`` encoded by orjson. What is
left out is exactly Strawberry: parsing and validating the query, the resolver tree, the
DataLoaders and the result's field-by-field completion.

Like the product it adds ``server-timing: db;desc="N statements"`` to each answer.

Run it (the bench does) with the product's ``DINEGRAPH_*`` environment::

    python bench/menu_floor.py --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from harness.floor import serve
from harness.ids import global_id
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dinegraph.db.engine import counting, create_engine
from dinegraph.db.tables import (
    categories,
    combo_components,
    product_channels,
    products,
    skus,
    stock_levels,
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
    menu_sections,
    store_price,
)
from dinegraph.domain.errors import DomainError
from dinegraph.domain.money import display_fen
from dinegraph.domain.stock import StockView, combo_stock_view, stock_view
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings

CHANNEL = Channel.DELIVERY  # the contract query asks for DELIVERY


# --- the statements, built as dinegraph.db.queries builds them ----------------------


def store_query(store_id: int) -> sa.Select[Any]:
    return sa.select(stores).where(stores.c.id.in_([store_id]))


def listed_products_query(channel: Channel) -> sa.Select[Any]:
    on_channel = sa.exists().where(
        (product_channels.c.product_id == products.c.id)
        & (product_channels.c.channel == channel.value)
    )
    channel_list = (
        sa.select(sa.func.aggregate_strings(product_channels.c.channel, ","))
        .where(product_channels.c.product_id == products.c.id)
        .scalar_subquery()
    )
    return (
        sa.select(products, channel_list.label("channel_list"))
        .where(products.c.listed.is_(True) & on_channel)
        .order_by(products.c.sort, products.c.id)
    )


def categories_query() -> sa.Select[Any]:
    return sa.select(categories).order_by(categories.c.sort, categories.c.id)


def _skus(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return (
        sa.select(skus, combo_components.c.component_sku_id, combo_components.c.quantity)
        .outerjoin(combo_components, combo_components.c.combo_sku_id == skus.c.id)
        .where(where)
        .order_by(skus.c.product_id, skus.c.sort, skus.c.id, combo_components.c.component_sku_id)
    )


def skus_query(product_ids: Sequence[int]) -> sa.Select[Any]:
    return _skus(skus.c.product_id.in_(product_ids))


def skus_by_id_query(sku_ids: Sequence[int]) -> sa.Select[Any]:
    """A combo's components, by id (the product's ``sku`` DataLoader)."""
    return _skus(skus.c.id.in_(sku_ids))


def store_prices_query(pairs: Sequence[tuple[int, int]]) -> sa.Select[Any]:
    return sa.select(store_prices).where(
        sa.tuple_(store_prices.c.store_id, store_prices.c.sku_id).in_(pairs)
    )


def stock_query(pairs: Sequence[tuple[int, int]]) -> sa.Select[Any]:
    return sa.select(stock_levels).where(
        sa.tuple_(stock_levels.c.store_id, stock_levels.c.sku_id).in_(pairs)
    )


async def rows(engine: AsyncEngine, query: sa.Executable) -> Sequence[sa.Row[Any]]:
    async with engine.connect() as conn:
        return (await conn.execute(query)).all()


# --- rows to domain objects, as dinegraph.db.mappers does --------------------------------


def to_product(row: Any) -> Product:
    return Product(
        id=row.id,
        category_id=row.category_id,
        kind=ProductKind(row.kind),
        name=row.name,
        description=row.description,
        tags=tuple(row.tags),
        image_urls=tuple(row.image_urls),
        channels=frozenset(Channel(c) for c in row.channel_list.split(","))
        if row.channel_list
        else frozenset(),
        listed=row.listed,
        sort=row.sort,
    )


def to_category(row: Any) -> Category:
    return Category(id=row.id, name=row.name, parent_id=row.parent_id, sort=row.sort)


def to_skus(sku_rows: Sequence[Any]) -> dict[int, list[Sku]]:
    """SKUs by product id, in query order; a combo's components arrive one row each."""
    by_id: dict[int, tuple[Any, list[ComboComponent]]] = {}
    for row in sku_rows:
        entry = by_id.setdefault(row.id, (row, []))
        if row.component_sku_id is not None:
            entry[1].append(ComboComponent(row.component_sku_id, row.quantity))
    grouped: dict[int, list[Sku]] = {}
    for row, parts in by_id.values():
        grouped.setdefault(row.product_id, []).append(
            Sku(
                id=row.id,
                product_id=row.product_id,
                name=row.name,
                specs=dict(row.specs),
                price_fen=row.price_fen,
                tracked=row.tracked,
                sort=row.sort,
                components=tuple(parts),
            )
        )
    return grouped


# --- the menu ----------------------------------------------------------------------------


async def menu(engine: AsyncEngine, store_id: int) -> dict[str, Any] | None:
    store_rows = await rows(engine, store_query(store_id))
    if not store_rows:
        return None
    store = store_rows[0]
    listed = [to_product(r) for r in await rows(engine, listed_products_query(CHANNEL))]
    sections = menu_sections(
        [to_category(r) for r in await rows(engine, categories_query())], listed
    )
    product_ids = [p.id for _, section in sections for p in section]
    skus_of = to_skus(await rows(engine, skus_query(product_ids))) if product_ids else {}
    pairs = [(store_id, s.id) for pid in product_ids for s in skus_of.get(pid, [])]
    prices: dict[tuple[int, int], int] = {}
    stock: dict[tuple[int, int], Any] = {}
    if pairs:
        price_rows, stock_rows = await asyncio.gather(
            rows(engine, store_prices_query(pairs)), rows(engine, stock_query(pairs))
        )
        prices = {(r.store_id, r.sku_id): r.price_fen for r in price_rows}
        stock = {(r.store_id, r.sku_id): r for r in stock_rows}

    def level_view(sku: Sku, levels: dict[tuple[int, int], Any]) -> StockView:
        level = levels.get((store_id, sku.id))
        if level is None:
            return stock_view(sku, None, False, 0)
        return stock_view(sku, level.available, level.sold_out, level.version)

    # A combo is sold out where a component is: the components' SKUs by id, and their
    # stock where the menu's own read did not already bring it (the DataLoaders' cache).
    part_ids = sorted(
        {c.sku_id for pid in product_ids for sku in skus_of.get(pid, []) for c in sku.components}
    )
    parts: dict[int, StockView | None] = {}
    if part_ids:
        part_skus = {
            sku.id: sku
            for group in to_skus(await rows(engine, skus_by_id_query(part_ids))).values()
            for sku in group
        }
        read = set(pairs)
        unread = [(store_id, sku_id) for sku_id in part_ids if (store_id, sku_id) not in read]
        if unread:
            stock.update(
                {(r.store_id, r.sku_id): r for r in await rows(engine, stock_query(unread))}
            )
        for sku_id in part_ids:
            part = part_skus.get(sku_id)
            parts[sku_id] = None if part is None else level_view(part, stock)

    def sku_json(sku: Sku) -> dict[str, Any]:
        fen = store_price(sku, prices.get((store_id, sku.id)))
        view = level_view(sku, stock)
        if sku.components:
            view = combo_stock_view(sku, view, parts)
        return {
            "id": global_id("Sku", sku.id),
            "name": sku.name,
            "price": {"fen": fen, "display": display_fen(fen)},
            "stock": {"available": view.available, "soldOut": view.sold_out},
        }

    return {
        "store": {"id": global_id("Store", store.id), "name": store.name},
        "categories": [
            {
                "id": global_id("Category", category.id),
                "name": category.name,
                "products": [
                    {
                        "id": global_id("Product", product.id),
                        "name": product.name,
                        "kind": product.kind.value,
                        "tags": list(product.tags),
                        "skus": [sku_json(s) for s in skus_of.get(product.id, [])],
                    }
                    for product in section
                ],
            }
            for category, section in sections
        ],
    }


async def menu_endpoint(request: Request) -> Response:
    counter = counting()
    try:
        store_id = decode_id(request.query_params.get("storeId", ""), "Store", ["storeId"])
    except DomainError:
        return JSONResponse({"error": "storeId must be a Store global ID"}, status_code=400)
    body = orjson.dumps({"data": {"menu": await menu(request.app.state.engine, store_id)}})
    return Response(
        body,
        media_type="application/json",
        headers={"server-timing": f'db;desc="{counter.count} statements"'},
    )


async def health(request: Request) -> Response:
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    engine = create_engine(Settings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    app = Starlette(
        routes=[
            Route("/menu", menu_endpoint, methods=["GET", "POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app


if __name__ == "__main__":
    serve(create_app, __doc__.splitlines()[0], port=8001)
