"""``FakeSfIntraCity``: 顺丰同城's open API on a loopback port, in a background thread.

It checks each request's dev id, signature (``?sign=``) and push time as SF does, and
refuses a signed request it has already seen (a replay); keeps one order per
``shop_order_id``, quotes (``precreateorder``), answers status queries and cancellations;
it can be taken down (HTTP 503), made to refuse orders, or told to hold the next
``createorder`` unanswered until its caller goes away. ``push`` posts a rider push to our
callback URL signed as SF signs it (or badly, to see it refused). ``getorderstatus`` names
the rider (``rider_name``, ``rider_phone``: a privacy number ``main,ext``) once one took the
order; ``delay_seconds`` answers past a caller's timeout.

With ``plans`` set and ``callback_url`` given, it plays SF's riders on its own: each order
it takes follows the next plan of the cycle, a step every ``step_seconds``, pushing SF's
signed pushes: ``deliver`` (taken 10, at the store 12, picked up 15, then the rider's
position every ``step_seconds`` from the shop to the customer, delivered 17), ``no_rider``
(nobody takes it), ``cancel`` (taken, then cancelled, 2).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dinegraph.integrations.sf_intra_city import sign
from tests.fakes.dada import serving

CREATED, CANCELLED, TAKEN, AT_STORE, PICKED_UP, DELIVERED = 1, 2, 10, 12, 15, 17
BAD_SIGN, BAD_DEV, EXPIRED, REPLAYED, EXISTS, NO_ORDER, REFUSED = (
    1002,
    1001,
    1003,
    1004,
    2001,
    2002,
    2003,
)


@dataclass
class FakeSfIntraCity:
    dev_id: str = "1588000001"
    dev_key: str = "fake-sf-dev-key"
    down: bool = False  # answer 503
    refuse_orders: bool = False  # createorder / precreateorder say no (out of range)
    refuse_create: bool = False  # createorder alone says no (it quoted, then no capacity)
    fee_fen: int = 1200  # what precreateorder quotes
    eta_seconds: int = 1800
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # shop_order_id → body
    status: dict[str, int] = field(default_factory=dict)  # shop_order_id → order_status
    requests: list[tuple[str, str]] = field(default_factory=list)  # (api, shop_order_id)
    # shop_order_id → (cancel_code, cancel_reason) of each cancelorder taken
    cancel_reasons: dict[str, tuple[int, str]] = field(default_factory=dict)
    refusals: list[int] = field(default_factory=list)  # error codes it answered
    held: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)
    delay_seconds: float = 0.0  # answer this late (a caller's timeout)
    riders: dict[str, tuple[str, str]] = field(default_factory=dict)  # shop_order_id → rider
    contacts: dict[str, str] = field(default_factory=dict)  # what getorderstatus answers
    plans: tuple[str, ...] = ()  # deliver, no_rider, cancel: the riders' play, in turn
    step_seconds: float = 1.2  # above a second: push_time counts whole seconds
    positions: int = 4  # position pushes between picking up and delivering
    callback_url: str = ""  # our push endpoint, as set in SF's console
    pushes: list[tuple[str, int, int]] = field(default_factory=list)  # (order, status, HTTP)
    url: str = ""
    _plan: Iterator[str] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _hold_next: bool = False
    _seen: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def hold_next_order(self) -> None:
        """The next createorder is read, then left unanswered until its caller leaves."""
        self._hold_next = True

    def placed(self) -> list[str]:
        with self._lock:
            return list(self.orders)

    def take(
        self, order: str, name: str = "顺丰骑士", phone: str = "13200002222", contact: str = ""
    ) -> None:
        """A rider takes the order (10); getorderstatus then names them, with ``contact``
        (when given) as their number."""
        with self._lock:
            self.status[order] = TAKEN
            self.riders[order] = (name, phone)
            if contact:
                self.contacts[order] = contact

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/open/api/external/{api}", self._endpoint, methods=["POST"])]
        )

    async def _endpoint(self, request: Request) -> Response:
        if self.down:
            return Response("service unavailable", status_code=503)
        api = request.path_params["api"]
        body = await request.body()
        given = request.query_params.get("sign", "")
        fields = orjson.loads(body)
        refused = self._refusal(body, given, fields)
        if refused is not None:
            return refused
        order = str(fields.get("shop_order_id") or fields.get("order_id") or "")
        with self._lock:
            self.requests.append((api, order))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if api == "createorder":
            return await self._create(request, order, fields)
        if api == "precreateorder":
            return self._quote(fields)
        if api == "getorderstatus":
            with self._lock:
                if order not in self.status:
                    return self._fail(NO_ORDER, "订单不存在")
                answer: dict[str, Any] = {
                    "shop_order_id": order,
                    "order_status": self.status[order],
                }
                if order in self.riders:
                    name, phone = self.riders[order]
                    answer.update(rider_name=name, rider_phone=self.contacts.get(order, phone))
                return _ok(answer)
        if api == "cancelorder":
            with self._lock:
                if self.status.get(order) != CREATED:
                    return self._fail(NO_ORDER, "订单不存在或不可取消")
                self.status[order] = CANCELLED
                self.cancel_reasons[order] = (
                    int(fields.get("cancel_code") or 0),
                    str(fields.get("cancel_reason") or ""),
                )
                self._seen.add(given)
            return _ok({"shop_order_id": order, "deduction_detail": {"deduction_fee": 0}})
        return self._fail(404, "no such api")

    def _refusal(self, body: bytes, given: str, fields: dict[str, Any]) -> Response | None:
        """SF's checks of who signed what, and when."""
        if str(fields.get("dev_id")) != self.dev_id:
            return self._fail(BAD_DEV, "开发者不存在")
        if given != sign(body, self.dev_id, self.dev_key):
            return self._fail(BAD_SIGN, "签名错误")
        if abs(time.time() - int(fields.get("push_time", 0))) > 300:
            return self._fail(EXPIRED, "push_time 过期")
        with self._lock:  # an order or cancellation taken once is not taken again
            if given in self._seen:
                return self._fail(REPLAYED, "重复请求")
        return None

    def _quote(self, fields: dict[str, Any]) -> Response:
        if self.refuse_orders:
            return self._fail(REFUSED, "超出配送范围")
        return _ok(
            {
                "total_price": self.fee_fen,
                "delivery_distance_meter": 2100,
                "expect_time": int(fields["push_time"]) + self.eta_seconds,
            },
            push_time=int(fields["push_time"]),
        )

    async def _create(self, request: Request, order: str, fields: dict[str, Any]) -> Response:
        if self._hold_next:
            self._hold_next = False
            self.held.set()
            while True:
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.02)
            self.abandoned.set()
            return Response(status_code=499)
        if self.refuse_orders or self.refuse_create:
            return self._fail(REFUSED, "超出配送范围")
        with self._lock:
            if order in self.orders:
                return self._fail(EXISTS, "商家订单号重复")
            self.orders[order] = fields
            self.status[order] = CREATED
            self._seen.add(request.query_params["sign"])
        if self.plans and self.callback_url:
            self._play(order, fields)
        return _ok({"sf_order_id": f"SF{len(self.orders):010d}", "shop_order_id": order})

    def _play(self, order: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if self._plan is None:
                self._plan = itertools.cycle(self.plans)
            plan = next(self._plan)
        task = asyncio.get_running_loop().create_task(self._ride(order, fields, plan))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ride(self, order: str, fields: dict[str, Any], plan: str) -> None:
        """SF's riders for one order, as its pushes tell it."""
        shop, user = fields["shop"], fields["receive"]
        start = (float(shop["shop_lat"]), float(shop["shop_lng"]))
        end = (float(user["user_lat"]), float(user["user_lng"]))
        Step = tuple[int, tuple[float, float] | None]
        plans: dict[str, list[Step]] = {
            "deliver": [
                (TAKEN, None),
                (AT_STORE, start),
                (PICKED_UP, start),
                *(
                    (
                        PICKED_UP,
                        (
                            start[0] + (end[0] - start[0]) * n / self.positions,
                            start[1] + (end[1] - start[1]) * n / self.positions,
                        ),
                    )
                    for n in range(1, self.positions + 1)
                ),
                (DELIVERED, end),
            ],
            "cancel": [(TAKEN, None), (CANCELLED, None)],
            "no_rider": [],
        }
        steps = plans[plan]
        for status, where in steps:
            await asyncio.sleep(self.step_seconds)
            with self._lock:
                if self.status.get(order) == CANCELLED:
                    return  # called off meanwhile
                self.status[order] = status
                if status == TAKEN:
                    n = len(self.riders) % 10_000
                    self.riders[order] = ("顺丰骑士", f"1720000{n:04d}")
                    self.contacts[order] = f"1700001{n:04d},9{n:03d}"
            await self._push(order, status, where)

    def push_fields(
        self, order: str, status: int, where: tuple[float, float] | None
    ) -> dict[str, Any]:
        name, phone = self.riders.get(order, ("", ""))
        fields: dict[str, Any] = {
            "shop_order_id": order,
            "sf_order_id": f"SF{abs(hash(order)) % 10**10:010d}",
            "order_status": status,
            "operator_name": name,
            "operator_phone": phone,
        }
        if where is not None:
            fields.update(rider_lat=str(where[0]), rider_lng=str(where[1]))
        return fields

    async def _push(self, order: str, status: int, where: tuple[float, float] | None) -> None:
        """Push it until it is taken (SF tries again on anything but error_code 0)."""
        for _ in range(5):
            body = self.push_body(self.push_fields(order, status, where))
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    answer = await client.post(
                        self.callback_url,
                        content=body,
                        params={"sign": sign(body, self.dev_id, self.dev_key)},
                        headers={"content-type": "application/json"},
                    )
                code = answer.status_code
                taken = code == 200 and answer.json().get("error_code") == 0
            except httpx.HTTPError:
                code, taken = 0, False
            with self._lock:
                self.pushes.append((order, status, code))
            if taken:
                return
            await asyncio.sleep(self.step_seconds)

    def _fail(self, code: int, msg: str) -> JSONResponse:
        with self._lock:
            self.refusals.append(code)
        return JSONResponse({"error_code": code, "error_msg": msg, "error_data": None})

    def push_body(self, fields: dict[str, Any]) -> bytes:
        return orjson.dumps({"push_time": int(time.time()), **fields})

    def push(
        self, callback_url: str, fields: dict[str, Any], *, bad_sign: bool = False
    ) -> httpx.Response:
        """Post a push (``url_index`` and its fields) to our callback, signed as SF does."""
        return self.post_signed(callback_url, self.push_body(fields), bad_sign=bad_sign)

    def post_signed(self, url: str, body: bytes, *, bad_sign: bool = False) -> httpx.Response:
        key = "wrong-key" if bad_sign else self.dev_key
        return httpx.post(
            url,
            content=body,
            params={"sign": sign(body, self.dev_id, key)},
            headers={"content-type": "application/json"},
            timeout=10,
        )

    @contextmanager
    def running(self) -> Iterator[FakeSfIntraCity]:
        with serving(self.app()) as url:
            self.url = url
            yield self


def _ok(result: dict[str, Any], *, push_time: int | None = None) -> JSONResponse:
    answer: dict[str, Any] = {"error_code": 0, "error_msg": "success", "result": result}
    if push_time is not None:
        answer["push_time"] = push_time
    return JSONResponse(answer)
