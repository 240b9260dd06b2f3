"""Refunds: what a refund of all or some units gives back, and the points it takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import REFUNDABLE, UNPREPARED, Order


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
