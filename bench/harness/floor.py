"""What the floor servers share: their uvicorn settings and a graphql-transport-ws session.

A floor is a bare server a scenario compares the product with; it imports nothing the
product's server would not (its memory is measured too).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.websockets import WebSocket, WebSocketDisconnect

from .gqlws import ACK, PONG, PROTOCOL

OnSubscribe = Callable[[WebSocket, str, dict[str, Any]], Awaitable[None]]


def serve(create_app: Callable[[], Starlette], description: str, port: int) -> None:
    """``--host``/``--port`` from the command line, then uvicorn as ``dinegraph serve
    --workers 1`` runs it, so that a side-by-side run compares the work and not the
    server's settings: one process, uvicorn's automatic loop and HTTP implementation,
    WebSockets on ``websockets-sansio``, and the access log only in development mode
    (``DINEGRAPH_MODE``, from the same environment the scenario gives the product).

    Figures recorded before 2026-12-02 ran the floors with uvicorn's default WebSocket
    protocol and the access log always on (BENCHMARKS.md says which)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    args = parser.parse_args()
    uvicorn.run(
        create_app,
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="info",
        access_log=os.environ.get("DINEGRAPH_MODE", "development") != "production",
        proxy_headers=True,
        ws="websockets-sansio",
    )


async def graphql_ws_session(
    ws: WebSocket, on_subscribe: OnSubscribe, on_complete: Callable[[WebSocket], None]
) -> None:
    """Just enough graphql-transport-ws: the subprotocol, ``connection_init`` answered with
    ``connection_ack`` (credentials are not looked at), ``subscribe`` handed to
    ``on_subscribe`` (op id, payload), ``ping`` answered, ``complete`` and the end of the
    connection handed to ``on_complete``."""
    if PROTOCOL not in ws.scope.get("subprotocols", []):
        await ws.close(code=4406)
        return
    await ws.accept(subprotocol=PROTOCOL)
    try:
        first = orjson.loads(await ws.receive_text())
        if first.get("type") != "connection_init":
            await ws.close(code=4400)
            return
        await ws.send_text(ACK)
        while True:
            message = orjson.loads(await ws.receive_text())
            kind = message.get("type")
            if kind == "subscribe":
                await on_subscribe(ws, str(message.get("id")), message.get("payload") or {})
            elif kind == "ping":
                await ws.send_text(PONG)
            elif kind == "complete":
                on_complete(ws)
    except WebSocketDisconnect:
        pass
    finally:
        on_complete(ws)
