"""Two server processes on one PostgreSQL database: a sale or a payment through one reaches
the subscribers of the other."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON, broker_url
from tests.e2e.conftest import running_server
from tests.e2e.test_order_contract import ORDER_UPDATES, _delivery_skus, _gql, _place_input
from tests.e2e.test_stock_feed import STORE, _restock, _sell
from tests.shop import PAY, PLACE, new_member, next_noon
from tests.wsclient import session

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason=SKIP_POSTGRES_REASON),
]


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_a_sale_through_process_a_reaches_a_subscriber_of_process_b(
    settings: Settings, credentials: Credentials, engine: AsyncEngine, broker: str
) -> None:
    url = broker_url(settings, broker)
    sku = encode_id("Sku", 130)
    query = """subscription($s: ID!, $k: [ID!]) {
        stockChanged(storeId: $s, skuIds: $k) { available version } }"""
    start = next_noon().isoformat()
    with (
        running_server(settings, DINEGRAPH_BROKER_URL=url, DINEGRAPH_CLOCK_START=start) as a,
        running_server(settings, DINEGRAPH_BROKER_URL=url, DINEGRAPH_CLOCK_START=start) as b,
    ):
        await _restock(a, credentials.manager_store_1, sku, 5)
        async with session(b) as ws:
            await ws.subscribe(query, {"s": STORE, "k": [sku]})
            first = (await ws.next_data())["stockChanged"]
            assert (await _sell(a, credentials.partner, sku))["errors"] == []
            update = (await ws.next_data())["stockChanged"]
        assert update == {"available": first["available"] - 1, "version": first["version"] + 1}
        # An order placed and paid through A: its member, following it on B, hears both.
        _, member = await new_member(settings, engine)
        async with httpx.AsyncClient(base_url=a, timeout=10) as client:
            sku_id = (await _delivery_skus(client))[0]
            placed = await _gql(client, PLACE, {"input": _place_input(sku_id, broker)}, member)
            order_id = placed["placeOrder"]["order"]["id"]
            token = member["Authorization"].removeprefix("Bearer ")
            async with session(b, {"authorization": f"Bearer {token}"}) as ws:
                await ws.subscribe(ORDER_UPDATES, {"orderId": order_id})
                assert (await ws.next_data())["orderUpdates"]["status"] == "PENDING_PAYMENT"
                paid = await _gql(client, PAY, {"orderId": order_id}, member)
                assert paid["payOrder"]["errors"] == []
                heard = (await ws.next_data())["orderUpdates"]
    assert (heard["status"], heard["version"]) == ("PAID", 2)
