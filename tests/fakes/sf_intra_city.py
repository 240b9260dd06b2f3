"""``FakeSfIntraCity``: 顺丰同城's open API on a loopback port, in a background thread.

It checks each request's dev id, signature (``?sign=``) and push time as SF does, and
refuses a signed request it has already seen (a replay); keeps one order per
``shop_order_id``, quotes (``precreateorder``), answers status queries and cancellations;
it can be taken down (HTTP 503), made to refuse orders, or told to hold the next
``createorder`` unanswered until its caller goes away. ``push`` posts a rider push to our
callback URL signed as SF signs it (or badly, to see it refused).
"""

from __future__ import annotations

import asyncio
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

CREATED, CANCELLED = 1, 2
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
    refusals: list[int] = field(default_factory=list)  # error codes it answered
    held: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    _hold_next: bool = False
    _seen: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def hold_next_order(self) -> None:
        """The next createorder is read, then left unanswered until its caller leaves."""
        self._hold_next = True

    def placed(self) -> list[str]:
        with self._lock:
            return list(self.orders)

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
        if api == "createorder":
            return await self._create(request, order, fields)
        if api == "precreateorder":
            return self._quote(fields)
        if api == "getorderstatus":
            with self._lock:
                if order not in self.status:
                    return self._fail(NO_ORDER, "订单不存在")
                return _ok({"shop_order_id": order, "order_status": self.status[order]})
        if api == "cancelorder":
            with self._lock:
                if self.status.get(order) != CREATED:
                    return self._fail(NO_ORDER, "订单不存在或不可取消")
                self.status[order] = CANCELLED
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
        return _ok({"sf_order_id": f"SF{len(self.orders):010d}", "shop_order_id": order})

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
