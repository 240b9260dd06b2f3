"""The subscriber side of graphql-transport-ws, for the subscriber processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from .gqlws import PONG, PROTOCOL, init_message

HANDSHAKE_TIMEOUT_S = 60.0


async def open_connection(url: str, init_payload: dict[str, Any] | None = None) -> ClientConnection:
    """Connect, send ``connection_init`` and wait for ``connection_ack`` (answering pings).
    No keep-alive pings of our own: they would be traffic the benchmark did not ask for."""
    ws = await connect(
        url,
        subprotocols=[Subprotocol(PROTOCOL)],
        open_timeout=HANDSHAKE_TIMEOUT_S,
        ping_interval=None,
    )
    try:
        await ws.send(init_message(init_payload))
        while True:
            ack = orjson.loads(await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT_S))
            if ack.get("type") == "ping":
                await ws.send(PONG)
                continue
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {str(ack)[:300]}")
            return ws
    except BaseException:
        await ws.close()
        raise


async def read_pushes(
    ws: ClientConnection,
    on_next: Callable[[float, dict[str, Any]], None],
    problems: list[str],
    closing: Callable[[], bool],
) -> None:
    """Hand every ``next`` to ``on_next`` with the moment it was read (CLOCK_MONOTONIC,
    shared by the machine's processes); answer pings; anything else is a problem, and so is
    the server closing the connection unless we are ``closing``."""
    try:
        async for raw in ws:
            at = time.monotonic()
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == "next":
                on_next(at, message)
            elif kind == "ping":
                await ws.send(PONG)
            elif kind != "pong":
                problems.append(f"{kind}: {str(message)[:200]}")
    except ConnectionClosed as exc:
        if not closing():
            problems.append(f"closed by the server: {exc}")


class Subscriptions:
    """A subscriber process's open connections and the tasks reading them."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.problems: list[str] = []
        self.closing = False

    async def open(self, url: str, init_payload: dict[str, Any] | None = None) -> ClientConnection:
        ws = await open_connection(url, init_payload)
        self.sockets.append(ws)
        return ws

    def read(self, ws: ClientConnection, on_next: Callable[[float, dict[str, Any]], None]) -> None:
        """Read ``ws`` from now on (see ``read_pushes``)."""
        task = read_pushes(ws, on_next, self.problems, lambda: self.closing)
        self.readers.append(asyncio.create_task(task))

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.readers:
            task.cancel()
