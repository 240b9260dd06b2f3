"""Stock levels of the demo chain: reading them, and setting them through the API so that
the ledger agrees."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import skus, stock_levels

from .database import Demo
from .http import graphql, graphql_body
from .ids import global_id
from .processes import cli_value
from .report import BenchError

STORE_ID = 1  # the demo chain's first store, where the stock scenarios sell
SETUP_CONCURRENCY = 8
MAX_STEP = 9_999  # the most one restock or adjustStock moves

Pair = tuple[int, int]  # (store id, SKU id)

RECORD_SALE = (
    "mutation RecordSale($input: RecordSaleInput!) "
    "{ recordSale(input: $input) { sale { id } errors { code } } }"
)
ADJUST_STOCK = (
    "mutation Adjust($input: AdjustStockInput!) "
    "{ adjustStock(input: $input) { movement { id } errors { code } } }"
)
RESTOCK = (
    "mutation Restock($input: RestockInput!) "
    "{ restock(input: $input) { movement { id } errors { code } } }"
)


def record_sale_body(sku_id: int, order: str, store_id: int = STORE_ID) -> bytes:
    """A POS sale of one unit, ``order`` its externalOrderId."""
    line = {"skuId": global_id("Sku", sku_id), "quantity": 1}
    sale = {
        "storeId": global_id("Store", store_id),
        "source": "POS",
        "externalOrderId": order,
        "lines": [line],
    }
    return graphql_body(RECORD_SALE, {"input": sale}, "RecordSale")


@dataclass(frozen=True)
class StoreCredentials:
    api_key: str  # X-Api-Key: stock:write at the store (a POS)
    manager_token: str  # Authorization: Bearer, STORE_MANAGER of the store


def store_credentials(demo: Demo, store_id: int = STORE_ID) -> StoreCredentials:
    store = str(store_id)
    token = cli_value(["staff-token", "--role", "STORE_MANAGER", "--store", store], demo.env)
    key = cli_value(
        ["create-api-key", "--name", "bench-pos", "--scopes", "stock:write", "--store", store],
        demo.env,
    )
    return StoreCredentials(key, token)


async def tracked_sku_ids(engine: AsyncEngine, store_id: int = STORE_ID) -> list[int]:
    """Tracked SKUs that have a counted level at the store, in id order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(skus.c.id)
            .join(
                stock_levels,
                (stock_levels.c.sku_id == skus.c.id) & (stock_levels.c.store_id == store_id),
            )
            .where(skus.c.tracked.is_(True), stock_levels.c.available.is_not(None))
            .order_by(skus.c.id)
        )
        return [int(r.id) for r in rows]


async def levels_of(
    engine: AsyncEngine, sku_ids: list[int], store_id: int = STORE_ID
) -> dict[int, tuple[int, int]]:
    """sku id -> (available, version) at the store."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                stock_levels.c.sku_id, stock_levels.c.available, stock_levels.c.version
            ).where(stock_levels.c.store_id == store_id, stock_levels.c.sku_id.in_(sku_ids))
        )
        return {int(r.sku_id): (int(r.available), int(r.version)) for r in rows}


async def tracked_levels(engine: AsyncEngine) -> dict[Pair, int]:
    """(store, SKU) -> available, for every counted level of a tracked SKU."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(stock_levels.c.store_id, stock_levels.c.sku_id, stock_levels.c.available)
            .join(skus, skus.c.id == stock_levels.c.sku_id)
            .where(skus.c.tracked.is_(True), stock_levels.c.available.is_not(None))
        )
        return {(int(r.store_id), int(r.sku_id)): int(r.available) for r in rows}


async def set_levels(
    base_url: str, token: str, engine: AsyncEngine, wanted: dict[Pair, int]
) -> int:
    """Bring each (store, SKU) to its level through restock (up) or adjustStock (down) as
    a manager of the store (``token``), so the ledger agrees; how many had to change."""
    current = await tracked_levels(engine)
    headers = {"authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(client: httpx.AsyncClient, pair: Pair, delta: int) -> None:
        store, sku = pair
        ids = {"storeId": global_id("Store", store), "skuId": global_id("Sku", sku)}
        async with gate:
            while delta:
                step = max(-MAX_STEP, min(MAX_STEP, delta))
                reference = f"bench-{uuid.uuid4().hex[:16]}"
                if step > 0:
                    query, name = RESTOCK, "restock"
                    values = {**ids, "quantity": step, "reference": reference}
                else:
                    query, name = ADJUST_STOCK, "adjustStock"
                    values = {**ids, "delta": step, "reason": "bench reset", "reference": reference}
                data = await graphql(client, base_url, query, {"input": values}, headers)
                if data[name]["errors"]:
                    raise BenchError(f"{name} {pair} failed: {data[name]['errors']}")
                delta -= step

    changes = {p: level - current.get(p, 0) for p, level in wanted.items()}
    changes = {p: d for p, d in changes.items() if d}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        await asyncio.gather(*(one(client, p, d) for p, d in changes.items()))
    got = await tracked_levels(engine)
    wrong = {p: (got.get(p), level) for p, level in wanted.items() if got.get(p) != level}
    if wrong:
        raise BenchError(f"could not set the levels (got, wanted): {dict(list(wrong.items())[:5])}")
    return len(changes)
