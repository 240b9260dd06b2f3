"""Refunds of orders: a member's request, the store's decision, staff's direct refund, all
of an order or some units, with stock, coupon, points and spend given back when a refund is
APPROVED.

The unit that approves a refund records its call out to the payment provider
(``REFUND_CALL``); the provider reports back through ``refund_submitted`` and
``refund_settled`` (``refund_progress``). Every step makes a new version of
the order, so ``orderUpdates`` pushes the refund's progress.

Races are decided by the database: a decision is a conditional update of the refund's
status (approve and refuse, or two approvals: one is made), and a request or a grant is a
conditional update of the order's version (a request racing a staff refund: one is made,
the other reads the order again and answers as it now is).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from dinegraph.domain.coupons import CouponStatus
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, StaffViewer, Viewer, actor_of
from dinegraph.domain.members import PointsKind
from dinegraph.domain.orders import (
    Mover,
    Order,
    OrderStatus,
    clean_idempotency_key,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.refunds import (
    Refund,
    RefundLine,
    RefundPlan,
    RefundStatus,
    Requester,
    check_refund_move,
    plan_refund,
    points_to_reverse,
    refund_call,
    refund_reference,
    same_request,
)
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.dispatch import stop_delivery
from dinegraph.domain.services.orders import (
    OrderPolicy,
    move_order,
    mover_of,
    order_changed,
    release_units,
)
from dinegraph.domain.services.points import record_spend
from dinegraph.domain.services.refund_progress import (
    RefundSettled as RefundSettled,
)
from dinegraph.domain.services.refund_progress import (
    RefundSubmitted as RefundSubmitted,
)
from dinegraph.domain.services.refund_progress import (
    refund_settled as refund_settled,
)
from dinegraph.domain.services.refund_progress import (
    refund_submitted as refund_submitted,
)
from dinegraph.domain.stock import clean_reason

T = TypeVar("T")
R = RefundStatus
# A request or a grant that lost its order to a racing write reads it again, this often.
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund: Refund
    order: Order  # as the refund left it


@dataclass(frozen=True, slots=True)
class RequestRefund:
    order_id: int
    lines: Sequence[RefundLine] | None  # None: everything not yet refunded
    reason: str
    idempotency_key: str
    now: datetime


@dataclass(frozen=True, slots=True)
class ApproveRefund:
    refund_id: int
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class RefuseRefund:
    refund_id: int
    reason: str
    now: datetime


@dataclass(frozen=True, slots=True)
class RefundOrder:
    order_id: int
    lines: Sequence[RefundLine] | None  # None: everything not yet refunded
    reason: str
    idempotency_key: str
    now: datetime
    policy: OrderPolicy


class _Raced(Exception):
    """Another write changed the order since this unit read it: read it again."""


async def request_refund(cmd: RequestRefund, *, uow: UnitOfWork, viewer: Viewer) -> RefundResult:
    """The order's member asks for a refund of a paid order, at any stage: REQUESTED, for
    the store's staff to decide. One request of an order waits at a time; the same key
    again returns the first request."""
    reason = clean_reason(cmd.reason, required=True)
    key = clean_idempotency_key(cmd.idempotency_key)

    async def attempt() -> RefundResult:
        async with uow:
            order = await uow.orders.get(cmd.order_id)
            if mover_of(viewer, order) is not Mover.CUSTOMER:
                raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])  # staff: refundOrder
            assert order is not None
            asked = await uow.orders.refund_by_key(order.id, key)
            if asked is not None:
                if asked.requester is not Requester.MEMBER or not same_request(
                    asked, cmd.lines, reason
                ):
                    raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["idempotencyKey"])
                return RefundResult(asked, order)
            if await uow.orders.open_refund_request(order.id) is not None:
                raise DomainError(ErrorCode.REFUND_PENDING, field=["orderId"])
            plan = await _plan(uow, order, cmd.lines, cmd.now)
            version = await uow.orders.touch(order.id, cmd.now, version=order.version)
            if version is None:
                raise _Raced
            refund = await uow.orders.add_refund(
                _new_refund(order, key, plan, R.REQUESTED, reason, actor_of(viewer), cmd.now)
            )
            if refund is None:  # a racing twin with this key
                raise _Raced
            moved = replace(order, version=version)
            uow.record(order_changed(moved))
            await uow.commit()
            return RefundResult(refund, moved)

    return await _retrying(attempt)


async def approve_refund(cmd: ApproveRefund, *, uow: UnitOfWork, viewer: Viewer) -> RefundResult:
    """Staff of the order's store approve a request: the plan is made again against the
    order as it is now, its consequences applied (as ``refund_order``'s), and the refund is
    sent to the payment provider."""

    async def attempt() -> RefundResult:
        async with uow:
            refund, order = await _decidable(uow, viewer, cmd.refund_id)
            check_refund_move(refund.status, R.APPROVED)
            try:
                plan = await _plan(uow, order, refund.lines, cmd.now)
            except DomainError as error:  # the order changed since the member asked
                now = await uow.orders.get_refund(refund.id)
                if now is not None and now.status is not R.REQUESTED:
                    # It changed because another approval of this very request won.
                    raise DomainError(ErrorCode.INVALID_TRANSITION, field=["refundId"]) from None
                raise DomainError(error.code, field=["refundId"], **error.params) from None
            approved = await uow.orders.move_refund(
                refund.id,
                [R.REQUESTED],
                R.APPROVED,
                at=cmd.now,
                amount_fen=plan.amount_fen,
                lines=plan.lines,
                stock_returned=plan.return_stock,
                coupon_restored=plan.restore_coupon,
                decided_by=actor_of(viewer),
            )
            if approved is None:  # decided by another meanwhile
                raise DomainError(ErrorCode.INVALID_TRANSITION, field=["refundId"])
            granted = await _grant(uow, order, approved, plan, cmd)
            await uow.commit()
            return RefundResult(approved, granted)

    return await _retrying(attempt)


async def refuse_refund(cmd: RefuseRefund, *, uow: UnitOfWork, viewer: Viewer) -> RefundResult:
    """Staff of the order's store refuse a request, with the reason the member is shown."""
    reason = clean_reason(cmd.reason, required=True)
    async with uow:
        refund, order = await _decidable(uow, viewer, cmd.refund_id)
        check_refund_move(refund.status, R.REFUSED)
        refused = await uow.orders.move_refund(
            refund.id,
            [R.REQUESTED],
            R.REFUSED,
            at=cmd.now,
            refusal_reason=reason,
            decided_by=actor_of(viewer),
        )
        if refused is None:
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["refundId"])
        version = await uow.orders.touch(order.id, cmd.now)
        assert version is not None
        moved = replace(order, version=version)
        uow.record(order_changed(moved))
        await uow.commit()
    return RefundResult(refused, moved)


async def refund_order(cmd: RefundOrder, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """Staff of its store refund all of an order or some units: a refund APPROVED at once.

    Units the kitchen had not started go back on the shelf; a full refund before
    preparation returns the coupon while it is valid; points earned are taken back in
    proportion and the refunded amount leaves the member's tier spend. While a member's
    request waits, staff decide it instead (``REFUND_PENDING``).
    """
    reason = clean_reason(cmd.reason, required=True)
    key = clean_idempotency_key(cmd.idempotency_key)

    async def attempt() -> Order:
        async with uow:
            order = await uow.orders.get(cmd.order_id)
            if mover_of(viewer, order) is not Mover.STAFF:
                raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])
            assert order is not None
            if order.member_id is None:  # a partner's order: the partner returns the money
                raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
            if await uow.orders.refund_by_key(order.id, key) is not None:
                # The same key again: that refund happened; the order as it stands now.
                return order
            if await uow.orders.open_refund_request(order.id) is not None:
                raise DomainError(ErrorCode.REFUND_PENDING, field=["orderId"])
            plan = await _plan(uow, order, cmd.lines, cmd.now)
            actor = actor_of(viewer)
            uow.wrote("Order", order.id, order.store_id)
            refund = await uow.orders.add_refund(
                replace(
                    _new_refund(order, key, plan, R.APPROVED, reason, actor, cmd.now),
                    decided_by=actor,
                )
            )
            if refund is None:  # a racing twin with this key
                raise _Raced
            granted = await _grant(uow, order, refund, plan, cmd)
            await uow.commit()
            return granted

    return await _retrying(attempt)


# --- shared steps ---------------------------------------------------------------------


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    for _ in range(ATTEMPTS - 1):
        try:
            return await attempt()
        except _Raced:
            continue
    try:
        return await attempt()
    except _Raced:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"]) from None


async def _plan(
    uow: UnitOfWork, order: Order, lines: Sequence[RefundLine] | None, now: datetime
) -> RefundPlan:
    coupon_valid = False
    if order.coupon_id is not None:
        coupon = await uow.coupons.get_coupon(order.coupon_id)
        coupon_valid = coupon is not None and now < coupon.valid_until
    return plan_refund(order, lines, coupon_still_valid=coupon_valid)


def _new_refund(
    order: Order,
    key: str,
    plan: RefundPlan,
    status: RefundStatus,
    reason: str,
    actor: str,
    now: datetime,
) -> Refund:
    return Refund(
        id=0,
        order_id=order.id,
        reference=refund_reference(order.id, key),
        idempotency_key=key,
        status=status,
        amount_fen=plan.amount_fen,
        lines=plan.lines,
        reason=reason,
        refusal_reason=None,
        requested_by=actor,
        decided_by=None,
        provider_refund_id=None,
        stock_returned=plan.return_stock,
        coupon_restored=plan.restore_coupon,
        requested_at=now,
        updated_at=now,
    )


async def _decidable(uow: UnitOfWork, viewer: Viewer, refund_id: int) -> tuple[Refund, Order]:
    """The refund and its order, for staff of the order's store to decide. A member is told
    another's refund does not exist."""
    refund = await uow.orders.get_refund(refund_id)
    order = await uow.orders.get(refund.order_id) if refund is not None else None
    if isinstance(viewer, StaffViewer):
        if refund is None or order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["refundId"])
        if not viewer.manages(order.store_id):
            raise DomainError(ErrorCode.FORBIDDEN, field=["refundId"])
        uow.wrote("Refund", refund.id, order.store_id)
        return refund, order
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    if order is None or order.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, field=["refundId"])
    raise DomainError(ErrorCode.FORBIDDEN, field=["refundId"])


async def _grant(
    uow: UnitOfWork,
    order: Order,
    refund: Refund,
    plan: RefundPlan,
    cmd: ApproveRefund | RefundOrder,
) -> Order:
    """Apply an approved refund to the order: units back on the shelf if unprepared, the
    coupon, points and spend; REFUNDED once nothing is left, its trip called off. The
    refund's call out to the payment provider is recorded in the same unit. Returns the
    order as it is then. The stock, points and spend it gives back are keyed by the
    refund's reference (bounded, unlike the requester's key)."""
    reference = f"{order.reference}:refund:{refund.reference}"
    if plan.return_stock:
        by_no = {line.line_no: line for line in order.lines}
        units: dict[int, int] = {}
        for part in plan.lines:
            sku = by_no[part.line_no].sku_id
            units[sku] = units.get(sku, 0) + part.quantity
        await release_units(uow, order, reference, units)
    if plan.restore_coupon and order.coupon_id is not None:
        await change_coupon_status(order.coupon_id, CouponStatus.AVAILABLE, order_ref=None, uow=uow)
    if order.status is OrderStatus.COMPLETED:
        await _take_back_reward(uow, order, plan.amount_fen, reference, cmd)
    version = await uow.orders.apply_refund(
        order.id, order.version, plan.amount_fen, plan.lines, cmd.now
    )
    if version is None:  # another refund or move of this order won the race
        raise _Raced
    moved = replace(order, version=version)
    if plan.full:
        moved = await move_order(uow, moved, OrderStatus.REFUNDED, cmd.now)
        await stop_delivery(uow, order.id, cmd.policy.delivery, cmd.now)  # calls it off
    else:
        uow.record(order_changed(moved))
    uow.call(refund_call(refund, order))
    refunded = {line.line_no: line.quantity for line in plan.lines}
    return replace(
        moved,
        refunded_fen=order.refunded_fen + plan.amount_fen,
        lines=tuple(
            replace(line, refunded_quantity=line.refunded_quantity + refunded.get(line.line_no, 0))
            for line in order.lines
        ),
    )


async def _take_back_reward(
    uow: UnitOfWork,
    order: Order,
    amount_fen: int,
    reference: str,
    cmd: ApproveRefund | RefundOrder,
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
