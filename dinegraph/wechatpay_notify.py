"""``POST /payments/wechatpay/notify`` (and ``/refund-notify``): WeChat Pay tells us a trade
was paid or a refund ended.

The reader (the WeChat Pay adapter) checks the signature headers against WeChat Pay's key,
refuses a notification older than five minutes, decrypts the resource and checks that it is
for our merchant and app. A paid trade confirms the order's payment once, however often it
comes (``confirm_payment`` knows the transaction); an amount that is not the order's is
refused and changes nothing. A refund's end goes to ``refund_settled``.

WeChat Pay takes 200/204 as received and sends anything else again later; a failure answers
JSON ``{"code", "message"}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.payments import (
    NotificationReader,
    NotificationRefused,
    PaymentNotice,
    PrepayStore,
    RefundOutcome,
    order_id_of,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.payments import ConfirmPayment, confirm_payment

log = logging.getLogger("dinegraph.payments")

# A refund's end, as the refunds' domain service ``refund_settled`` takes it.
RefundSettled = Callable[[RefundOutcome, datetime], Awaitable[None]]


def _fail(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def wechatpay_notify(
    *,
    provider: str,
    reader: NotificationReader,
    new_uow: Callable[[], UnitOfWork],
    prepays: PrepayStore,
    clock: Callable[[], datetime],
    refund_settled: RefundSettled,
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint, confirming payments in units of work from ``new_uow``."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        try:
            notice = reader.read_notification(request.headers, body, time.time())
        except NotificationRefused as refused:
            log.warning("WeChat Pay notification refused: %s", refused)
            status = 401 if refused.code == "SIGN_ERROR" else 400
            return _fail(status, refused.code, refused.message)
        if notice is None:
            return Response(status_code=204)
        try:
            if isinstance(notice, PaymentNotice):
                return await _paid(notice, provider, new_uow, prepays, clock)
            await refund_settled(notice.outcome, clock())
        except DomainError as error:
            log.warning("WeChat Pay notification not applied: %s %s", error.code, error.params)
            status = 404 if error.code is ErrorCode.NOT_FOUND else 409
            return _fail(status, error.code.value, str(error.params or error.code.value))
        return Response(status_code=204)

    return endpoint


async def _paid(
    notice: PaymentNotice,
    provider: str,
    new_uow: Callable[[], UnitOfWork],
    prepays: PrepayStore,
    clock: Callable[[], datetime],
) -> Response:
    trade = notice.trade
    order_id = order_id_of(trade.out_trade_no)
    if order_id is None or trade.transaction_id is None or trade.amount_fen is None:
        return _fail(400, "PARAM_ERROR", "out_trade_no, transaction_id or amount missing")
    now = clock()
    cmd = ConfirmPayment(
        order_id=order_id,
        provider=provider,
        transaction_id=trade.transaction_id,
        amount_fen=trade.amount_fen,
        at=now,
    )
    await confirm_payment(cmd, uow=new_uow())
    await prepays.mark_closed(order_id, now)
    return Response(status_code=204)
