"""The pools have no overflow (``DINEGRAPH_SQLITE_POOL_SIZE``, ``DINEGRAPH_DATABASE_POOL_SIZE``):
a request beyond them waits for a connection. That is safe only while no task holds a
connection and waits for another; on a pool of one, such a task would wait for itself. The
busy paths run here on one, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import create_engine
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.integration.test_read_cache import MENU, RECORD_SALE
from tests.integration.test_recommendations import RECOMMEND
from tests.integration.test_search import SEARCH
from tests.integration.test_write_statements import PLACE
from tests.shop import line, new_member, new_shop, new_sku, place_input, shop_client

STORES = "{ stores(first: 5) { edges { node { id name isOpen } } } }"
CAMPAIGNS = "query($store: ID!) { campaigns(storeId: $store) { id name state } }"
MY_ORDERS = "{ viewer { member { id orders(first: 5) { edges { node { id status } } } } } }"
STOCK = "query($store: ID!) { storeStock(storeId: $store) { available sku { id name } } }"


async def test_the_busy_paths_run_on_a_pool_of_one_connection(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store_id,) = shop.store_ids
    store = shop.store()
    sku = await new_sku(engine, price_fen=1800, stock={store_id: 500})
    _, member = await new_member(settings, engine)
    one = settings.model_copy(update={"sqlite_pool_size": 1, "database_pool_size": 1})
    small = create_engine(one)
    assert small.pool.size() == 1 and small.pool._max_overflow == 0  # type: ignore[attr-defined]
    try:
        async with shop_client(one, small) as (client, _):

            async def ok(query: str, variables: dict[str, Any], who: dict[str, str]) -> Any:
                # Far below the pool's own 30 s: a task waiting for itself fails here.
                body = await asyncio.wait_for(client.execute(query, variables, who), 15)
                assert "errors" not in body, body
                return body["data"]

            sale = {
                "storeId": store,
                "source": "POS",
                "externalOrderId": f"nest-{uuid.uuid4().hex}",
                "lines": [line(sku, 1)],
            }
            place = place_input(line(sku, 1), channel="PICKUP", store=store)
            asked: list[tuple[str, dict[str, Any], dict[str, str]]] = [
                (MENU, {"store": store}, {}),
                (STORES, {}, {}),
                (CAMPAIGNS, {"store": store}, {}),
                (SEARCH, {"q": "测试", "store": store, "channel": "PICKUP"}, {}),
                (RECOMMEND, {"scene": "HOME", "store": store}, member),
                (MY_ORDERS, {}, member),
                (STOCK, {"store": store}, credentials.hq_admin),
                (RECORD_SALE, {"input": sale}, credentials.hq_admin),
                (PLACE, {"input": place}, member),
            ]
            for query, variables, who in asked:  # each alone
                await ok(query, variables, who)
            # and all at once, twice over: they queue for the one connection
            again = [
                (q, {"input": {**v["input"], **_fresh(v["input"])}} if "input" in v else v, w)
                for q, v, w in asked * 2
            ]
            answers = await asyncio.gather(*(ok(q, v, w) for q, v, w in again))
            assert len(answers) == len(again)
            sold = [a["recordSale"] for a in answers if "recordSale" in a]
            placed = [a["placeOrder"] for a in answers if "placeOrder" in a]
            assert all(s["errors"] == [] for s in sold) and len(sold) == 2
            assert all(p["errors"] == [] for p in placed) and len(placed) == 2
    finally:
        await small.dispose()


def _fresh(values: dict[str, Any]) -> dict[str, Any]:
    """New idempotency keys, so a write asked again is a new write."""
    if "externalOrderId" in values:
        return {"externalOrderId": f"nest-{uuid.uuid4().hex}"}
    return {"idempotencyKey": uuid.uuid4().hex}
