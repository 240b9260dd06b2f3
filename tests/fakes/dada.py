"""``FakeDada``: 达达's open API on a loopback port, in a background thread.

It checks each request's app key and signature as Dada does, keeps one order per origin id
(a second ``addOrder`` of the same one is refused, as Dada refuses it), answers status
queries and cancellations, and can be taken down (HTTP 503), made busy (code -1), or told
to hold the next ``addOrder`` unanswered until its caller goes away or it is released.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dinegraph.integrations.dada import sign

WAITING, CANCELLED = 1, 5
EXISTS, NO_ORDER, BAD_SIGNATURE, BAD_KEY, REFUSED = 2105, 2005, 2003, 2002, 2076


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
    held: threading.Event = field(default_factory=threading.Event)  # an addOrder waits
    abandoned: threading.Event = field(default_factory=threading.Event)  # its caller left
    url: str = ""
    _hold_next: bool = False
    _place_held: bool = False
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold_next_order(self, *, placed: bool = False) -> None:
        """The next addOrder is read, then left unanswered until its caller disconnects
        (``abandoned``) or ``release()``: not placed, or (``placed``) placed, its answer lost."""
        self._hold_next = True
        self._place_held = placed

    def release(self) -> None:
        self._release.set()

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
        if self.busy:
            return _fail(-1, "系统繁忙")
        if path.endswith("/order/addOrder"):
            return await self._add_order(request, order, body)
        if path.endswith("/order/queryDeliverFee"):
            if self.refuse_quotes:
                return _fail(REFUSED, "超出配送范围")
            return _ok({"distance": 1200.0, "fee": self.fee_fen / 100, "deliveryNo": order})
        if path.endswith("/order/status/query"):
            return self._query(order)
        if path.endswith("/order/formalCancel"):
            return self._cancel(order)
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
        return _ok({"distance": 1200.0, "fee": 6.0})

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
            return _ok({"orderId": order, "statusCode": self.status[order]})

    def _cancel(self, order: str) -> Response:
        with self._lock:
            if self.status.get(order) != WAITING:
                return _fail(NO_ORDER, "订单不存在或不可取消")
            self.status[order] = CANCELLED
        return _ok({"deduct_fee": 0})

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
