"""The clients mini-program, web and partner developers use, against a real server process.

- npm `graphql-ws` (with `ws`), driven by clients/reference/graphql_ws.mjs;
- PyPI `gql`, over graphql-transport-ws and over HTTP with httpx;
- Apollo Client with automatic persisted queries, by clients/reference/apollo_persisted.mjs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import skus, stock_levels
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import PATIENCE_SECONDS, free_port, running_server
from tests.tools import CLIENTS, node

REFERENCE = CLIENTS / "reference"
STORE = encode_id("Store", 1)
Event = dict[str, Any]
# How long a client may take to hear something, on a loaded machine (a bound, not a pause).
WAIT = 60.0


async def _tracked_skus(engine: AsyncEngine) -> list[str]:
    """Global ids of the tracked SKUs store 1 stocks, last first (other tests take the first)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(stock_levels.c.sku_id)
            .join(skus, skus.c.id == stock_levels.c.sku_id)
            .where(
                stock_levels.c.store_id == 1, skus.c.tracked, stock_levels.c.available.isnot(None)
            )
            .order_by(stock_levels.c.sku_id.desc())
        )
        return [encode_id("Sku", sku_id) for (sku_id,) in rows]


async def _graphql(
    server: str, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def _restock(server: str, credentials: Credentials, sku: str, quantity: int) -> None:
    body = await _graphql(
        server,
        "mutation($i: RestockInput!) { restock(input: $i) { errors { code } } }",
        {"i": {"storeId": STORE, "skuId": sku, "quantity": quantity, "reference": _key()}},
        credentials.manager_store_1,
    )
    assert body["data"]["restock"]["errors"] == []


async def _sell(server: str, credentials: Credentials, sku: str, quantity: int) -> None:
    body = await _graphql(
        server,
        "mutation($i: RecordSaleInput!) { recordSale(input: $i) { errors { code } } }",
        {
            "i": {
                "storeId": STORE,
                "source": "POS",
                "externalOrderId": _key(),
                "lines": [{"skuId": sku, "quantity": quantity}],
            }
        },
        credentials.partner,
    )
    assert body["data"]["recordSale"]["errors"] == []


def _key() -> str:
    return f"reference-client-{uuid.uuid4().hex}"


def _bearer(credentials: Credentials) -> str:
    return credentials.manager_store_1["Authorization"].removeprefix("Bearer ")


# -- npm graphql-ws ------------------------------------------------------------------------------


class NodeScript:
    """A reference-client script in node: JSON events on stdout, stopped by closing stdin."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[Event] = []

    async def event(self, within: float = WAIT) -> Event:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            assert self.process.stderr is not None
            stderr = (await self.process.stderr.read()).decode()
            pytest.fail(f"the node client ended early; it printed {self.seen}\n{stderr}")
        event: Event = json.loads(line)
        assert event["event"] != "failed", event["message"]
        self.seen.append(event)
        return event

    async def until(self, wanted: Callable[[Event], bool], within: float = WAIT) -> Event:
        """The next event that is `wanted`, skipping others (within `within` seconds in all)."""
        async with asyncio.timeout(within):
            while not wanted(event := await self.event(within)):
                pass
        return event

    async def stock(self, sku: str, within: float = WAIT) -> dict[str, Any]:
        """The next stockChanged of `sku`."""
        event = await self.until(
            lambda e: (
                e["event"] == "next"
                and e["payload"].get("data", {}).get("stockChanged", {}).get("sku", {}).get("id")
                == sku
            ),
            within,
        )
        assert "errors" not in event["payload"], event
        update: dict[str, Any] = event["payload"]["data"]["stockChanged"]
        return update


@asynccontextmanager
async def graphql_ws(server: str, scenario: str, **options: Any) -> AsyncIterator[NodeScript]:
    process = await asyncio.create_subprocess_exec(
        node(),
        str(REFERENCE / "graphql_ws.mjs"),
        server,
        scenario,
        json.dumps(options),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=CLIENTS,
    )
    try:
        yield NodeScript(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_graphql_ws_gets_the_current_stock_then_each_change(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[0]
    async with graphql_ws(live_server, "stock", storeId=STORE, skuIds=[sku]) as client:
        snapshot = await client.stock(sku)
        await _restock(live_server, credentials, sku, 7)
        change = await client.stock(sku)
    assert change == {
        "sku": {"id": sku},
        "available": snapshot["available"] + 7,
        "soldOut": False,
        "version": snapshot["version"] + 1,
    }


async def test_graphql_ws_staff_credentials_in_connection_params_open_low_stock_alerts(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[1]
    async with graphql_ws(
        live_server, "staff", storeId=STORE, skuIds=[sku], token=_bearer(credentials)
    ) as client:
        # Alerts first, then the stock feed, on one socket: once the stock arrives, the server
        # has taken both subscriptions.
        level = (await client.stock(sku))["available"]
        # From above the threshold (5) down to it: one alert for this SKU.
        await _restock(live_server, credentials, sku, 10)
        await _sell(live_server, credentials, sku, level + 10 - 5)
        alert = await client.until(
            lambda e: (
                e["sub"] == "alerts"
                and (
                    e["event"] != "next"
                    or e["payload"]["data"]["lowStockAlerts"]["sku"]["id"] == sku
                )
            )
        )
    assert alert == {
        "event": "next",
        "sub": "alerts",
        "payload": {
            "data": {"lowStockAlerts": {"sku": {"id": sku}, "available": 5, "threshold": 5}}
        },
    }


async def test_graphql_ws_without_credentials_is_refused_and_the_connection_stays(
    live_server: str, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[0]
    async with graphql_ws(live_server, "refused", storeId=STORE, skuIds=[sku]) as client:
        refusal = await client.until(lambda e: e.get("sub") == "alerts")
        ended = await client.until(lambda e: e.get("sub") == "alerts")
        snapshot = await client.until(lambda e: e.get("sub") == "stock")
        done = await client.until(lambda e: e["event"] == "done")
    # The refusal is a result, as for a query: no data, an UNAUTHENTICATED error (in Chinese by
    # default), and the subscription completes; the socket is not closed.
    assert refusal == {
        "event": "next",
        "sub": "alerts",
        "payload": {
            "data": None,
            "errors": [{"message": "请先登录", "extensions": {"code": "UNAUTHENTICATED"}}],
        },
    }
    assert ended == {"event": "complete", "sub": "alerts"}
    assert snapshot["event"] == "next"
    assert snapshot["payload"]["data"]["stockChanged"]["sku"] == {"id": sku}
    # The refusal and the next subscription went over one socket that never closed.
    assert done == {"event": "done", "connections": 1, "closes": 0}


# Two server starts, each of which may take a while on a loaded machine.
@pytest.mark.timeout(3 * PATIENCE_SECONDS)
async def test_graphql_ws_resubscribes_after_a_server_restart_and_gets_the_current_stock(
    settings: Settings, live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[2]
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    # The client retries from the start, so it connects once the server is up.
    async with graphql_ws(server, "reconnect", storeId=STORE, skuIds=[sku]) as client:
        with running_server(settings, port=port):
            before = await client.stock(sku)
        # That server is gone: the client notices, and the stock changes through another process
        # on the same database.
        await client.until(lambda e: e["event"] == "closed")
        await _restock(live_server, credentials, sku, 4)
        with running_server(settings, port=port) as restarted:
            await client.until(lambda e: e["event"] == "connected")
            again = await client.stock(sku)
            await _sell(restarted, credentials, sku, 1)
            after = await client.stock(sku)
    assert again == {
        **before,
        "available": before["available"] + 4,
        "version": before["version"] + 1,
    }
    assert after == {**again, "available": again["available"] - 1, "version": again["version"] + 1}


# -- PyPI gql ------------------------------------------------------------------------------------


def _gql_ws(server: str, init_payload: dict[str, Any] | None = None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.replace("http://", "ws://") + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload=init_payload or {},
    )


GQL_STOCK = """subscription Stock($storeId: ID!, $skuIds: [ID!]) {
    stockChanged(storeId: $storeId, skuIds: $skuIds) { sku { id } available soldOut version }
}"""


async def test_gql_subscribes_over_graphql_transport_ws(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[0]
    async with Client(transport=_gql_ws(live_server)) as session:
        updates = session.subscribe(
            GraphQLRequest(GQL_STOCK, variable_values={"storeId": STORE, "skuIds": [sku]})
        )
        snapshot = (await asyncio.wait_for(anext(updates), WAIT))["stockChanged"]
        await _sell(live_server, credentials, sku, 1)
        change = (await asyncio.wait_for(anext(updates), WAIT))["stockChanged"]
        await updates.aclose()
    assert snapshot["sku"] == {"id": sku}
    assert change == {
        **snapshot,
        "available": snapshot["available"] - 1,
        "soldOut": snapshot["available"] == 1,
        "version": snapshot["version"] + 1,
    }


async def test_gql_sends_staff_credentials_in_init_payload(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = (await _tracked_skus(engine))[3]
    alerts = """subscription($s: [ID!]!) { lowStockAlerts(storeIds: $s) {
        sku { id } available threshold } }"""
    # Refused without credentials, with the code clients branch on.
    async with Client(transport=_gql_ws(live_server)) as anonymous:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in anonymous.subscribe(
                GraphQLRequest(alerts, variable_values={"s": [STORE]})
            ):
                pass
    assert refused.value.errors is not None
    assert [e["extensions"]["code"] for e in refused.value.errors] == ["UNAUTHENTICATED"]

    staff = _gql_ws(live_server, {"authorization": credentials.manager_store_1["Authorization"]})
    async with Client(transport=staff) as session:
        feed = session.subscribe(GraphQLRequest(alerts, variable_values={"s": [STORE]}))
        crossed = asyncio.ensure_future(_alert_for(feed, sku))
        # Two subscriptions on one socket: the level now, then down to the threshold (5).
        stock = session.subscribe(
            GraphQLRequest(GQL_STOCK, variable_values={"storeId": STORE, "skuIds": [sku]})
        )
        level = (await asyncio.wait_for(anext(stock), WAIT))["stockChanged"]["available"]
        await stock.aclose()
        await _restock(live_server, credentials, sku, 10)
        await _sell(live_server, credentials, sku, level + 10 - 5)
        alert = await asyncio.wait_for(crossed, WAIT)
        await feed.aclose()
    assert alert == {"sku": {"id": sku}, "available": 5, "threshold": 5}


async def _alert_for(feed: AsyncGenerator[dict[str, Any], None], sku: str) -> dict[str, Any]:
    async for result in feed:
        alert: dict[str, Any] = result["lowStockAlerts"]
        if alert["sku"]["id"] == sku:
            return alert
    raise AssertionError("the alerts ended")


async def test_gql_queries_over_http_with_httpx(live_server: str) -> None:
    transport = HTTPXAsyncTransport(url=f"{live_server}/graphql", timeout=30)
    async with Client(transport=transport) as session:
        result = await session.execute(
            GraphQLRequest(
                "query($id: ID!) { node(id: $id) { id ... on Store { name } } }",
                variable_values={"id": STORE},
            )
        )
    assert result["node"]["id"] == STORE
    assert result["node"]["name"]


# -- Apollo Client -------------------------------------------------------------------------------


async def test_apollo_persisted_queries_send_the_hash_then_the_query_once_then_get(
    live_server: str,
) -> None:
    process = await asyncio.create_subprocess_exec(
        node(),
        str(REFERENCE / "apollo_persisted.mjs"),
        live_server,
        json.dumps({"id": STORE}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=CLIENTS,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    assert stdout, stderr.decode()
    report = json.loads(stdout)
    assert "failed" not in report, json.dumps(report, ensure_ascii=False, indent=2)
    first, second, third, *more = report["requests"]
    assert more == []

    # 1. The hash alone, as a GET: the server does not know it yet.
    assert first["method"] == "GET"
    query_string = httpx.URL(first["url"]).params
    assert "query" not in query_string
    extensions = json.loads(query_string["extensions"])
    digest = extensions["persistedQuery"]["sha256Hash"]
    assert extensions["persistedQuery"]["version"] == 1
    assert [e["message"] for e in first["response"]["errors"]] == ["PersistedQueryNotFound"]
    assert first["response"]["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    # 2. The hash and the query, posted: verified, stored and run.
    assert second["method"] == "POST"
    assert second["body"]["query"].lstrip().startswith("query PersistedStore")
    assert second["body"]["extensions"]["persistedQuery"]["sha256Hash"] == digest
    assert hashlib.sha256(second["body"]["query"].encode()).hexdigest() == digest
    assert second["status"] == 200
    assert second["response"]["data"]["node"]["id"] == STORE

    # 3. The same query again: the hash alone, as a GET, answered with the data.
    assert third["method"] == "GET"
    query_string = httpx.URL(third["url"]).params
    assert "query" not in query_string
    assert json.loads(query_string["extensions"])["persistedQuery"]["sha256Hash"] == digest
    assert third["status"] == 200
    assert third["response"] == second["response"]
    assert report["results"] == [second["response"]["data"]] * 2
