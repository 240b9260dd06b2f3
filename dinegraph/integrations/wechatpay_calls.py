"""WeChat Pay's handler of the trade of an unpaid order that was cancelled or expired
(``payment.close_order``), a call out (``dinegraph.outbound``). Refunds (``payment.refund``)
go through the refunds' handler to ``WechatPayRefunds``, the payment gateway.

A handler returns when WeChat Pay took the call or already had it, raises ``CallRefused``
when it refused for good, and lets anything else through (``ProviderUnavailable``: a
timeout, a 5xx), which the relay tries again later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dinegraph.domain.calls import CallRefused, OutboundCall
from dinegraph.domain.payments import (
    CLOSE_TRADE_CALL,
    ProviderRefused,
)
from dinegraph.integrations.wechatpay import WechatPayClient

Handler = Callable[[OutboundCall], Awaitable[None]]

__all__ = ["CLOSE_TRADE_CALL", "close_order_handler"]


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
