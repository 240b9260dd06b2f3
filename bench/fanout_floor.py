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

It runs on uvicorn with the settings ``dinegraph serve --workers 1`` uses (one process,
the same automatic loop, HTTP and WebSocket implementations, access log on)::

    python bench/fanout_floor.py --host 127.0.0.1 --port 8002
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PROTOCOL = "graphql-transport-ws"
ACK = '{"type":"connection_ack"}'
PONG = '{"type":"pong"}'


def initial_state(op_id: str, sku_id: str) -> str:
    return orjson.dumps(
        {
            "id": op_id,
            "type": "next",
            "payload": {
                "data": {
                    "stockChanged": {
                        "sku": {"id": sku_id},
                        "available": 0,
                        "soldOut": False,
                        "version": 0,
                    }
                }
            },
        }
    ).decode()


class Subscribers:
    def __init__(self) -> None:
        self.sockets: set[WebSocket] = set()
        self.latest: dict[str, object] | None = None  # the last message published

    def current_state(self, op_id: str, sku_id: str) -> str:
        if self.latest is None:
            return initial_state(op_id, sku_id)
        return orjson.dumps({**self.latest, "id": op_id}).decode()

    async def endpoint(self, ws: WebSocket) -> None:
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
                    variables = message.get("payload", {}).get("variables") or {}
                    sku_ids = variables.get("k") or [""]
                    await ws.send_text(self.current_state(str(message.get("id")), str(sku_ids[0])))
                    self.sockets.add(ws)
                elif kind == "ping":
                    await ws.send_text(PONG)
                elif kind == "complete":
                    self.sockets.discard(ws)
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(ws)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    uvicorn.run(
        create_app,
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="info",
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
