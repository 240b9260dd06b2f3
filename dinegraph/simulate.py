"""``dinegraph simulate``: demo orders driven through the whole flow against a running server.

Each trip: a member places a delivery order and pays; the store accepts, cooks and marks it
ready, which dispatches it; the courier rides from the store toward the customer at a
realistic speed, reporting through the same partner mutations a platform uses; delivered.
Everything goes through the public GraphQL API, so subscriptions move in GraphiQL as it runs.

With ``platform_callbacks`` (``--platform-callbacks DADA,SF_INTRA_CITY``) the riders of
those platforms are not played here: the server orders through its real adapters, and the
platform (or its local protocol server, configured to play riders) reports through its
signed callbacks. The simulation plays the member and the store only, follows each trip
(a platform that finds no rider hands it on to the next; one whose rider cancels makes the
store dispatch it again) and completes the order once delivered.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from dinegraph.domain.geo import GeoPoint, distance_m

PLACE = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  order { id placedAt store { name } total { display } } errors { code message } } }"""
PAY = "mutation($id: ID!) { payOrder(orderId: $id) { order { status } errors { code message } } }"
MOVE = """mutation($input: UpdateOrderStatusInput!) { updateOrderStatus(input: $input) {
  order { status } errors { code message } } }"""
DELIVERY = """query($id: ID!) { order(id: $id) { status
  delivery { id status provider courier { name } etaSeconds } } }"""
REDISPATCHES = 3  # a trip whose platforms cancel it this often is given up
DISPATCH = """mutation($input: DispatchDeliveryInput!) { dispatchDelivery(input: $input) {
  delivery { id status } errors { code message } } }"""
REPORT = """mutation($input: ReportCourierPositionInput!) { reportCourierPosition(input: $input) {
  accepted errors { code message } } }"""
STATUS = """mutation($input: ReportDeliveryStatusInput!) { reportDeliveryStatus(input: $input) {
  delivery { status } errors { code message } } }"""
STORES = """{ stores(first: 100) { edges { node { id name location { lat lng }
  deliveryRadiusMeters isOpen } } } }"""
MENU = """query($s: ID!) { menu(storeId: $s, channel: DELIVERY) { categories { products {
  skus { id stock { available soldOut } } } } } }"""


class SimulationError(RuntimeError):
    """The simulation cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Credentials:
    """Who the simulation acts as: members (made per trip), staff, and each platform's key."""

    member_token: Callable[[], Awaitable[str]]  # a new member, signed in
    staff_token: str
    partner_keys: dict[str, str]  # provider → API key


@dataclass(frozen=True)
class Pace:
    orders_per_minute: float
    duration: timedelta
    speed_kmh: float
    report_every: float  # seconds between a courier's reports
    cook_seconds: float
    farthest_m: float = 2500  # customers live up to this far from the store
    grace: timedelta = timedelta(seconds=60)  # after `duration`, for trips under way to finish
    max_orders: int | None = None  # stop placing orders after this many
    # Platforms whose riders report through their own callbacks: not played here.
    platform_callbacks: frozenset[str] = frozenset()
    poll_seconds: float = 0.5  # how often a trip carried by a platform is looked at


Log = Callable[[str], None]


class Simulation:
    def __init__(self, url: str, credentials: Credentials, pace: Pace, log: Log) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=15)
        self.credentials = credentials
        self.pace = pace
        self.log = log
        self.rng = random.Random()
        self.offset = timedelta(0)  # server clock − ours (the server may run a demo clock)
        self.trips = 0
        self.delivered = 0
        self.handed_on = 0  # platform trips handed on to the next platform by the server
        self.dispatched_again = 0  # platform trips cancelled by the platform, sent again

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, **auth: str
    ) -> dict[str, Any]:
        headers = {}
        if "token" in auth:
            headers["Authorization"] = f"Bearer {auth['token']}"
        if "key" in auth:
            headers["X-Api-Key"] = auth["key"]
        answer = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = answer.json()
        if body.get("errors"):
            raise SimulationError(f"the server refused a request: {body['errors'][0]['message']}")
        data: dict[str, Any] = body["data"]
        return data

    def server_now(self) -> datetime:
        return datetime.now().astimezone() + self.offset

    async def run(self) -> None:
        stores = await self._stores()
        if not stores:
            raise SimulationError("the server has no open stores; load the demo chain first")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pace.duration.total_seconds()
        trips: set[asyncio.Task[None]] = set()
        gap = 60 / self.pace.orders_per_minute
        abandoned = 0
        try:
            started = 0
            while loop.time() < deadline:
                if self.pace.max_orders is not None and started >= self.pace.max_orders:
                    break
                started += 1
                trip = asyncio.create_task(self._trip(self.rng.choice(stores)))
                trips.add(trip)
                trip.add_done_callback(trips.discard)
                await asyncio.sleep(min(gap, max(0.0, deadline - loop.time())))
            if trips:
                grace = self.pace.grace.total_seconds()
                self.log(f"no new orders; {len(trips)} trips under way get {grace:g} s to finish")
                _, late = await asyncio.wait(set(trips), timeout=grace)
                abandoned = len(late)
        finally:
            for trip in trips:
                trip.cancel()
            await asyncio.gather(*trips, return_exceptions=True)
            await self.http.aclose()
        if abandoned:
            self.log(
                f"abandoned {abandoned} trips still under way after the grace time; "
                "their orders stay in the status they had reached"
            )
        if self.pace.platform_callbacks:
            self.log(
                f"platforms: {self.handed_on} trips handed on to the next platform, "
                f"{self.dispatched_again} dispatched again after the platform cancelled"
            )
        self.log(f"done: {self.trips} orders placed, {self.delivered} delivered")

    async def _stores(self) -> list[dict[str, Any]]:
        data = await self.gql(STORES)
        return [e["node"] for e in data["stores"]["edges"] if e["node"]["isOpen"]]

    async def _sku(self, store: dict[str, Any]) -> str | None:
        data = await self.gql(MENU, {"s": store["id"]})
        skus = [
            sku["id"]
            for category in (data["menu"] or {}).get("categories", [])
            for product in category["products"]
            for sku in product["skus"]
            if not sku["stock"]["soldOut"] and (sku["stock"]["available"] or 9) > 2
        ]
        return self.rng.choice(skus) if skus else None

    def _address(self, store: dict[str, Any]) -> GeoPoint:
        radius = min(store["deliveryRadiusMeters"] * 0.8, self.pace.farthest_m)
        metres = self.rng.uniform(radius / 4, radius)
        angle = self.rng.uniform(0, 2 * math.pi)
        here = store["location"]
        return GeoPoint(
            here["lat"] + metres * math.cos(angle) / 111_195,
            here["lng"]
            + metres * math.sin(angle) / (111_195 * math.cos(math.radians(here["lat"]))),
        )

    async def _trip(self, store: dict[str, Any]) -> None:
        try:
            await self._ride(store)
        except SimulationError as error:
            self.log(f"[{store['name']}] {error}")
        except Exception as error:  # one trip's trouble never stops the others
            self.log(f"[{store['name']}] trip failed: {error!r}")

    async def _ride(self, store: dict[str, Any]) -> None:
        sku = await self._sku(store)
        if sku is None:
            raise SimulationError("nothing left to sell")
        member = await self.credentials.member_token()
        staff = self.credentials.staff_token
        dropoff = self._address(store)
        placed = await self.gql(
            PLACE,
            {
                "input": {
                    "idempotencyKey": uuid.uuid4().hex,
                    "channel": "DELIVERY",
                    "storeId": store["id"],
                    "address": {
                        "lat": dropoff.lat,
                        "lng": dropoff.lng,
                        "detail": f"模拟小区 {self.rng.randint(1, 30)} 栋",
                        "contactName": "模拟顾客",
                        "contactPhone": "13800000000",
                    },
                    "lines": [{"skuId": sku, "quantity": 1}],
                }
            },
            token=member,
        )
        payload = placed["placeOrder"]
        if payload["errors"]:
            error = payload["errors"][0]
            hint = ""
            if error["code"] in ("STORE_CANNOT_SERVE", "NO_STORE_CAN_SERVE"):
                hint = (
                    " (closed at the server's time? start the server with "
                    "DINEGRAPH_CLOCK_START=<a time in opening hours, e.g. 2026-11-22T12:00+08:00>)"
                )
            raise SimulationError(f"order refused: {error['code']} {error['message']}{hint}")
        order = payload["order"]
        placed_at = datetime.fromisoformat(order["placedAt"])
        self.offset = placed_at - datetime.now().astimezone()
        self.trips += 1
        tag = f"[{store['name']} order {order['id']}]"
        self.log(f"{tag} placed, {order['total']['display']}")
        await self._expect(PAY, {"id": order["id"]}, "payOrder", token=member)
        for status in ("ACCEPTED", "PREPARING"):
            await self._move(order["id"], status)
        await asyncio.sleep(self.pace.cook_seconds)
        await self._move(order["id"], "READY")
        first = await self._delivery(order["id"])
        if first is not None and first["provider"] in self.pace.platform_callbacks:
            await self._follow(order["id"], tag)
            await self._move(order["id"], "COMPLETED", staff=staff)
            self.delivered += 1
            self.log(f"{tag} delivered")
            return
        delivery = await self._dispatched(order["id"])
        courier = (delivery.get("courier") or {}).get("name", "?")
        self.log(f"{tag} dispatched to {delivery['provider']}, courier {courier}")
        key = self.credentials.partner_keys[delivery["provider"]]
        origin = GeoPoint(store["location"]["lat"], store["location"]["lng"])
        await self._status(delivery["id"], "PICKED_UP", key)
        await self._ride_to(delivery["id"], origin, dropoff, key, tag)
        await self._status(delivery["id"], "DELIVERED", key)
        await self._move(order["id"], "COMPLETED", staff=staff)
        self.delivered += 1
        self.log(f"{tag} delivered")

    async def _expect(self, query: str, variables: dict[str, Any], field: str, **auth: str) -> Any:
        data = (await self.gql(query, variables, **auth))[field]
        if data["errors"]:
            error = data["errors"][0]
            raise SimulationError(f"{field} refused: {error['code']} {error['message']}")
        return data

    async def _move(self, order_id: str, status: str, staff: str | None = None) -> None:
        await self._expect(
            MOVE,
            {"input": {"orderId": order_id, "status": status}},
            "updateOrderStatus",
            token=staff or self.credentials.staff_token,
        )

    async def _delivery(self, order_id: str) -> dict[str, Any] | None:
        data = await self.gql(DELIVERY, {"id": order_id}, token=self.credentials.staff_token)
        delivery = data["order"]["delivery"]
        return dict(delivery) if delivery is not None else None

    async def _follow(self, order_id: str, tag: str) -> None:
        """A trip a platform carries, as its callbacks move it, until delivered. The server
        hands a trip no rider took on to the next platform; one the platform cancels, the
        store dispatches again."""
        seen: tuple[str, str, str] | None = None
        again = 0
        while True:
            delivery = await self._delivery(order_id)
            if delivery is None:
                raise SimulationError("the order has no delivery")
            now = (delivery["id"], delivery["provider"], delivery["status"])
            if now != seen:
                if seen is not None and seen[0] == now[0] and seen[1] != now[1]:
                    self.handed_on += 1
                    self.log(f"{tag} {seen[1]} found no rider: handed on to {now[1]}")
                courier = (delivery.get("courier") or {}).get("name")
                rider = f", rider {courier}" if courier else ""
                self.log(f"{tag} {now[1]} {now[2].lower()}{rider}")
                seen = now
            if now[2] == "DELIVERED":
                return
            if now[2] == "FAILED":
                if again >= REDISPATCHES:
                    raise SimulationError(f"the platforms cancelled it {again + 1} times")
                again += 1
                self.dispatched_again += 1
                self.log(f"{tag} {now[1]} cancelled it: the store dispatches it again")
                await self._expect(
                    DISPATCH,
                    {"input": {"orderId": order_id}},
                    "dispatchDelivery",
                    token=self.credentials.staff_token,
                )
            await asyncio.sleep(self.pace.poll_seconds)

    async def _dispatched(self, order_id: str) -> dict[str, Any]:
        """The order's delivery once a courier has it; own riders may all be out a while."""
        for _ in range(60):
            data = await self.gql(DELIVERY, {"id": order_id}, token=self.credentials.staff_token)
            delivery = data["order"]["delivery"]
            if delivery is not None and delivery["status"] != "PENDING":
                return dict(delivery)
            await asyncio.sleep(5)
            await self.gql(
                DISPATCH, {"input": {"orderId": order_id}}, token=self.credentials.staff_token
            )
        raise SimulationError("no courier took the order in 5 minutes")

    async def _status(self, delivery_id: str, status: str, key: str) -> None:
        await self._expect(
            STATUS,
            {"input": {"deliveryId": delivery_id, "status": status}},
            "reportDeliveryStatus",
            key=key,
        )

    async def _ride_to(
        self, delivery_id: str, origin: GeoPoint, dropoff: GeoPoint, key: str, tag: str
    ) -> None:
        metres = distance_m(origin, dropoff)
        speed = self.pace.speed_kmh / 3.6 * self.rng.uniform(0.8, 1.2)  # m/s
        steps = max(1, math.ceil(metres / (speed * self.pace.report_every)))
        self.log(f"{tag} riding {metres} m in about {math.ceil(metres / speed)} s")
        for step in range(1, steps + 1):
            await asyncio.sleep(self.pace.report_every)
            t = step / steps
            wobble = self.rng.uniform(-0.00003, 0.00003)  # a GPS fix is never exact
            await self._expect(
                REPORT,
                {
                    "input": {
                        "deliveryId": delivery_id,
                        "lat": origin.lat + (dropoff.lat - origin.lat) * t + wobble,
                        "lng": origin.lng + (dropoff.lng - origin.lng) * t + wobble,
                        "recordedAt": self.server_now().isoformat(),
                    }
                },
                "reportCourierPosition",
                key=key,
            )
