"""Refunds: what a refund of all or some units gives back, the points it takes, and the
lifecycle a refund follows from a member's request to the money arriving.

REQUESTED (a member asked) → APPROVED (staff approved, or refunded directly: the stock,
coupon and points consequences are applied then) → SUBMITTED (the payment provider took
it) → REFUNDED (the money arrived); or REQUESTED → REFUSED (staff, with a reason); or
APPROVED/SUBMITTED → FAILED (the provider refused for good).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dinegraph.domain import payments
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import REFUNDABLE, UNPREPARED, Order

# The call out that asks the payment provider for an APPROVED refund; its key is the
# refund's reference (out_refund_no), so the provider refunds it once however often asked.
REFUND_CALL = "payment.refund"


class RefundStatus(StrEnum):
    REQUESTED = "REQUESTED"  # a member asked; the store decides
    APPROVED = "APPROVED"  # to be sent to the payment provider
    SUBMITTED = "SUBMITTED"  # the provider accepted it: money on its way
    REFUNDED = "REFUNDED"  # the provider says it arrived
    REFUSED = "REFUSED"  # staff refused, with a reason
    FAILED = "FAILED"  # the provider refused for good; head office follows it up


R = RefundStatus

_MOVES: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.REQUESTED: frozenset({R.APPROVED, R.REFUSED}),
    # A provider's final word may overtake its acceptance (a notification before the answer).
    R.APPROVED: frozenset({R.SUBMITTED, R.REFUNDED, R.FAILED}),
    R.SUBMITTED: frozenset({R.REFUNDED, R.FAILED}),
}
# Money the member has been promised: counted in the order's refunded amount.
GRANTED = frozenset({R.APPROVED, R.SUBMITTED, R.REFUNDED, R.FAILED})
FINAL_REFUND = frozenset({R.REFUNDED, R.REFUSED, R.FAILED})


class Requester(StrEnum):
    """Who asked for a refund, as members and staff are shown it."""

    MEMBER = "MEMBER"
    STAFF = "STAFF"
    SYSTEM = "SYSTEM"  # a cancel, a failed group-buy


def can_move_refund(current: RefundStatus, target: RefundStatus) -> bool:
    return target in _MOVES.get(current, frozenset())


def check_refund_move(current: RefundStatus, target: RefundStatus) -> None:
    """Refuse a change the refund's lifecycle does not allow; nothing changes then."""
    if not can_move_refund(current, target):
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, field=["refundId"], current=current, target=target
        )


def refund_reference(order_id: int, key: str) -> str:
    """The refund's reference at the payment provider (WeChat Pay's out_refund_no): unique,
    at most 64 characters of [0-9A-Za-z-], the same for the same order and key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"R{order_id}-{digest}"


def requester_of(actor: str) -> Requester:
    if actor.startswith("member:"):
        return Requester.MEMBER
    if actor.startswith("staff:"):
        return Requester.STAFF
    return Requester.SYSTEM


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_no: int
    quantity: int


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount_fen: int
    lines: tuple[RefundLine, ...]  # units refunded per line
    full: bool  # nothing is left to refund afterwards
    return_stock: bool  # the food was not started: units go back on the shelf
    restore_coupon: bool


def plan_refund(
    order: Order, lines: Sequence[RefundLine] | None, *, coupon_still_valid: bool
) -> RefundPlan:
    """What a refund gives back: all that is left (``lines`` None) or some units.

    A line's refund is its share of what the dishes cost after discounts, rounded down, so
    partial refunds never add up to more than was paid; the refund that takes the last
    unit also returns the fees. Stock goes back only if the kitchen had not started, and
    the coupon only with a full refund before preparation, while it is still valid.
    """
    if order.status not in REFUNDABLE:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"], current=order.status)
    by_no = {line.line_no: line for line in order.lines}
    wanted: dict[int, int] = {}
    if lines is None:
        wanted = {
            line.line_no: line.quantity - line.refunded_quantity
            for line in order.lines
            if line.quantity > line.refunded_quantity
        }
    else:
        if not lines:
            raise DomainError(ErrorCode.REQUIRED, field=["lines"])
        for n, line in enumerate(lines):
            found = by_no.get(line.line_no)
            if found is None:
                raise DomainError(ErrorCode.NOT_FOUND, field=["lines", str(n), "lineId"])
            left = found.quantity - found.refunded_quantity - wanted.get(line.line_no, 0)
            if not 1 <= line.quantity <= left:
                raise DomainError(
                    ErrorCode.OUT_OF_RANGE,
                    field=["lines", str(n), "quantity"],
                    min=1,
                    max=max(left, 0),
                )
            wanted[line.line_no] = wanted.get(line.line_no, 0) + line.quantity
    units_left = sum(line.quantity - line.refunded_quantity for line in order.lines)
    full = sum(wanted.values()) == units_left
    if not wanted and order.total_fen - order.refunded_fen <= 0:
        raise DomainError(ErrorCode.NOTHING_TO_REFUND, field=["orderId"])
    if full:
        amount = order.total_fen - order.refunded_fen
    else:
        goods = sum(by_no[no].unit_price_fen * qty for no, qty in wanted.items())
        amount = goods * order.goods_paid_fen // order.subtotal_fen if order.subtotal_fen else 0
        amount = min(amount, order.total_fen - order.refunded_fen)
    unprepared = order.status in UNPREPARED
    return RefundPlan(
        amount_fen=amount,
        lines=tuple(RefundLine(no, qty) for no, qty in sorted(wanted.items())),
        full=full,
        return_stock=unprepared,
        restore_coupon=full and unprepared and order.coupon_id is not None and coupon_still_valid,
    )


def points_to_reverse(earned: int, refund_fen: int, paid_fen: int) -> int:
    """The share of an order's earned points that a refund takes back, rounded up."""
    if earned <= 0 or paid_fen <= 0:
        return 0
    return min(earned, -(-earned * refund_fen // paid_fen))


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    order_id: int
    reference: str  # the provider's refund reference (out_refund_no)
    idempotency_key: str  # the requester's key, unique per order
    status: RefundStatus
    amount_fen: int
    lines: tuple[RefundLine, ...]
    reason: str
    refusal_reason: str | None
    requested_by: str  # actor: "member:7", "staff:3", "system:..."
    decided_by: str | None  # the staff who approved or refused
    provider_refund_id: str | None
    stock_returned: bool
    coupon_restored: bool
    requested_at: datetime
    updated_at: datetime

    @property
    def requester(self) -> Requester:
        return requester_of(self.requested_by)


@dataclass(frozen=True, slots=True)
class RefundToSend:
    """What the payment provider is asked for an APPROVED refund: the payload of its call
    out (``REFUND_CALL``, keyed by ``reference``)."""

    refund_id: int
    order_id: int
    reference: str
    out_trade_no: str
    refund_fen: int
    total_fen: int
    reason: str

    @classmethod
    def of(cls, refund: Refund, order: Order) -> RefundToSend:
        return cls(
            refund_id=refund.id,
            order_id=order.id,
            reference=refund.reference,
            out_trade_no=payments.out_trade_no(order.id),
            refund_fen=refund.amount_fen,
            total_fen=order.total_fen,
            reason=refund.reason,
        )

    @property
    def payload(self) -> Mapping[str, Any]:
        return {
            "refundId": self.refund_id,
            "orderId": self.order_id,
            "outTradeNo": self.out_trade_no,
            "refundFen": self.refund_fen,
            "totalFen": self.total_fen,
            "reason": self.reason,
        }

    @property
    def call(self) -> OutboundCall:
        return OutboundCall(REFUND_CALL, self.reference, self.payload)

    @classmethod
    def of_call(cls, call: OutboundCall) -> RefundToSend:
        p = call.payload
        return cls(
            refund_id=int(p["refundId"]),
            order_id=int(p["orderId"]),
            reference=call.key,
            out_trade_no=str(p["outTradeNo"]),
            refund_fen=int(p["refundFen"]),
            total_fen=int(p["totalFen"]),
            reason=str(p["reason"]),
        )


def refund_call(refund: Refund, order: Order) -> OutboundCall:
    """The call out that sends an APPROVED refund to the payment provider."""
    return RefundToSend.of(refund, order).call


def same_request(refund: Refund, lines: Sequence[RefundLine] | None, reason: str) -> bool:
    """A replayed request (same key) asks for what the first asked for."""
    if reason != refund.reason:
        return False
    if lines is None:
        return True  # "everything left" was frozen into lines when first asked
    merged: dict[int, int] = {}
    for line in lines:
        merged[line.line_no] = merged.get(line.line_no, 0) + line.quantity
    return tuple(RefundLine(no, qty) for no, qty in sorted(merged.items())) == refund.lines
