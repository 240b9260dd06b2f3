"""Stock rules under real concurrency: many clients at once on the run's database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import stock_ledger, stock_levels
from dinegraph.resolvers.ids import decode_id, encode_id
from tests.conftest import Credentials, GraphQLClient

RECORD_SALE = """
mutation RecordSale($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code message field } }
}
"""
RESTOCK = """mutation($input: RestockInput!) {
  restock(input: $input) { movement { id } errors { code field } } }"""
STORE = encode_id("Store", 1)


async def new_tracked_skus(
    gql: GraphQLClient, credentials: Credentials, stock: int, count: int = 1
) -> list[str]:
    """Fresh retail SKUs with ``stock`` units each at store 1."""
    body = await gql.execute(
        """mutation($input: CreateProductInput!) { createProduct(input: $input) {
            product { skus { id } } errors { code } } }""",
        {
            "input": {
                "categoryId": encode_id("Category", 1),
                "kind": "RETAIL",
                "name": f"限量预制菜{uuid.uuid4().hex[:6]}",
                "channels": ["RETAIL", "DELIVERY"],
                "skus": [{"name": f"规格{i}", "priceFen": 2990} for i in range(count)],
            }
        },
        credentials.hq_admin,
    )
    skus = [s["id"] for s in body["data"]["createProduct"]["product"]["skus"]]
    for sku in skus:
        restocked = await gql.execute(
            RESTOCK,
            {
                "input": {
                    "storeId": STORE,
                    "skuId": sku,
                    "quantity": stock,
                    "reference": f"in-{sku}",
                }
            },
            credentials.manager_store_1,
        )
        assert restocked["data"]["restock"]["errors"] == []
    return skus


def sale(sku_lines: list[tuple[str, int]], order: str, source: str = "POS") -> dict[str, Any]:
    return {
        "input": {
            "storeId": STORE,
            "source": source,
            "externalOrderId": order,
            "lines": [{"skuId": sku, "quantity": qty} for sku, qty in sku_lines],
        }
    }


async def level_and_ledger_sum(engine: AsyncEngine, sku: str) -> tuple[int, int]:
    sku_id = decode_id(sku, "Sku", ["sku"])
    async with engine.connect() as conn:
        level = await conn.scalar(
            sa.select(stock_levels.c.available).where(
                stock_levels.c.store_id == 1, stock_levels.c.sku_id == sku_id
            )
        )
        total = await conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(stock_ledger.c.delta), 0)).where(
                stock_ledger.c.store_id == 1, stock_ledger.c.sku_id == sku_id
            )
        )
    return int(level or 0), int(total or 0)


async def test_200_concurrent_sales_of_50_units_sell_exactly_50(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=50)
    results = await asyncio.gather(
        *(
            gql.execute(RECORD_SALE, sale([(sku, 1)], f"pos-race-{sku}-{i}"), credentials.partner)
            for i in range(200)
        )
    )
    payloads = [r["data"]["recordSale"] for r in results]
    accepted = [p for p in payloads if p["sale"] is not None]
    refused = [p["errors"][0]["code"] for p in payloads if p["sale"] is None]
    assert len(accepted) == 50
    assert refused == ["OUT_OF_STOCK"] * 150
    assert len({p["sale"]["id"] for p in accepted}) == 50
    assert await level_and_ledger_sum(engine, sku) == (0, 0)


async def test_50_concurrent_replays_of_one_sale_change_stock_once(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    variables = sale([(sku, 3)], f"takeaway-replay-{sku}", source="TAKEAWAY")
    results = await asyncio.gather(
        *(gql.execute(RECORD_SALE, variables, credentials.partner) for _ in range(50))
    )
    payloads = [r["data"]["recordSale"] for r in results]
    assert all(p["errors"] == [] for p in payloads)
    assert len({p["sale"]["id"] for p in payloads}) == 1
    assert await level_and_ledger_sum(engine, sku) == (7, 7)


async def test_same_order_id_with_other_lines_is_refused(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    first = await gql.execute(RECORD_SALE, sale([(sku, 1)], f"dup-{sku}"), credentials.partner)
    assert first["data"]["recordSale"]["errors"] == []
    again = await gql.execute(RECORD_SALE, sale([(sku, 2)], f"dup-{sku}"), credentials.partner)
    assert again["data"]["recordSale"] == {
        "sale": None,
        "errors": [
            {
                "code": "IDEMPOTENCY_KEY_REUSED",
                "message": "该单号已用于内容不同的请求",
                "field": ["externalOrderId"],
            }
        ],
    }
    assert await level_and_ledger_sum(engine, sku) == (9, 9)


async def test_crossing_multi_line_sales_never_deadlock(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    a, b = await new_tracked_skus(gql, credentials, stock=60, count=2)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                gql.execute(
                    RECORD_SALE,
                    sale([(a, 1), (b, 1)] if i % 2 else [(b, 1), (a, 1)], f"cross-{a}-{i}"),
                    credentials.partner,
                )
                for i in range(80)
            )
        ),
        timeout=60,
    )
    payloads = [r["data"]["recordSale"] for r in results]
    accepted = sum(1 for p in payloads if p["sale"])
    assert accepted == 60
    assert {p["errors"][0]["code"] for p in payloads if not p["sale"]} == {"OUT_OF_STOCK"}
    assert await level_and_ledger_sum(engine, a) == (0, 0)
    assert await level_and_ledger_sum(engine, b) == (0, 0)


async def test_a_sale_is_all_lines_or_none(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    a, b = await new_tracked_skus(gql, credentials, stock=5, count=2)
    body = await gql.execute(
        RECORD_SALE, sale([(a, 2), (b, 6)], f"partial-{a}"), credentials.partner
    )
    assert body["data"]["recordSale"]["errors"][0]["code"] == "OUT_OF_STOCK"
    assert body["data"]["recordSale"]["errors"][0]["field"] == ["lines", "1", "quantity"]
    assert await level_and_ledger_sum(engine, a) == (5, 5)
    assert await level_and_ledger_sum(engine, b) == (5, 5)
