"""The menu and the store list, read through the real schema on a real database."""

from __future__ import annotations

import asyncio
import re
from datetime import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from dinegraph.app import create_app
from dinegraph.db.engine import WRITE, create_engine
from dinegraph.db.tables import stock_levels, stores
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain import catalog as domain
from dinegraph.domain.identity import StaffRole, StaffViewer
from dinegraph.domain.services import catalog as service
from dinegraph.resolvers.ids import encode_id
from tests.conftest import GraphQLClient, make_settings
from tests.databases import fresh_database

MENU = """
query Menu($storeId: ID!, $channel: Channel!) {
  menu(storeId: $storeId, channel: $channel) {
    store { id name }
    categories {
      id name parent { name }
      products {
        id name kind tags channels
        skus {
          id name specs { name value } price { fen display } stock { available soldOut }
          components { quantity sku { name } }
        }
      }
    }
  }
}
"""

HQ = StaffViewer(staff_id=0, username="hq", role=StaffRole.HQ_ADMIN, store_ids=frozenset())


async def _build_catalog(url: str, *, categories: int, products: int, skus: int) -> str:
    """A store and a catalog of the given size; returns the store's global id."""
    engine = create_engine(make_settings(url), url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                store_id = (
                    await conn.execute(
                        stores.insert()
                        .values(
                            code="T-1",
                            name="测试店",
                            address="深圳",
                            lat=22.5,
                            lng=114.0,
                            delivery_radius_m=5000,
                            opens=time(10, 0),
                            closes=time(22, 0),
                            is_open=True,
                        )
                        .returning(stores.c.id)
                    )
                ).scalar_one()
        for c in range(categories):
            category = await service.create_category(
                domain.CreateCategory(name=f"分类{c}"), uow=SqlUnitOfWork(engine), viewer=HQ
            )
            for p in range(products):
                kind = domain.ProductKind.RETAIL if p % 2 else domain.ProductKind.DISH
                _, new_skus = await service.create_product(
                    domain.CreateProduct(
                        category_id=category.id,
                        kind=kind,
                        name=f"菜品{c}-{p}",
                        channels=frozenset({domain.Channel.DELIVERY}),
                        skus=tuple(
                            domain.NewSku(name=f"规格{s}", price_fen=1000 + s) for s in range(skus)
                        ),
                    ),
                    uow=SqlUnitOfWork(engine),
                    viewer=HQ,
                )
                tracked = [s for s in new_skus if s.tracked]
                if tracked:
                    async with engine.connect() as conn:
                        await conn.execution_options(**{WRITE: True})
                        async with conn.begin():
                            await conn.execute(
                                stock_levels.insert(),
                                [
                                    {
                                        "store_id": store_id,
                                        "sku_id": s.id,
                                        "available": 7,
                                        "sold_out": False,
                                        "low_stock_threshold": 1,
                                        "version": 1,
                                    }
                                    for s in tracked
                                ],
                            )
    finally:
        await engine.dispose()
    return encode_id("Store", int(store_id))


async def _statements_for_menu(url: str, store_gid: str) -> tuple[int, int]:
    """(SQL statements, SKUs) of one menu request, as the server reports them."""
    settings = make_settings(url, server_timing=True)
    engine = create_engine(settings)
    try:
        app = create_app(settings, engine)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.post(
                "/graphql",
                json={"query": MENU, "variables": {"storeId": store_gid, "channel": "DELIVERY"}},
            )
    finally:
        await engine.dispose()
    body = response.json()
    assert "errors" not in body, body
    skus = sum(len(p["skus"]) for c in body["data"]["menu"]["categories"] for p in c["products"])
    match = re.fullmatch(r'db;desc="(\d+) statements"', response.headers["server-timing"])
    assert match, response.headers
    return int(match.group(1)), skus


def test_menu_runs_the_same_number_of_statements_whatever_its_size(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as small_url, fresh_database(tmp_path) as large_url:
        small_store = asyncio.run(_build_catalog(small_url, categories=1, products=1, skus=1))
        large_store = asyncio.run(_build_catalog(large_url, categories=12, products=10, skus=3))
        small, small_skus = asyncio.run(_statements_for_menu(small_url, small_store))
        large, large_skus = asyncio.run(_statements_for_menu(large_url, large_store))
    assert (small_skus, large_skus) == (1, 360)
    assert small == large
    assert small <= 8


async def test_nearby_stores_are_ordered_by_distance(gql: GraphQLClient) -> None:
    body = await gql.execute(
        """query($near: GeoPointInput) { stores(near: $near, first: 100) {
            totalCount edges { node { id name distanceMeters } } } }""",
        {"near": {"lat": 22.5431, "lng": 114.0579}},
    )
    edges = body["data"]["stores"]["edges"]
    distances = [e["node"]["distanceMeters"] for e in edges]
    assert len(edges) == body["data"]["stores"]["totalCount"] >= 8
    assert distances == sorted(distances)
    assert distances[0] < 2000  # a store is close to Futian CBD


async def test_stores_page_through_with_cursors(gql: GraphQLClient) -> None:
    query = """query($after: String) { stores(first: 3, after: $after) {
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = (await gql.execute(query, {"after": after}))["data"]["stores"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) >= 8


async def test_page_size_is_capped(gql: GraphQLClient) -> None:
    body = await gql.execute("{ stores(first: 101) { edges { node { id } } } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def test_invalid_coordinates_are_refused(gql: GraphQLClient) -> None:
    body = await gql.execute("{ stores(near: {lat: 95, lng: 114}) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "INVALID_COORDINATES"


async def test_menu_shows_listed_products_of_the_channel_with_store_prices_and_stock(
    gql: GraphQLClient,
) -> None:
    store = encode_id("Store", 1)
    delivery = (await gql.execute(MENU, {"storeId": store, "channel": "DELIVERY"}))["data"]
    dine_in = (await gql.execute(MENU, {"storeId": store, "channel": "DINE_IN"}))["data"]
    products = [p for c in delivery["menu"]["categories"] for p in c["products"]]
    names = {p["name"] for p in products}
    assert all("DELIVERY" in p["channels"] for p in products)
    assert "冬至羊肉煲" not in names  # unlisted in the demo chain
    assert "火焰醉鹅" not in names  # dine-in only
    assert "火焰醉鹅" in {p["name"] for c in dine_in["menu"]["categories"] for p in c["products"]}
    skus = [(p["kind"], s) for p in products for s in p["skus"]]
    retail = [s for kind, s in skus if kind == "RETAIL"]
    dishes = [s for kind, s in skus if kind == "DISH"]
    assert retail and all(isinstance(s["stock"]["available"], int) for s in retail)
    assert dishes and all(s["stock"]["available"] is None for s in dishes)
    assert all(
        s["price"]["display"] == f"¥{s['price']['fen'] // 100}.{s['price']['fen'] % 100:02d}"
        for _, s in skus
    )
    combos = [s for kind, s in skus if kind == "COMBO"]
    assert combos and all(s["components"] for s in combos)


async def test_menu_of_an_unknown_store_is_null_and_a_wrong_id_is_an_error(
    gql: GraphQLClient,
) -> None:
    missing = await gql.execute(MENU, {"storeId": encode_id("Store", 99999), "channel": "DELIVERY"})
    assert missing["data"]["menu"] is None
    wrong = await gql.execute(MENU, {"storeId": encode_id("Product", 1), "channel": "DELIVERY"})
    assert wrong["errors"][0]["extensions"] == {"code": "INVALID_ID", "field": ["storeId"]}


async def test_store_price_override_applies_only_at_that_store(gql: GraphQLClient) -> None:
    query = """query($id: ID!, $store: ID!) {
      node(id: $id) { ... on Sku { basePrice { fen } } }
      menu(storeId: $store, channel: DELIVERY) {
        categories { products { skus { id price { fen } } } }
      }
    }"""
    # The demo chain's CBD store (id 1) charges 2 yuan more on the first SKUs.
    sku_id = encode_id("Sku", 1)
    at = {}
    for store in (1, 2):
        data = (await gql.execute(query, {"id": sku_id, "store": encode_id("Store", store)}))[
            "data"
        ]
        prices = {
            s["id"]: s["price"]["fen"]
            for c in data["menu"]["categories"]
            for p in c["products"]
            for s in p["skus"]
        }
        at[store] = prices[sku_id]
        base = data["node"]["basePrice"]["fen"]
    assert at == {1: base + 200, 2: base}


async def test_nodes_resolve_in_order_and_hide_unlisted_products_from_customers(
    gql: GraphQLClient, credentials: object
) -> None:
    from tests.conftest import Credentials

    assert isinstance(credentials, Credentials)
    body = await gql.execute("""{ categories { id } }""")
    category = body["data"]["categories"][0]["id"]
    unlisted = await gql.execute(
        """query { all: categories { products { id name listed } } }""",
        headers=credentials.hq_admin,
    )
    hidden = next(
        p["id"] for c in unlisted["data"]["all"] for p in c["products"] if not p["listed"]
    )
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"""
    ids = [encode_id("Store", 2), category, hidden, encode_id("Store", 99999)]
    anonymous = (await gql.execute(query, {"ids": ids}))["data"]["nodes"]
    staff = (await gql.execute(query, {"ids": ids}, headers=credentials.hq_admin))["data"]["nodes"]
    assert [n and n["__typename"] for n in anonymous] == ["Store", "Category", None, None]
    assert [n and n["__typename"] for n in staff] == ["Store", "Category", "Product", None]


async def test_store_count_matches_the_table(gql: GraphQLClient, engine: object) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(stores))
    body = await gql.execute("{ stores { totalCount } }")
    assert body["data"]["stores"]["totalCount"] == count
