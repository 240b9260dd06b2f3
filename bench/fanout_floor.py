"""The floor for the stock fan-out benchmark: graphql-transport-ws in a bare Starlette app.

Not part of the product, and not GraphQL: the WebSocket endpoint at ``/graphql`` speaks just
enough of graphql-transport-ws for bench/stock_fanout.py's subscribers. ``connection_init``
is answered with ``connection_ack``; ``subscribe`` with one ``next`` holding the state last
published (a fixed one, version 0, before the first publication); ``ping`` with ``pong``.
``POST /publish`` sends its body, a ``next`` message the bench encoded once, unchanged to
every subscribed socket, one after the other, and answers ``{"sent": n}``. What is left out,
compared with the product, is exactly the per-subscriber work: a task and a mailbox per
subscription, the DataLoader and the GraphQL execution of the selection, and encoding each
answer.

It runs on uvicorn as ``harness.floor.serve`` sets it up (the product's server settings,
as ``dinegraph serve --workers 1`` runs)::

    python bench/fanout_floor.py --host 127.0.0.1 --port 8002
"""

from __future__ import annotations

from typing import Any

import orjson
from harness.floor import graphql_ws_session, serve
from harness.gqlws import next_message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def initial_state(op_id: str, sku_id: str) -> str:
    state = {"sku": {"id": sku_id}, "available": 0, "soldOut": False, "version": 0}
    return next_message(op_id, "stockChanged", state)


class Subscribers:
    def __init__(self) -> None:
        self.sockets: set[WebSocket] = set()
        self.latest: dict[str, object] | None = None  # the last message published

    def current_state(self, op_id: str, sku_id: str) -> str:
        if self.latest is None:
            return initial_state(op_id, sku_id)
        return orjson.dumps({**self.latest, "id": op_id}).decode()

    async def subscribe(self, ws: WebSocket, op_id: str, payload: dict[str, Any]) -> None:
        sku_ids = (payload.get("variables") or {}).get("k") or [""]
        await ws.send_text(self.current_state(op_id, str(sku_ids[0])))
        self.sockets.add(ws)

    async def endpoint(self, ws: WebSocket) -> None:
        await graphql_ws_session(ws, self.subscribe, self.sockets.discard)

    async def publish(self, request: Request) -> Response:
        text = (await request.body()).decode()
        self.latest = orjson.loads(text)
        sent = 0
        for ws in list(self.sockets):
            try:
                await ws.send_text(text)
            except Exception:  # gone meanwhile
                self.sockets.discard(ws)
                continue
            sent += 1
        return JSONResponse({"sent": sent})


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    subscribers = Subscribers()
    return Starlette(
        routes=[
            WebSocketRoute("/graphql", subscribers.endpoint),
            Route("/publish", subscribers.publish, methods=["POST"]),
            Route("/health", health),
        ]
    )


if __name__ == "__main__":
    serve(create_app, __doc__.splitlines()[0], port=8002)
