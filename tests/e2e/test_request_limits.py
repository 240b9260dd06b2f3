"""Request limits on a real `dinegraph serve`: WebSocket messages and HTTP bodies by size,
subscribe payloads by their characters."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.e2e.conftest import running_server
from tests.wsclient import session

STOCK_FEED = """subscription($storeId: ID!, $skuIds: [ID!]) {
  stockChanged(storeId: $storeId, skuIds: $skuIds) { available version } }"""
STORE = encode_id("Store", 1)


@pytest.fixture(scope="module")
def production_server(settings: Settings) -> Iterator[str]:
    with running_server(
        settings,
        DINEGRAPH_MODE="production",
        DINEGRAPH_MAX_WS_MESSAGE_BYTES="4096",
        DINEGRAPH_MAX_BODY_BYTES="8192",
    ) as url:
        yield url


async def test_a_websocket_message_beyond_the_limit_closes_the_socket(
    production_server: str,
) -> None:
    async with session(production_server) as client:
        await client.subscribe(STOCK_FEED, {"storeId": STORE})
        assert "stockChanged" in await client.next_data()
        # 5000 IDs are far beyond 4 KiB: the server refuses the message unread.
        await client.subscribe(STOCK_FEED, {"storeId": STORE, "skuIds": [STORE] * 500})
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await client.receive(within=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_subscribe_payload_with_a_lone_surrogate_is_refused_with_its_code(
    production_server: str,
) -> None:
    async with session(production_server) as client:
        await client.ws.send(
            json.dumps(
                {
                    "id": "bad",
                    "type": "subscribe",
                    "payload": {"query": STOCK_FEED, "variables": {"storeId": "\ud800x"}},
                }
            )
        )
        refused = await client.receive()
        assert refused["type"] == "error" and refused["id"] == "bad", refused
        assert refused["payload"][0]["extensions"] == {"code": "INVALID_CHARACTERS"}
        # The socket stays open for well-formed operations.
        await client.subscribe(STOCK_FEED, {"storeId": STORE})
        assert "stockChanged" in await client.next_data()


async def test_an_http_body_beyond_the_limit_answers_413(production_server: str) -> None:
    async with httpx.AsyncClient(base_url=production_server, timeout=30) as client:
        fits = await client.post(
            "/graphql", json={"query": "{ stores(first: 1) { totalCount } }", "variables": {}}
        )
        assert fits.status_code == 200 and fits.json()["data"]["stores"]["totalCount"] > 0
        over = await client.post(
            "/graphql", json={"query": "{ __typename }", "variables": {"pad": "x" * 20_000}}
        )
        assert over.status_code == 413
        assert over.json()["errors"][0]["extensions"] == {"code": "REQUEST_TOO_LARGE"}
