"""WeChat Pay's handlers of calls out (``dinegraph.outbound``): the refund an approval
recorded (``payment.refund``) and the trade of an unpaid order that was cancelled or expired
(``payment.close_order``).

A handler returns when WeChat Pay took the call or already had it, raises ``CallRefused``
when it refused for good, and lets anything else through (``ProviderUnavailable``: a
timeout, a 5xx), which the relay tries again later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from dinegraph.domain.calls import CallRefused, OutboundCall
from dinegraph.domain.payments import (
    CLOSE_TRADE_CALL,
    REFUND_CALL,
    ProviderRefused,
    out_refund_no,
    out_trade_no,
)
from dinegraph.integrations.wechatpay import WechatPayClient

Handler = Callable[[OutboundCall], Awaitable[None]]
# What WeChat Pay's acceptance changes on our side: the refund's reference, WeChat Pay's
# refund id, when (``refund_submitted`` of the refunds' domain services, in its own unit).
RefundSubmitted = Callable[[str, str, datetime], Awaitable[None]]

__all__ = ["CLOSE_TRADE_CALL", "REFUND_CALL", "close_order_handler", "refund_handler"]


def refund_handler(
    client: WechatPayClient, *, submitted: RefundSubmitted, clock: Callable[[], datetime]
) -> Handler:
    """``payment.refund``: the call's key is the refund's reference, sent as out_refund_no,
    so a retry (or a call WeChat Pay had before) refunds once."""

    async def handle(call: OutboundCall) -> None:
        p = call.payload
        try:
            refund_id = await client.refund(
                trade_no=str(p.get("outTradeNo") or out_trade_no(int(p["orderId"]))),
                refund_no=out_refund_no(call.key),
                refund_fen=int(p["refundFen"]),
                total_fen=int(p["totalFen"]),
                reason=str(p.get("reason") or ""),
            )
        except ProviderRefused as exc:
            raise CallRefused(f"WeChat Pay refused the refund: {exc.code}") from exc
        await submitted(call.key, refund_id, clock())

    return handle


def close_order_handler(client: WechatPayClient) -> Handler:
    """``payment.close_order``: the call's key is the order's out_trade_no. A trade WeChat
    Pay never opened or closed already is done; one paid meanwhile is refused for good (the
    reconciliation refunds it)."""

    async def handle(call: OutboundCall) -> None:
        try:
            await client.close(call.key)
        except ProviderRefused as exc:
            if exc.code in ("ORDER_NOT_EXIST", "ORDER_CLOSED"):
                return
            raise CallRefused(f"WeChat Pay refused to close the trade: {exc.code}") from exc

    return handle
