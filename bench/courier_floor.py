"""The floor for the courier fan-out benchmark: graphql-transport-ws in a bare Starlette app.

Not part of the product, and not GraphQL: the WebSocket endpoint at ``/graphql`` speaks just
enough of graphql-transport-ws for bench/courier_fanout.py's subscribers, as
bench/fanout_floor.py does for the stock feed. ``connection_init`` is answered with
``connection_ack`` (credentials are not looked at); ``subscribe`` to ``courierUpdates`` with
one ``next`` holding the order's delivery as it stands, to ``storeDeliveryFeed`` with one
``next`` per delivery of the store; ``ping`` with ``pong``.

``POST /setup`` takes the deliveries as the bench found them in the product's database (a
JSON list: ids, order and store global ids, status, position, ETA, courier, version,
destination). ``POST /graphql`` takes the very body the bench sends the product's
``reportCourierPosition``: the floor reads the delivery's global id and the position from
its variables, moves the delivery on (version + 1, a straight-line ETA), encodes ONE ``next``
message for the order's ``courierUpdates`` subscribers and ONE for the store's
``storeDeliveryFeed`` subscribers, sends each unchanged to every socket subscribed to it,
one after the other, and answers in the product's shape (``accepted``, ``delivery {
version }``, ``errors``). The bench's subscribers all use operation id ``1``, which the
pre-encoded messages carry.

What is left out, compared with the product, is the report's own work (the API key, the
validation, the database transaction, the broker) and the per-subscriber work (a task and a
mailbox per subscription, the GraphQL execution of the selection, and encoding each answer).

It runs on uvicorn as ``harness.floor.serve`` sets it up (the product's server settings,
as ``dinegraph serve --workers 1`` runs)::

    python bench/courier_floor.py --host 127.0.0.1 --port 8003
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from harness.floor import graphql_ws_session, serve
from harness.gqlws import next_message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

SPEED_M_PER_S = 18 / 3.6  # DADA's ETA speed in the product's default settings
ROAD = 1.3  # the product's ETA: the straight line x 1.3


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


@dataclass
class Trip:
    id: int
    gid: str
    order: str  # global ids
    store: str
    status: str
    lat: float | None
    lng: float | None
    eta: int | None
    courier: str | None
    version: int
    dest_lat: float
    dest_lng: float

    def position(self) -> dict[str, float] | None:
        if self.lat is None or self.lng is None:
            return None
        return {"lat": self.lat, "lng": self.lng}

    def courier_update(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "position": self.position(),
            "etaSeconds": self.eta,
            "courier": {"name": self.courier} if self.courier else None,
            "version": self.version,
        }

    def map_update(self) -> dict[str, Any]:
        return {
            "deliveryId": self.gid,
            "status": self.status,
            "position": self.position(),
            "etaSeconds": self.eta,
            "version": self.version,
        }


@dataclass
class Floor:
    trips: dict[int, Trip] = field(default_factory=dict)
    by_order: dict[str, Trip] = field(default_factory=dict)
    by_store: dict[str, list[Trip]] = field(default_factory=dict)
    order_sockets: dict[str, set[WebSocket]] = field(default_factory=dict)
    store_sockets: dict[str, set[WebSocket]] = field(default_factory=dict)
    joined: dict[WebSocket, list[set[WebSocket]]] = field(default_factory=dict)

    async def setup(self, request: Request) -> Response:
        self.trips.clear()
        self.by_order.clear()
        self.by_store.clear()
        for raw in orjson.loads(await request.body()):
            trip = Trip(**raw)
            self.trips[trip.id] = trip
            self.by_order[trip.order] = trip
            self.by_store.setdefault(trip.store, []).append(trip)
        return JSONResponse({"deliveries": len(self.trips)})

    async def subscribe(self, ws: WebSocket, op_id: str, payload: dict[str, Any]) -> None:
        variables = payload.get("variables") or {}
        if "storeDeliveryFeed" in payload.get("query", ""):
            store = str(variables.get("s"))
            for trip in self.by_store.get(store, []):
                await ws.send_text(next_message(op_id, "storeDeliveryFeed", trip.map_update()))
            sockets = self.store_sockets.setdefault(store, set())
        else:
            order = str(variables.get("orderId"))
            trip = self.by_order[order]
            await ws.send_text(next_message(op_id, "courierUpdates", trip.courier_update()))
            sockets = self.order_sockets.setdefault(order, set())
        sockets.add(ws)
        self.joined.setdefault(ws, []).append(sockets)

    def leave(self, ws: WebSocket) -> None:
        for sockets in self.joined.pop(ws, []):
            sockets.discard(ws)

    async def endpoint(self, ws: WebSocket) -> None:
        await graphql_ws_session(ws, self.subscribe, self.leave)

    async def report(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        given = body["variables"]["input"]
        delivery_id = int(base64.b64decode(given["deliveryId"]).decode().split(":", 1)[1])
        trip = self.trips[delivery_id]
        trip.lat, trip.lng = float(given["lat"]), float(given["lng"])
        road = distance_m(trip.lat, trip.lng, trip.dest_lat, trip.dest_lng) * ROAD
        trip.eta = math.ceil(road / SPEED_M_PER_S)
        trip.version += 1
        for sockets, text in (
            (
                self.order_sockets.get(trip.order) or set(),
                next_message("1", "courierUpdates", trip.courier_update()),
            ),
            (
                self.store_sockets.get(trip.store) or set(),
                next_message("1", "storeDeliveryFeed", trip.map_update()),
            ),
        ):
            for ws in list(sockets):
                try:
                    await ws.send_text(text)
                except Exception:  # gone meanwhile
                    sockets.discard(ws)
        answer = {
            "data": {
                "reportCourierPosition": {
                    "accepted": True,
                    "delivery": {"version": trip.version},
                    "errors": [],
                }
            }
        }
        return Response(orjson.dumps(answer), media_type="application/json")


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    floor = Floor()
    return Starlette(
        routes=[
            WebSocketRoute("/graphql", floor.endpoint),
            Route("/graphql", floor.report, methods=["POST"]),
            Route("/setup", floor.setup, methods=["POST"]),
            Route("/health", health),
        ]
    )


if __name__ == "__main__":
    serve(create_app, __doc__.splitlines()[0], port=8003)
