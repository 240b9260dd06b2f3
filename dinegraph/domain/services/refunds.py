"""Refunds of orders: all of an order or some units, with stock, coupon, points and spend
given back as the rules say."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.coupons import CouponStatus
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer, actor_of
from dinegraph.domain.members import PointsKind
from dinegraph.domain.orders import (
    Mover,
    Order,
    OrderStatus,
    clean_idempotency_key,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.refunds import RefundLine, plan_refund, points_to_reverse
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.dispatch import (
    stop_delivery,
)
from dinegraph.domain.services.orders import (
    OrderPolicy,
    move_order,
    mover_of,
    order_changed,
    release_units,
)
from dinegraph.domain.services.points import record_spend
from dinegraph.domain.stock import clean_reason


@dataclass(frozen=True, slots=True)
class RefundOrder:
    order_id: int
    lines: Sequence[RefundLine] | None  # None: everything not yet refunded
    reason: str
    idempotency_key: str
    now: datetime
    policy: OrderPolicy


async def refund_order(cmd: RefundOrder, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """Refund all of an order or some units (staff of its store).

    Units the kitchen had not started go back on the shelf; a full refund before
    preparation returns the coupon while it is valid; points earned are taken back in
    proportion and the refunded amount leaves the member's tier spend.
    """
    reason = clean_reason(cmd.reason, required=True)
    key = clean_idempotency_key(cmd.idempotency_key)
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        if mover_of(viewer, order) is not Mover.STAFF:
            raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])
        assert order is not None
        if order.member_id is None:  # a partner's order: the partner gives the money back
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
        if await uow.orders.has_refund(order.id, key):
            # The same key again: that refund happened; the order as it stands now.
            return order
        coupon_valid = False
        if order.coupon_id is not None:
            coupon = await uow.coupons.get_coupon(order.coupon_id)
            coupon_valid = coupon is not None and cmd.now < coupon.valid_until
        plan = plan_refund(order, cmd.lines, coupon_still_valid=coupon_valid)
        uow.wrote("Order", order.id, order.store_id)
        recorded = await uow.orders.add_refund(
            order_id=order.id,
            reference=key,
            amount_fen=plan.amount_fen,
            lines=plan.lines,
            reason=reason,
            actor=actor_of(viewer),
            stock_returned=plan.return_stock,
            coupon_restored=plan.restore_coupon,
        )
        if not recorded:  # pragma: no cover - has_refund ran in this transaction
            raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["idempotencyKey"])
        reference = f"{order.reference}:refund:{key}"
        if plan.return_stock:
            by_no = {line.line_no: line for line in order.lines}
            units: dict[int, int] = {}
            for part in plan.lines:
                sku = by_no[part.line_no].sku_id
                units[sku] = units.get(sku, 0) + part.quantity
            await release_units(uow, order, reference, units)
        if plan.restore_coupon and order.coupon_id is not None:
            await change_coupon_status(
                order.coupon_id, CouponStatus.AVAILABLE, order_ref=None, uow=uow
            )
        if order.status is OrderStatus.COMPLETED:
            await _take_back_reward(uow, order, plan.amount_fen, reference, cmd)
        version = await uow.orders.apply_refund(
            order.id, order.version, plan.amount_fen, plan.lines, cmd.now
        )
        if version is None:  # another refund or move of this order won the race
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
        moved = replace(order, version=version)
        if plan.full:
            moved = await move_order(uow, moved, OrderStatus.REFUNDED, cmd.now)
            await stop_delivery(uow, order.id, cmd.policy.delivery, cmd.now)  # calls it off
        else:
            uow.record(order_changed(moved))
        await uow.commit()
        refunded = {line.line_no: line.quantity for line in plan.lines}
        result = replace(
            moved,
            refunded_fen=order.refunded_fen + plan.amount_fen,
            lines=tuple(
                replace(
                    line, refunded_quantity=line.refunded_quantity + refunded.get(line.line_no, 0)
                )
                for line in order.lines
            ),
        )
    await cmd.policy.payments.refund(result, plan.amount_fen, reference)
    return result


async def _take_back_reward(
    uow: UnitOfWork, order: Order, amount_fen: int, reference: str, cmd: RefundOrder
) -> None:
    assert order.member_id is not None  # partners' orders are not refunded here
    await record_spend(
        order.member_id,
        reference,
        -amount_fen,
        at=cmd.now,
        thresholds=cmd.policy.tier_thresholds,
        uow=uow,
    )
    earned = await uow.orders.points_earned(order.id)
    take = points_to_reverse(earned, amount_fen, order.total_fen)
    balance = await uow.members.points_balance(order.member_id)
    take = min(take, balance)  # points already spent cannot be taken back below zero
    if take > 0:
        await uow.members.change_points(
            member_id=order.member_id, kind=PointsKind.REFUND, reference=reference, delta=-take
        )
