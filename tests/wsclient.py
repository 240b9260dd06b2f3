"""A small graphql-transport-ws client for tests, on the `websockets` library."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


class Session:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return op_id

    async def receive(self, within: float = 30) -> dict[str, Any]:
        """The next message that is not a ping or pong."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), within)
            # graphql-transport-ws is text frames only; real clients refuse binary ones.
            assert isinstance(frame, str), f"binary WebSocket frame: {frame!r}"
            message: dict[str, Any] = json.loads(frame)
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] != "pong":
                return message

    async def next_data(self, within: float = 30) -> dict[str, Any]:
        message = await self.receive(within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def take(self, count: int, within: float = 10) -> list[dict[str, Any]]:
        return [await self.next_data(within) for _ in range(count)]


@asynccontextmanager
async def session(
    url: str, init_payload: dict[str, Any] | None = None, *, expect_ack: bool = True
) -> AsyncIterator[Session]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=[PROTOCOL], open_timeout=10) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload or {}}))
        client = Session(ws)
        if expect_ack:
            ack = await client.receive()
            assert ack["type"] == "connection_ack", ack
        yield client
