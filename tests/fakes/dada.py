"""``FakeDada``: 达达's open API on a loopback port, in a background thread.

It checks each request's app key and signature as Dada does, keeps one order per origin id
(a second ``addOrder`` of the same one is refused, as Dada refuses it; ``reAddOrder``
publishes one it cancelled or let expire again), answers status queries (with the rider,
``transporterName``/``transporterPhone``, once one took the order) and cancellations (a
reason id, and words when it is 10000, other), and can be taken down (HTTP 503), made busy
(code -1), slowed past a caller's timeout (``delay_seconds``), or told to hold the next
``addOrder`` unanswered until its caller goes away or it is released.

With ``plans`` set, it plays Dada's riders on its own: each order it takes follows the next
plan of the cycle, a step every ``step_seconds``, posting Dada's signed status callbacks to
the order's ``callback`` URL: ``deliver`` (taken 2, at the store 100, on its way 3,
delivered 4), ``no_rider`` (nobody takes it: the caller hands it on), ``cancel`` (taken,
then cancelled by the rider, 5).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dinegraph.integrations.dada import sign

WAITING, TAKEN, AT_STORE, RIDING, DELIVERED, CANCELLED, EXPIRED = 1, 2, 100, 3, 4, 5, 7
EXISTS, NO_ORDER, BAD_SIGNATURE, BAD_KEY, REFUSED = 2105, 2005, 2003, 2002, 2076
NO_REASON, NOT_REPUBLISHABLE = 2062, 2063


@dataclass
class FakeDada:
    app_key: str = "fake-app-key"
    app_secret: str = "fake-app-secret"
    source_id: str = "73753"
    down: bool = False  # answer 503
    busy: bool = False  # answer code -1 (系统繁忙)
    fee_fen: int = 900  # what queryDeliverFee quotes
    refuse_quotes: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # origin id → order
    status: dict[str, int] = field(default_factory=dict)  # origin id → statusCode
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, origin id)
    # origin id → (cancel_reason_id, cancel_reason) of each formalCancel taken
    cancel_reasons: dict[str, tuple[int, str]] = field(default_factory=dict)
    held: threading.Event = field(default_factory=threading.Event)  # an addOrder waits
    abandoned: threading.Event = field(default_factory=threading.Event)  # its caller left
    delay_seconds: float = 0.0  # answer this late (a caller's timeout)
    riders: dict[str, tuple[str, str]] = field(default_factory=dict)  # origin id → rider
    # What the status query answers as transporterPhone (a privacy number "main,ext"),
    # where it is not the rider's phone of the callbacks.
    contacts: dict[str, str] = field(default_factory=dict)
    plans: tuple[str, ...] = ()  # deliver, no_rider, cancel: the riders' play, in turn
    step_seconds: float = 1.0
    callbacks: list[tuple[str, int, int]] = field(default_factory=list)  # (order, status, HTTP)
    url: str = ""
    _plan: Iterator[str] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _hold_next: bool = False
    _place_held: bool = False
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold_next_order(self, *, placed: bool = False) -> None:
        """The next addOrder is read, then left unanswered until its caller disconnects
        (``abandoned``) or ``release()``: not placed, or (``placed``) placed, its answer lost."""
        self._hold_next = True
        self._place_held = placed

    def take(
        self, order: str, name: str = "达达骑士", phone: str = "13100001111", contact: str = ""
    ) -> None:
        """A rider takes the order (status 2); the status query then names them, with
        ``contact`` (when given) as their number."""
        with self._lock:
            self.status[order] = TAKEN
            self.riders[order] = (name, phone)
            if contact:
                self.contacts[order] = contact

    def release(self) -> None:
        self._release.set()

    def callback_query(self, order: str) -> str:
        """The query string of the callback URL the order was placed with (its token)."""
        with self._lock:
            return urlsplit(str(self.orders[order].get("callback") or "")).query

    def placed(self) -> list[str]:
        """Origin ids of the orders Dada took, in order."""
        with self._lock:
            return list(self.orders)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/{path:path}", self._endpoint, methods=["POST"])])

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        if self.down:
            return Response("service unavailable", status_code=503)
        fields = orjson.loads(await request.body())
        if fields.get("app_key") != self.app_key or fields.get("source_id") != self.source_id:
            return _fail(BAD_KEY, "app_key或source_id错误")
        if fields.get("signature") != sign(fields, self.app_secret):
            return _fail(BAD_SIGNATURE, "签名错误")
        if abs(time.time() - int(fields["timestamp"])) > 600:
            return _fail(BAD_SIGNATURE, "时间戳过期")
        body = orjson.loads(fields["body"])
        order = str(body.get("origin_id") or body.get("order_id"))
        with self._lock:
            self.requests.append((path, order))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.busy:
            return _fail(-1, "系统繁忙")
        if path.endswith("/order/addOrder"):
            return await self._add_order(request, order, body)
        return self._answer(path.rsplit("/order/", 1)[-1], order, body)

    def _answer(self, api: str, order: str, body: dict[str, Any]) -> Response:
        if api == "reAddOrder":
            return self._re_add(order, body)
        if api == "queryDeliverFee":
            if self.refuse_quotes:
                return _fail(REFUSED, "超出配送范围")
            return _ok({"distance": 1200.0, "fee": self.fee_fen / 100, "deliveryNo": order})
        if api == "status/query":
            return self._query(order)
        if api == "formalCancel":
            return self._cancel(order, body)
        return _fail(404, "no such api")

    async def _add_order(self, request: Request, order: str, body: dict[str, Any]) -> Response:
        if self._hold_next:
            self._hold_next = False
            if self._place_held:
                self._place(order, body)
            self.held.set()
            while not self._release.is_set():
                if await request.is_disconnected():
                    self.abandoned.set()
                    return Response(status_code=499)  # nobody left to answer
                await asyncio.sleep(0.02)
            if self._place_held:
                return _ok({"distance": 1200.0, "fee": 6.0})
        if not self._place(order, body):
            return _fail(EXISTS, "订单已存在")
        if self.plans:
            self._play(order, str(body.get("callback") or ""))
        return _ok({"distance": 1200.0, "fee": 6.0})

    def _play(self, order: str, callback: str) -> None:
        with self._lock:
            if self._plan is None:
                self._plan = itertools.cycle(self.plans)
            plan = next(self._plan)
        task = asyncio.get_running_loop().create_task(self._ride(order, callback, plan))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ride(self, order: str, callback: str, plan: str) -> None:
        """Dada's riders for one order, as its callbacks tell it."""
        steps = {
            "deliver": (TAKEN, AT_STORE, RIDING, DELIVERED),
            "cancel": (TAKEN, CANCELLED),
            "no_rider": (),
        }[plan]
        for status in steps:
            await asyncio.sleep(self.step_seconds)
            with self._lock:
                if self.status.get(order) == CANCELLED:
                    return  # called off meanwhile
                self.status[order] = status
                if status == TAKEN:
                    n = len(self.riders) % 10_000
                    self.riders[order] = ("达达骑士", f"1710000{n:04d}")
                    self.contacts[order] = f"1700000{n:04d},8{n:03d}"
            await self._callback(callback, order, status)

    def callback_fields(self, order: str, status: int) -> dict[str, Any]:
        """One status callback as Dada posts it, signed."""
        name, phone = self.riders.get(order, ("", ""))
        fields: dict[str, Any] = {
            "client_id": f"DADA{abs(hash(order)) % 10**10:010d}",
            "order_id": order,
            "order_status": status,
            "cancel_reason": "骑士取消" if status == CANCELLED else "",
            "cancel_from": 1 if status == CANCELLED else 0,
            "update_time": int(time.time()),
            "dm_id": 1001 if name else 0,
            "dm_name": name,
            "dm_mobile": phone,
        }
        values = sorted(str(fields[k]) for k in ("client_id", "order_id", "update_time"))
        fields["signature"] = hashlib.md5("".join(values).encode()).hexdigest()
        return fields

    async def _callback(self, url: str, order: str, status: int) -> None:
        """Post it until it is taken (Dada tries again on anything but HTTP 200)."""
        for _ in range(5):
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    answer = await client.post(url, json=self.callback_fields(order, status))
                code = answer.status_code
            except httpx.HTTPError:
                code = 0
            with self._lock:
                self.callbacks.append((order, status, code))
            if code == 200:
                return
            await asyncio.sleep(self.step_seconds)

    def _place(self, order: str, body: dict[str, Any]) -> bool:
        with self._lock:
            if order in self.orders:
                return False
            self.orders[order] = body
            self.status[order] = WAITING
            return True

    def _query(self, order: str) -> Response:
        with self._lock:
            if order not in self.status:
                return _fail(NO_ORDER, "订单不存在")
            answer: dict[str, Any] = {"orderId": order, "statusCode": self.status[order]}
            if order in self.riders:
                name, phone = self.riders[order]
                phone = self.contacts.get(order, phone)
                answer.update(transporterName=name, transporterPhone=phone)
            return _ok(answer)

    def _cancel(self, order: str, body: dict[str, Any]) -> Response:
        reason_id, reason = (
            int(body.get("cancel_reason_id") or 0),
            str(body.get("cancel_reason") or ""),
        )
        if not reason_id or (reason_id == 10000 and not reason):
            return _fail(NO_REASON, "取消原因不能为空")
        with self._lock:
            if self.status.get(order) != WAITING:
                return _fail(NO_ORDER, "订单不存在或不可取消")
            self.status[order] = CANCELLED
            self.cancel_reasons[order] = (reason_id, reason)
        return _ok({"deduct_fee": 0})

    def _re_add(self, order: str, body: dict[str, Any]) -> Response:
        """Dada publishes an order it cancelled or let expire again, under its origin id."""
        with self._lock:
            if order not in self.orders:
                return _fail(NO_ORDER, "订单不存在")
            if self.status[order] not in (CANCELLED, EXPIRED):
                return _fail(NOT_REPUBLISHABLE, "订单状态不允许重新发布")
            self.orders[order] = body
            self.status[order] = WAITING
            self.riders.pop(order, None)
        if self.plans:
            self._play(order, str(body.get("callback") or ""))
        return _ok({"distance": 1200.0, "fee": 6.0})

    @contextmanager
    def running(self) -> Iterator[FakeDada]:
        with serving(self.app()) as url:
            self.url = url
            yield self


def _ok(result: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": "success", "code": 0, "msg": "成功", "result": result})


def _fail(code: int, msg: str) -> JSONResponse:
    return JSONResponse({"status": "fail", "code": code, "msg": msg, "result": None})


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="fake-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake provider did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
