"""Paying through a provider that takes the money itself (WeChat Pay JSAPI): the prepay the
client pays against, what the provider tells us of a trade, and the ports its adapter and
the prepay store implement.

The provider knows an order by its ``out_trade_no``: the order's id as text, zero-padded to
six digits (WeChat Pay wants 6-32 characters of ``[0-9A-Za-z_-|*]``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.orders import Order

# Calls out (``domain.calls``) the payment provider's adapter makes.
REFUND_CALL = "payment.refund"
CLOSE_TRADE_CALL = "payment.close_order"

_TRADE_NO = re.compile(r"[0-9]{6,32}")
_REFUND_NO_CHARS = re.compile(r"[^0-9A-Za-z_\-|*@]")
REFUND_NO_MAX = 64


def out_trade_no(order_id: int) -> str:
    return f"{order_id:06d}"


def close_trade_call(order_id: int) -> OutboundCall:
    """The provider closes the trade of an order cancelled unpaid, so it cannot be paid."""
    return OutboundCall(CLOSE_TRADE_CALL, out_trade_no(order_id), {"orderId": order_id})


def order_id_of(trade_no: str) -> int | None:
    """The order an ``out_trade_no`` names; None when it is not one of ours."""
    return int(trade_no) if _TRADE_NO.fullmatch(trade_no) else None


def out_refund_no(reference: str) -> str:
    """A refund's reference as the provider accepts it (64 of ``[0-9A-Za-z_-|*@]``): itself
    when it fits; else readable where it can be, with a digest of the whole, so two
    references never share a number and the same one always gives the same."""
    if len(reference) <= REFUND_NO_MAX and not _REFUND_NO_CHARS.search(reference):
        return reference
    digest = hashlib.sha256(reference.encode()).hexdigest()[:32]
    return f"{_REFUND_NO_CHARS.sub('-', reference)[: REFUND_NO_MAX - 33]}-{digest}"


class TradeState(StrEnum):
    """What the provider says of a trade (WeChat Pay's ``trade_state``)."""

    SUCCESS = "SUCCESS"
    REFUND = "REFUND"  # paid, then (partly) refunded
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"

    @property
    def paid(self) -> bool:
        return self in (TradeState.SUCCESS, TradeState.REFUND)

    @property
    def over(self) -> bool:
        """The trade can no longer be paid."""
        return self in (TradeState.CLOSED, TradeState.REVOKED, TradeState.PAYERROR)


@dataclass(frozen=True, slots=True)
class Trade:
    """A trade as the provider reports it (a query or a notification)."""

    out_trade_no: str
    state: TradeState
    transaction_id: str | None
    amount_fen: int | None
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    """A refund's end as the provider reports it (a notification or a query)."""

    out_refund_no: str
    succeeded: bool
    provider_refund_id: str | None
    at: datetime | None
    reason: str | None = None  # why it failed, in the provider's words


class RefundState(StrEnum):
    """Where the provider is with a refund (WeChat Pay's refund ``status``)."""

    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"  # closed by the provider; the money stays with the merchant
    ABNORMAL = "ABNORMAL"  # the payer's account could not take it: settled by hand


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """A refund as the provider has it when asked (a refund query's answer)."""

    out_refund_no: str
    state: RefundState
    provider_refund_id: str | None
    at: datetime | None  # when it succeeded

    @property
    def outcome(self) -> RefundOutcome | None:
        """Its end; None while the provider is still at it."""
        if self.state is RefundState.PROCESSING:
            return None
        return RefundOutcome(
            out_refund_no=self.out_refund_no,
            succeeded=self.state is RefundState.SUCCESS,
            provider_refund_id=self.provider_refund_id,
            at=self.at,
            reason=None if self.state is RefundState.SUCCESS else refund_failure(self.state),
        )


def refund_failure(state: RefundState) -> str:
    """What a failed refund tells the member and head office (``Refund.refusalReason``)."""
    if state is RefundState.ABNORMAL:
        return "退款异常，需线下处理 (ABNORMAL)"
    return "退款已关闭 (CLOSED)"


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What the mini-program hands to ``wx.requestPayment``, signed by us."""

    app_id: str
    time_stamp: str
    nonce_str: str
    package: str
    sign_type: str
    pay_sign: str


@dataclass(frozen=True, slots=True)
class Prepay:
    """A provider's prepay of an order: the client pays against it until it expires."""

    order_id: int
    provider: str
    prepay_id: str
    payer: str  # the openid that may pay it
    amount_fen: int
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None = None  # paid, or closed at the provider: no longer open

    def usable_for(self, payer: str, amount_fen: int, now: datetime) -> bool:
        return (
            self.closed_at is None
            and self.payer == payer
            and self.amount_fen == amount_fen
            and now < self.expires_at
        )


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """The provider tells us a trade was paid (WeChat Pay's ``TRANSACTION.SUCCESS``)."""

    notification_id: str
    trade: Trade


@dataclass(frozen=True, slots=True)
class RefundNotice:
    """The provider tells us a refund ended (``REFUND.SUCCESS``/``ABNORMAL``/``CLOSED``)."""

    notification_id: str
    outcome: RefundOutcome


class NotificationRefused(Exception):
    """A notification we do not accept (the provider sends it again later). ``code`` is
    ``SIGN_ERROR`` when it is not the provider's (forged, altered, stale, unknown key)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotificationReader(Protocol):
    def read_notification(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> PaymentNotice | RefundNotice | None:
        """The notification checked and decrypted; None for an event we do not act on."""


class ProviderUnavailable(Exception):
    """The provider did not answer in time, or refused with an error that may pass."""


class ProviderRefused(Exception):
    """The provider refused the call for good (a wrong parameter, an order it will not take).

    ``code`` is the provider's own (``ORDERPAID``, ``NOT_ENOUGH``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CheckoutProvider(Protocol):
    """A provider the customer pays in their own app (WeChat Pay JSAPI).

    Each call raises ``ProviderUnavailable`` (try again later) or ``ProviderRefused``."""

    name: str

    async def prepay(self, order: Order, payer: str) -> str:
        """Open the trade of ``order`` for ``payer``: its prepay id."""

    def payment_request(self, prepay_id: str) -> PaymentRequest:
        """The signed parameters of ``wx.requestPayment`` for a prepay."""

    async def query(self, trade_no: str) -> Trade | None:
        """The trade as the provider has it; None when it has none of that number."""

    async def close(self, trade_no: str) -> None:
        """Close an unpaid trade, so it can no longer be paid."""

    async def refund(
        self, *, trade_no: str, refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> str:
        """Send money back; the provider's refund id. The same ``refund_no`` twice refunds
        once."""

    async def query_refund(self, refund_no: str) -> ProviderRefund | None:
        """The refund as the provider has it; None when it has none of that number."""


class PrepayStore(Protocol):
    """Where prepays are kept between ``payOrder`` calls and for reconciliation."""

    async def get(self, order_id: int) -> Prepay | None: ...

    async def save(self, prepay: Prepay) -> None:
        """Keep the order's newest prepay (replacing an older one)."""

    async def mark_closed(self, order_id: int, at: datetime) -> None: ...

    async def awaiting(self, created_before: datetime, limit: int) -> list[Prepay]:
        """Open prepays of orders still awaiting payment, made before ``created_before``."""

    async def of_cancelled_orders(self, limit: int) -> list[Prepay]:
        """Open prepays of orders that were cancelled: to close at the provider."""
