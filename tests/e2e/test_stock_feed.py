"""Live stock over graphql-transport-ws against a real server process."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dinegraph.db.tables import products, skus
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.wsclient import session

STOCK_FEED = """
subscription StockFeed($storeId: ID!) {
  stockChanged(storeId: $storeId) { sku { id } available soldOut version }
}
"""
RECORD_SALE = """
mutation RecordSale($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code message field } }
}
"""
STORE = encode_id("Store", 1)


async def _sellable_skus(engine: AsyncEngine) -> tuple[int, list[int]]:
    """(how many SKUs the feed covers, tracked SKU ids) for the demo chain."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(skus.c.id, skus.c.tracked, products.c.kind).join(
                    products, products.c.id == skus.c.product_id
                )
            )
        ).all()
    covered = [r for r in rows if r.tracked or r.kind == "DISH"]
    return len(covered), [r.id for r in rows if r.tracked]


async def _stock_of(server: str, sku: str) -> int:
    async with httpx.AsyncClient(base_url=server) as client:
        body = (
            await client.post(
                "/graphql",
                json={
                    "query": """query($s: ID!) { menu(storeId: $s, channel: RETAIL) {
                        categories { products { skus { id stock { available } } } } } }""",
                    "variables": {"s": STORE},
                },
            )
        ).json()
    levels = {
        s["id"]: s["stock"]["available"]
        for c in body["data"]["menu"]["categories"]
        for p in c["products"]
        for s in p["skus"]
    }
    return int(levels[sku])


async def _sell(
    server: str, headers: dict[str, str], sku: str, quantity: int = 1
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": RECORD_SALE,
                "variables": {
                    "input": {
                        "storeId": STORE,
                        "source": "POS",
                        "externalOrderId": f"feed-{uuid.uuid4().hex}",
                        "lines": [{"skuId": sku, "quantity": quantity}],
                    }
                },
            },
            headers=headers,
        )
    payload: dict[str, Any] = response.json()["data"]["recordSale"]
    return payload


async def _restock(server: str, headers: dict[str, str], sku: str, quantity: int) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        body = (
            await client.post(
                "/graphql",
                json={
                    "query": """mutation($i: RestockInput!) { restock(input: $i) {
                        errors { code } } }""",
                    "variables": {
                        "i": {
                            "storeId": STORE,
                            "skuId": sku,
                            "quantity": quantity,
                            "reference": uuid.uuid4().hex,
                        }
                    },
                },
                headers=headers,
            )
        ).json()
    assert body["data"]["restock"]["errors"] == []


async def test_stock_feed_sends_the_current_state_then_each_sale(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    covered, tracked = await _sellable_skus(engine)
    sku = encode_id("Sku", tracked[0])
    await _restock(live_server, credentials.manager_store_1, sku, 20)
    async with session(live_server) as ws:
        await ws.subscribe(STOCK_FEED, {"storeId": STORE})
        initial = await ws.take(covered)
        state = {m["stockChanged"]["sku"]["id"]: m["stockChanged"] for m in initial}
        assert len(state) == covered
        before = state[sku]
        sold = await _sell(live_server, credentials.partner, sku, 2)
        assert sold["errors"] == []
        update = (await ws.next_data())["stockChanged"]
    assert update == {
        "sku": {"id": sku},
        "available": before["available"] - 2,
        "soldOut": before["available"] - 2 == 0,
        "version": before["version"] + 1,
    }


async def test_a_client_that_reconnects_sees_the_current_level_first(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    _, tracked = await _sellable_skus(engine)
    sku = encode_id("Sku", tracked[1])
    await _restock(live_server, credentials.manager_store_1, sku, 10)
    query = """subscription($s: ID!, $k: [ID!]) {
        stockChanged(storeId: $s, skuIds: $k) { available version } }"""
    async with session(live_server) as ws:
        await ws.subscribe(query, {"s": STORE, "k": [sku]})
        first = (await ws.next_data())["stockChanged"]
    for _ in range(3):
        assert (await _sell(live_server, credentials.partner, sku))["errors"] == []
    async with session(live_server) as ws:
        await ws.subscribe(query, {"s": STORE, "k": [sku]})
        again = (await ws.next_data())["stockChanged"]
    assert again == {"available": first["available"] - 3, "version": first["version"] + 3}
    assert again["available"] == await _stock_of(live_server, sku)


async def test_low_stock_alerts_need_staff_credentials_in_connection_init(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    _, tracked = await _sellable_skus(engine)
    sku = encode_id("Sku", tracked[2])
    query = """subscription($s: [ID!]!) { lowStockAlerts(storeIds: $s) {
        sku { id } available threshold } }"""
    async with session(live_server) as anonymous:
        await anonymous.subscribe(query, {"s": [STORE]})
        refused = await anonymous.receive()
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"

    token = credentials.manager_store_1["Authorization"]
    async with session(live_server, {"authorization": token}) as staff:
        await staff.subscribe(query, {"s": [STORE]})
        level = await _stock_of(live_server, sku)
        # Bring the level to the threshold (5) from above: one alert.
        await _restock(live_server, credentials.manager_store_1, sku, 10)
        level += 10
        sold = await _sell(live_server, credentials.partner, sku, level - 5)
        assert sold["errors"] == []
        alerts = []
        while True:
            alert = (await staff.next_data())["lowStockAlerts"]
            alerts.append(alert)
            if alert["sku"]["id"] == sku and alert["available"] == 5:
                break
    assert alerts[-1] == {"sku": {"id": sku}, "available": 5, "threshold": 5}


async def test_bad_credentials_in_connection_init_close_the_socket(live_server: str) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        async with session(live_server, {"authorization": "Bearer forged"}, expect_ack=False) as ws:
            await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_is_refused(live_server: str) -> None:
    url = live_server.replace("http://", "ws://") + "/graphql"
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(url, subprotocols=["graphql-ws"], open_timeout=5) as ws:  # type: ignore[list-item]
            await ws.send('{"type": "connection_init"}')
            await asyncio.wait_for(ws.recv(), 5)


async def test_websocket_limits(settings: Settings) -> None:
    from tests.e2e.conftest import running_server

    with running_server(
        settings,
        DINEGRAPH_WS_MAX_SUBSCRIPTIONS="3",
        DINEGRAPH_WS_INIT_TIMEOUT_SECONDS="1",
        DINEGRAPH_WS_KEEPALIVE_SECONDS="0.5",
    ) as server:
        query = """subscription($s: ID!, $k: [ID!]) {
            stockChanged(storeId: $s, skuIds: $k) { version } }"""
        async with session(server) as ws:
            for _ in range(4):
                await ws.subscribe(query, {"s": STORE, "k": [encode_id("Sku", 130)]})
            messages = [await ws.receive() for _ in range(4)]
            errors = [m for m in messages if m["type"] == "error"]
            assert [e["payload"][0]["message"] for e in errors] == ["Subscription limit reached"]
            ping = json.loads(await asyncio.wait_for(ws.ws.recv(), 5))
            assert ping["type"] == "ping"
        url = server.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=["graphql-transport-ws"]) as silent:  # type: ignore[list-item]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(silent.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
