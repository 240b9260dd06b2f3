"""WeChat Pay's handlers of outbound calls (see the outbox's ``CallHandler``): the refund
an approval recorded (``payment.refund``) and the trade of an unpaid order that was
cancelled or expired (``payment.close_order``).

A handler returns when WeChat Pay took the call or already had it, raises ``CallRefused``
(the wiring's, passed in) when it refused for good, and lets anything else through, which
the relay takes as "try again later".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from dinegraph.domain.payments import (
    ProviderRefused,
    out_refund_no,
    out_trade_no,
)
from dinegraph.integrations.wechatpay import WechatPayClient

REFUND = "payment.refund"
CLOSE_ORDER = "payment.close_order"


class Call(Protocol):
    """An outbound call as the relay hands it over (``domain.calls.OutboundCall``)."""

    @property
    def kind(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


Handler = Callable[[Call], Awaitable[None]]
# What WeChat Pay's acceptance changes on our side: the refund's reference, WeChat Pay's
# refund id, when (``refund_submitted`` of the refunds' domain services, in its own unit).
RefundSubmitted = Callable[[str, str, datetime], Awaitable[None]]
# The refusal that makes the relay give up on a call: ``outbound.CallRefused``.
Refusal = Callable[[str], Exception]


def refund_handler(
    client: WechatPayClient,
    *,
    submitted: RefundSubmitted,
    refused: Refusal,
    clock: Callable[[], datetime],
) -> Handler:
    """``payment.refund``: the call's key is the refund's reference, sent as out_refund_no,
    so a retry (or a call WeChat Pay had before) refunds once."""

    async def handle(call: Call) -> None:
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
            raise refused(f"WeChat Pay refused the refund: {exc}") from exc
        await submitted(call.key, refund_id, clock())

    return handle


def close_order_handler(client: WechatPayClient, *, refused: Refusal) -> Handler:
    """``payment.close_order``: the call's key is the order's out_trade_no. A trade WeChat
    Pay never opened or already closed is done; one paid meanwhile is refused for good (the
    reconciliation refunds it)."""

    async def handle(call: Call) -> None:
        try:
            await client.close(call.key)
        except ProviderRefused as exc:
            if exc.code in ("ORDER_NOT_EXIST", "ORDER_CLOSED"):
                return
            raise refused(f"WeChat Pay refused to close {call.key}: {exc}") from exc

    return handle
