"""顺丰同城 (SF intra-city) open platform: an SF_INTRA_CITY store's deliveries go there.

Protocol (openic.sf-express.com, 开放平台 → API 文档): every call is
``POST <base>/open/api/external/<name>?sign=<sign>`` with a JSON body that carries
``dev_id`` and ``push_time`` (seconds); ``sign`` is the Base64 of the *hex* MD5 of
``<body>&<dev_id>&<dev_key>``. The answer is ``{"error_code": 0, "error_msg", "result"}``.
SF signs its pushes to our callback URL the same way, over the body it posts.

- ``createorder`` takes our delivery as ``shop_order_id`` (``delivery-<id>``), unique per
  shop at SF: a retried dispatch that SF refuses is looked up (``getorderstatus``) and an
  order SF already has is success.
- ``precreateorder`` quotes the fee (fen) and the expected time without ordering.
- ``cancelorder`` calls the rider off (313, other reasons, with the reason in words: the
  order refunded, or no rider in time); an order SF has already cancelled is success.
- The rider's contact is asked of ``getorderstatus`` (its ``rider_phone``, or
  ``operator_phone`` as SF's pushes name it, while the order is 10 taken, 12 at the store or
  15 on its way). It is handed to customers only when ``privacy_numbers`` says the shop has
  SF's privacy numbers (隐私号) on, so that the number SF answers is one (``number,ext``
  when SF binds an extension); otherwise customers get none.

A refusal raises ``CallRefused("SF_<code>")``; an HTTP error, a malformed answer or no
answer in time raise ``RetryLater``: the relay of calls out tries again.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from dinegraph.domain.calls import CallRefused, RetryLater
from dinegraph.domain.delivery import CallOff, Courier, CourierContact, Provider, privacy_contact
from dinegraph.domain.ports import DeliveryQuote, DispatchRequest

API_VERSION = 19
SHOP_TYPE_SF = 1  # shop_id is SF's own store id
BY_SHOP_ORDER_ID = 2  # order_type: look the order up by our shop_order_id
LBS_GAODE = 2  # coordinates are GCJ-02 (高德), as ours are
PRODUCT_FAST_FOOD = 1  # product_type 快餐
CANCELLED = 2  # order_status once the order is cancelled
RIDING = frozenset({10, 12, 15})  # taken, at the store, on its way: a rider carries it
OTHER_REASON = 313  # cancel_code 其他原因: the reason goes in words
CANCEL_REASONS = {CallOff.REFUNDED: "顾客已退款", CallOff.NO_RIDER: "无骑手接单，改由其他平台配送"}


def sign(body: bytes, dev_id: str, dev_key: str) -> str:
    """SF's signature of a posted body: base64(md5_hex(body&dev_id&dev_key))."""
    digest = hashlib.md5(body + f"&{dev_id}&{dev_key}".encode()).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def shop_order_id(delivery_id: int) -> str:
    return f"delivery-{delivery_id}"


def delivery_id_of(shop_order: str) -> int | None:
    """Our delivery id from SF's ``shop_order_id``; None when it is not one of ours."""
    prefix, _, number = shop_order.partition("-")
    return int(number) if prefix == "delivery" and number.isdigit() else None


class SfIntraCityPlatform:
    """The SF_INTRA_CITY platform port over 顺丰同城's open API."""

    provider = Provider.SF_INTRA_CITY

    def __init__(
        self,
        *,
        base_url: str,
        dev_id: str,
        dev_key: str,
        shop_id: str,
        timeout_seconds: float = 10.0,
        privacy_numbers: bool = False,
        contact_timeout_seconds: float = 5.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._dev_id = dev_id
        self._dev_key = dev_key
        self._shop_id = shop_id
        self._timeout = timeout_seconds
        self._privacy_numbers = privacy_numbers
        self._contact_timeout = contact_timeout_seconds  # a customer waits on this one

    def _shop(self, request: DispatchRequest) -> dict[str, object]:
        return {
            "shop_name": request.store_name,
            "shop_lng": str(request.pickup.lng),
            "shop_lat": str(request.pickup.lat),
        }

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        order = shop_order_id(request.delivery_id)
        now = int(time.time())
        answer = await self._call(
            "createorder",
            {
                "shop_id": self._shop_id,
                "shop_type": SHOP_TYPE_SF,
                "shop_order_id": order,
                "order_source": "dinegraph",
                "lbs_type": LBS_GAODE,
                "pay_type": 1,  # paid online
                "order_time": now,
                "is_appoint": 0,
                "is_insured": 0,
                "rider_pick_method": 1,  # from the store to the customer
                "return_flag": 511,
                "version": API_VERSION,
                "receive": {
                    "user_name": request.contact_name,
                    "user_phone": request.contact_phone,
                    "user_address": request.address,
                    "user_lng": str(request.dropoff.lng),
                    "user_lat": str(request.dropoff.lat),
                },
                "shop": self._shop(request),
                "order_detail": {
                    "total_price": request.cargo_fen,
                    "product_type": PRODUCT_FAST_FOOD,
                    "weight_gram": 1000,
                    "product_num": 1,
                    "product_type_num": 1,
                },
            },
        )
        if answer["error_code"] != 0 and await self._status(order) is None:
            raise CallRefused(f"SF_{answer['error_code']}")
        return None  # SF names its rider later, through its pushes

    async def quote(self, request: DispatchRequest) -> DeliveryQuote:
        """``precreateorder``: the fee and the expected delivery time, ordering nothing."""
        answer = await self._call(
            "precreateorder",
            {
                "shop_id": self._shop_id,
                "shop_type": SHOP_TYPE_SF,
                "user_lng": str(request.dropoff.lng),
                "user_lat": str(request.dropoff.lat),
                "user_address": request.address,
                "weight": 1000,
                "product_type": PRODUCT_FAST_FOOD,
                "total_price": request.cargo_fen,
                "is_appoint": 0,
                "lbs_type": LBS_GAODE,
                "pay_type": 1,
                "is_insured": 0,
                "rider_pick_method": 1,
                "return_flag": 511,
                "shop": self._shop(request),
            },
        )
        if answer["error_code"] != 0:
            raise CallRefused(f"SF_{answer['error_code']}")
        result = answer.get("result") or {}
        try:
            fee = int(result["total_price"])
            expect = result.get("expect_time")
            distance = result.get("delivery_distance_meter")
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryLater("SF_BAD_ANSWER") from exc
        eta = max(int(expect) - int(answer.get("push_time") or time.time()), 0) if expect else None
        return DeliveryQuote(fee, eta, int(distance) if distance is not None else None)

    async def cancel(self, delivery_id: int, why: CallOff = CallOff.REFUNDED) -> None:
        order = shop_order_id(delivery_id)
        answer = await self._call(
            "cancelorder",
            {
                "order_id": order,
                "order_type": BY_SHOP_ORDER_ID,
                "shop_id": self._shop_id,
                "shop_type": SHOP_TYPE_SF,
                "cancel_code": OTHER_REASON,
                "cancel_reason": CANCEL_REASONS[why],
            },
        )
        if answer["error_code"] != 0 and await self._status(order) != CANCELLED:
            raise CallRefused(f"SF_{answer['error_code']}")

    async def courier_contact(self, delivery_id: int) -> CourierContact | None:
        """The rider's number as SF answers it now, when it is a privacy number."""
        if not self._privacy_numbers:
            return None
        answer = await self._call(
            "getorderstatus",
            self._order_lookup(shop_order_id(delivery_id)),
            wait_seconds=self._contact_timeout,
        )
        if answer["error_code"] != 0:
            raise CallRefused(f"SF_{answer['error_code']}")
        result = answer.get("result") or {}
        if int(result.get("order_status", 0)) not in RIDING:
            return None
        phone = result.get("rider_phone") or result.get("operator_phone") or ""
        return privacy_contact(str(phone))

    def _order_lookup(self, order: str) -> dict[str, object]:
        return {
            "order_id": order,
            "order_type": BY_SHOP_ORDER_ID,
            "shop_id": self._shop_id,
            "shop_type": SHOP_TYPE_SF,
        }

    async def _status(self, order: str) -> int | None:
        """The order's status at SF; None when SF does not have it."""
        answer = await self._call("getorderstatus", self._order_lookup(order))
        if answer["error_code"] != 0:
            return None
        result = answer.get("result") or {}
        return int(result.get("order_status", 0))

    async def _call(
        self, name: str, fields: Mapping[str, Any], *, wait_seconds: float | None = None
    ) -> dict[str, Any]:
        body = orjson.dumps(
            {
                "dev_id": int(self._dev_id) if self._dev_id.isdigit() else self._dev_id,
                **fields,
                "push_time": int(time.time()),
            }
        )
        url = f"{self._base}/open/api/external/{name}"
        try:
            async with httpx.AsyncClient(timeout=wait_seconds or self._timeout) as client:
                response = await client.post(
                    url,
                    content=body,
                    params={"sign": sign(body, self._dev_id, self._dev_key)},
                    headers={"content-type": "application/json;charset=utf-8"},
                )
        except httpx.TimeoutException as exc:
            raise RetryLater("SF_TIMEOUT") from exc
        except httpx.HTTPError as exc:
            raise RetryLater("SF_UNREACHABLE") from exc
        if response.status_code != 200:
            raise RetryLater(f"SF_HTTP_{response.status_code}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RetryLater("SF_BAD_ANSWER") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("error_code"), int):
            raise RetryLater("SF_BAD_ANSWER")
        return answer
