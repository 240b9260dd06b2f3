"""``POST /payments/notify``: a payment provider tells us an order was paid.

The body is JSON ``{"provider", "orderId", "transactionId", "amountFen"}``; the header
``Dinegraph-Signature: t=<unix seconds>,v1=<hex>`` carries HMAC-SHA256 over
``"<t>.<raw body>"`` with the notify key, as Stripe signs its webhooks. A notification
older than five minutes is refused, so a captured one cannot be replayed later; a repeated
notification of the same transaction is answered 200 and changes nothing.

The endpoint confirms the payment through the domain's ``UnitOfWork`` port; the app gives it
the units of work to use (``payment_notify``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.payments import ConfirmPayment, confirm_payment
from dinegraph.resolvers.ids import decode_id, encode_id

log = logging.getLogger("dinegraph.payments")

SIGNATURE_HEADER = "dinegraph-signature"
TOLERANCE_SECONDS = 300
PROVIDER_MAX = 32
TRANSACTION_MAX = 64


def sign(key: bytes, body: bytes, timestamp: int) -> str:
    """The signature header a provider sends with ``body`` (also used by tests)."""
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(key: bytes, body: bytes, header: str | None, now: float) -> bool:
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(key, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


def payment_notify(new_uow: Callable[[], UnitOfWork]) -> Callable[[Request], Awaitable[Response]]:
    """The ``POST /payments/notify`` endpoint, confirming payments in units of work from
    ``new_uow``."""

    async def endpoint(request: Request) -> Response:
        return await _notify(request, new_uow)

    return endpoint


async def _notify(request: Request, new_uow: Callable[[], UnitOfWork]) -> Response:
    services = request.app.state.services
    body = await request.body()
    if not verify(
        services.payment_notify_key, body, request.headers.get(SIGNATURE_HEADER), time.time()
    ):
        return _problem(401, "INVALID_SIGNATURE", "missing, wrong or stale signature")
    try:
        data: dict[str, Any] = orjson.loads(body)
        provider = str(data["provider"])
        transaction_id = str(data["transactionId"])
        amount = data["amountFen"]
        order_id = decode_id(str(data["orderId"]), "Order", ["orderId"])
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("amountFen must be an integer")
        if not (0 < len(provider) <= PROVIDER_MAX and 0 < len(transaction_id) <= TRANSACTION_MAX):
            raise ValueError("provider or transactionId length")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, DomainError) as exc:
        return _problem(400, "INVALID_INPUT", f"bad notification: {exc}")
    cmd = ConfirmPayment(
        order_id=order_id,
        provider=provider,
        transaction_id=transaction_id,
        amount_fen=amount,
        at=services.clock(),
    )
    try:
        order = await confirm_payment(cmd, uow=new_uow())
    except DomainError as error:
        status = 404 if error.code is ErrorCode.NOT_FOUND else 409
        log.warning("payment notification refused: %s %s", error.code, error.params)
        return _problem(status, error.code.value, str(error.params or ""))
    return JSONResponse({"orderId": encode_id("Order", order.id), "status": order.status.value})
