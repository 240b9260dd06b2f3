"""达达 (Dada) open platform: a DADA store's deliveries are ordered and called off there.

Protocol (newopen.imdada.cn): every call is ``POST <base>/<path>`` with the JSON
``{app_key, body, format: "json", source_id, timestamp, v: "1.0", signature}``; ``body`` is
the call's own parameters as a JSON string, and ``signature`` is the upper-case MD5 of the
app secret, then each other field's name and value in name order, then the secret again.
The answer is ``{"status": "success"|"fail", "code", "msg", "result"}``.

- ``addOrder`` takes our delivery as ``origin_id`` (``delivery-<id>``): Dada keeps one
  order per origin id, so that is the idempotency key of a retried dispatch. When Dada
  refuses an order, it is asked for that origin id: an order it already has is success,
  unless Dada cancelled it or let it expire (5, 7) while our delivery still waits for a
  courier (its callback lost, or not yet applied): then ``reAddOrder`` publishes it again
  under the same origin id, as Dada documents for such orders. (A trip that ended is
  dispatched again as a new delivery, with an origin id of its own.)
- Dada finds a courier after it answers; who it is comes in through the partner
  mutations (``reportDeliveryStatus``), as Dada's status callbacks would bring it.
- ``formalCancel`` calls the courier off, with Dada's reason: 1 没有配送员接单 when no rider
  took it in time (it goes to the next platform), else 10000 (other) and the words; an
  order Dada has already cancelled is success.
- The rider's contact is asked of ``/api/order/status/query`` (``transporterPhone``, while
  the order is 待取货 2, 到店 100 or 配送中 3). Dada's documentation calls that field the
  rider's phone and documents no privacy-number call of its own: it is handed to customers
  only when ``privacy_numbers`` says the merchant account has Dada's number protection
  (号码保护) on, so that the number Dada answers is a privacy number; otherwise customers
  get none.

Dada's callback signature (``carrier_callbacks``) uses no secret: anyone who knows an order's
origin id could make one. So the ``callback`` URL given with each order carries a token of
its own, ``token=<HMAC of the origin id>`` under a key of the server's
(``callback_token``), and a callback is taken only with the token of the order it names.

A refusal raises ``CallRefused("DADA_<code>")``; Dada busy (its code -1), an HTTP error or
no answer in time raise ``RetryLater``: the relay of calls out tries again.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from dinegraph.domain.calls import CallRefused, RetryLater
from dinegraph.domain.delivery import CallOff, Courier, CourierContact, Provider, privacy_contact
from dinegraph.domain.ports import DeliveryQuote, DispatchRequest

API_VERSION = "1.0"
BUSY = -1  # 系统繁忙: worth another try
CANCELLED = 5  # an order's statusCode once cancelled
EXPIRED = 7  # nobody took it in Dada's time
REPUBLISHABLE = frozenset({CANCELLED, EXPIRED})  # reAddOrder publishes these again
OTHER_REASON = 10000  # cancel_reason_id "other": the reason is given in words
# Dada's cancel_reason_id and words for each reason we call an order off.
CANCEL_REASONS = {
    CallOff.REFUNDED: (OTHER_REASON, "顾客已退款"),
    CallOff.NO_RIDER: (1, "没有配送员接单"),
}
RIDING = frozenset({2, 100, 3})  # 待取货, 骑士到店, 配送中: a rider carries the order


def sign(fields: Mapping[str, object], secret: str) -> str:
    """The signature of a request's fields (all but ``signature``), as Dada checks it."""
    joined = "".join(f"{name}{fields[name]}" for name in sorted(fields) if name != "signature")
    return hashlib.md5(f"{secret}{joined}{secret}".encode()).hexdigest().upper()


def origin_id(delivery_id: int) -> str:
    return f"delivery-{delivery_id}"


def callback_token(key: bytes, order: str) -> str:
    """The token the callback URL of Dada's order ``order`` (an origin id) carries."""
    return hmac.new(key, order.encode(), hashlib.sha256).hexdigest()[:32]


def callback_for(url: str, key: bytes, order: str) -> str:
    """The callback URL given to Dada with one order: ours, with that order's token."""
    return f"{url}{'&' if '?' in url else '?'}token={callback_token(key, order)}"


class DadaPlatform:
    """The DADA platform port over Dada's open API."""

    provider = Provider.DADA

    def __init__(
        self,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        source_id: str,
        city_code: str,
        callback_url: str,
        callback_key: bytes,
        timeout_seconds: float = 10.0,
        privacy_numbers: bool = False,
        contact_timeout_seconds: float = 5.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_key = app_key
        self._secret = app_secret
        self._source_id = source_id
        self._city_code = city_code
        self._callback = callback_url
        self._callback_key = callback_key
        self._timeout = timeout_seconds
        self._privacy_numbers = privacy_numbers
        self._contact_timeout = contact_timeout_seconds  # a customer waits on this one

    def _order(self, request: DispatchRequest) -> dict[str, object]:
        order = origin_id(request.delivery_id)
        return {
            "shop_no": request.store_code,
            "origin_id": order,
            "city_code": self._city_code,
            "cargo_price": round(request.cargo_fen / 100, 2),
            "is_prepay": 0,
            "receiver_name": request.contact_name,
            "receiver_address": request.address,
            "receiver_lat": request.dropoff.lat,
            "receiver_lng": request.dropoff.lng,
            "receiver_phone": request.contact_phone,
            "callback": callback_for(self._callback, self._callback_key, order),
        }

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        order = origin_id(request.delivery_id)
        fields = self._order(request)
        answer = await self._call("/api/order/addOrder", fields)
        if answer["status"] != "success":
            status = await self._status(order)
            if status is None:
                raise CallRefused(f"DADA_{answer.get('code')}")
            if status in REPUBLISHABLE:
                again = await self._call("/api/order/reAddOrder", fields)
                if again["status"] != "success":
                    raise CallRefused(f"DADA_{again.get('code')}")
        return None  # Dada names its courier later, through its callbacks

    async def quote(self, request: DispatchRequest) -> DeliveryQuote:
        """``queryDeliverFee``: what Dada would charge (it quotes no time)."""
        answer = await self._call("/api/order/queryDeliverFee", self._order(request))
        if answer["status"] != "success":
            raise CallRefused(f"DADA_{answer.get('code')}")
        result = answer.get("result") or {}
        try:
            fee = round(float(result["fee"]) * 100)
            distance = result.get("distance")
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryLater("DADA_BAD_ANSWER") from exc
        return DeliveryQuote(fee, None, round(float(distance)) if distance is not None else None)

    async def cancel(self, delivery_id: int, why: CallOff = CallOff.REFUNDED) -> None:
        order = origin_id(delivery_id)
        reason_id, reason = CANCEL_REASONS[why]
        answer = await self._call(
            "/api/order/formalCancel",
            {"order_id": order, "cancel_reason_id": reason_id, "cancel_reason": reason},
        )
        if answer["status"] != "success" and await self._status(order) != CANCELLED:
            raise CallRefused(f"DADA_{answer.get('code')}")

    async def courier_contact(self, delivery_id: int) -> CourierContact | None:
        """The rider's number as Dada answers it now, when it is a privacy number."""
        if not self._privacy_numbers:
            return None
        answer = await self._call(
            "/api/order/status/query",
            {"order_id": origin_id(delivery_id)},
            wait_seconds=self._contact_timeout,
        )
        if answer["status"] != "success":
            raise CallRefused(f"DADA_{answer.get('code')}")
        result = answer.get("result") or {}
        if int(result.get("statusCode", 0)) not in RIDING:
            return None
        return privacy_contact(str(result.get("transporterPhone") or ""))

    async def _status(self, order: str) -> int | None:
        """The order's statusCode at Dada; None when Dada does not have it."""
        answer = await self._call("/api/order/status/query", {"order_id": order})
        if answer["status"] != "success":
            return None
        result = answer.get("result") or {}
        return int(result.get("statusCode", 0))

    async def _call(
        self, path: str, body: Mapping[str, Any], *, wait_seconds: float | None = None
    ) -> dict[str, Any]:
        fields: dict[str, object] = {
            "app_key": self._app_key,
            "body": orjson.dumps(body).decode(),
            "format": "json",
            "source_id": self._source_id,
            "timestamp": str(int(time.time())),
            "v": API_VERSION,
        }
        fields["signature"] = sign(fields, self._secret)
        try:
            async with httpx.AsyncClient(timeout=wait_seconds or self._timeout) as client:
                response = await client.post(f"{self._base}{path}", json=fields)
        except httpx.TimeoutException as exc:
            raise RetryLater("DADA_TIMEOUT") from exc
        except httpx.HTTPError as exc:
            raise RetryLater("DADA_UNREACHABLE") from exc
        if response.status_code != 200:
            raise RetryLater(f"DADA_HTTP_{response.status_code}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RetryLater("DADA_BAD_ANSWER") from exc
        if not isinstance(answer, dict) or "status" not in answer:
            raise RetryLater("DADA_BAD_ANSWER")
        if answer["status"] != "success" and answer.get("code") == BUSY:
            raise RetryLater("DADA_BUSY")
        return answer
