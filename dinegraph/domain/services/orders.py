"""Orders through their lifecycle: the settings every order use case shares, the status
moves, cancelling (and the unpaid-order sweep).

Every change is a conditional status update, so two requests can never both move an order.
Placing (``checkout``), paying (``payments``) and refunds (``refunds``) have modules of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from dinegraph.domain.coupons import CouponStatus
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import FeeRules
from dinegraph.domain.group_buys import GroupBuy, GroupBuyChanged
from dinegraph.domain.identity import MemberViewer, StaffViewer, Viewer, actor_of
from dinegraph.domain.orders import (
    Mover,
    Order,
    OrderSource,
    OrderStatus,
    check_move,
    load_change,
)
from dinegraph.domain.orders import order_changed as order_changed  # where others import it
from dinegraph.domain.partner_orders import sale_source
from dinegraph.domain.payments import close_trade_call
from dinegraph.domain.ports import PaymentGateway, UnitOfWork
from dinegraph.domain.refunds import Refund, RefundLine, RefundStatus, refund_call, refund_reference
from dinegraph.domain.routing import RoutingWeights
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.dispatch import (
    DeliveryPolicy,
    open_delivery,
    should_dispatch,
)
from dinegraph.domain.services.kitchen import issue_tickets
from dinegraph.domain.services.points import earn_points, record_spend
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine, MovementSource
from dinegraph.domain.supplies import campaign_quota, supply_changed
from dinegraph.domain.tiers import Tier

log = logging.getLogger("dinegraph.orders")

SWEEP_BATCH = 100
CANCEL_KEY = "cancel"  # the idempotency key of a cancelled order's refund


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """The chain's order settings, chosen once by the wiring."""

    fees: FeeRules
    weights: RoutingWeights
    nearby_m: int  # routing failures list the stores this close to the address
    payment_timeout: timedelta
    time_zone: tzinfo
    tier_thresholds: Mapping[Tier, int]
    points_expiry_days: int
    payments: PaymentGateway
    delivery: DeliveryPolicy


def group_changed(group: GroupBuy) -> GroupBuyChanged:
    return GroupBuyChanged(
        group_id=group.id,
        campaign_id=group.campaign_id,
        status=group.status.value,
        seats_taken=group.seats_taken,
        seats_paid=group.seats_paid,
        version=group.version,
    )


async def move_order(
    uow: UnitOfWork, order: Order, target: OrderStatus, at: datetime, **changes: object
) -> Order:
    """The conditional status update: fails with INVALID_TRANSITION if another got there first."""
    version = await uow.orders.change_status(order.id, order.status, target, at=at, **changes)
    if version is None:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["status"], current=order.status)
    delta = load_change(order.status, target)
    if delta:
        await uow.orders.change_load(order.store_id, delta)
    moved = replace(order, status=target, version=version)
    uow.record(order_changed(moved))
    if target is OrderStatus.ACCEPTED:
        await issue_tickets(uow, moved, at)  # the kitchen's tickets, whoever accepted it
    return moved


@dataclass(frozen=True, slots=True)
class UpdateOrderStatus:
    order_id: int
    status: OrderStatus
    now: datetime
    policy: OrderPolicy


async def update_order_status(cmd: UpdateOrderStatus, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """Staff of the order's store move it along; its member may cancel before ACCEPTED.

    COMPLETED counts the amount paid toward the member's tier and earns points; a cancel
    releases the held stock, returns the coupon and refunds what was paid.
    """
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        mover = mover_of(viewer, order)
        assert order is not None
        check_move(order, cmd.status, mover)
        uow.wrote("Order", order.id, order.store_id)
        if cmd.status is OrderStatus.CANCELLED and order.source is not OrderSource.MINI_PROGRAM:
            moved = await cancel_partner_in(uow, order, cmd.now, actor_of(viewer), "")
        elif cmd.status is OrderStatus.CANCELLED:
            moved, _ = await cancel_in(uow, order, cmd.now, actor_of(viewer))
        elif cmd.status is OrderStatus.COMPLETED:
            moved = await move_order(uow, order, cmd.status, cmd.now, completed_at=cmd.now)
            moved = replace(moved, completed_at=cmd.now)
            await _reward(uow, moved, cmd.policy, cmd.now)
        else:
            moved = await move_order(uow, order, cmd.status, cmd.now)
        if should_dispatch(order, cmd.status, cmd.policy.delivery):
            store = await uow.catalog.get_store(order.store_id)
            assert store is not None
            await open_delivery(uow, order, store, cmd.policy.delivery, cmd.now)
        await uow.commit()
    return moved


def mover_of(viewer: Viewer, order: Order | None) -> Mover:
    """Who is asking about this order. A member is told another's order does not exist."""
    if isinstance(viewer, StaffViewer):
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        if not viewer.manages(order.store_id):
            raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])
        return Mover.STAFF
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    if order is None or order.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
    return Mover.CUSTOMER


async def release_units(
    uow: UnitOfWork, order: Order, reference: str, units: Mapping[int, int]
) -> None:
    """Put units (sku → quantity) back on the store's shelf, once per reference.

    A campaign order's units go back to the campaign's quota while it is open; once the
    campaign has closed, to the shelf like any other.
    """
    if order.campaign_id is not None:
        units = dict(units)
        for sku, qty in list(units.items()):
            if qty > 0 and await uow.campaigns.return_quota(
                order.campaign_id, order.store_id, sku, qty
            ):
                units[sku] = 0
                quota = campaign_quota(order.campaign_id, order.store_id, sku)
                uow.record(supply_changed(quota, gone=False))
    lines = sorted(
        (MovementLine(sku, qty) for sku, qty in units.items() if qty > 0), key=lambda m: m.sku_id
    )
    if not lines:
        return
    await apply_movement(
        uow,
        actor="system",
        store_id=order.store_id,
        source=MovementSource.ORDER_RELEASE,
        reference=reference,
        lines=lines,
        reason="",
        line_field=None,
        key_field="orderId",
    )


async def cancel_in(
    uow: UnitOfWork, order: Order, now: datetime, actor: str
) -> tuple[Order, Refund | None]:
    """Cancel: stock released, coupon back if still valid, payment refunded in full (an
    APPROVED refund, its call out to the payment provider recorded in the caller's unit).

    A campaign order also gives back its member's entry; a group seat is freed while the
    group is open; a bargain may be bought again.
    """
    was = order.status
    refund: Refund | None = None
    if was is not OrderStatus.PENDING_PAYMENT:
        amount = order.total_fen - order.refunded_fen
        lines = tuple(
            RefundLine(line.line_no, line.quantity - line.refunded_quantity)
            for line in order.lines
            if line.quantity > line.refunded_quantity
        )
        refund = await uow.orders.add_refund(
            Refund(
                id=0,
                order_id=order.id,
                reference=refund_reference(order.id, CANCEL_KEY),
                idempotency_key=CANCEL_KEY,
                status=RefundStatus.APPROVED,
                amount_fen=amount,
                lines=lines,
                reason="cancelled",
                refusal_reason=None,
                requested_by=actor,
                decided_by=None,
                provider_refund_id=None,
                stock_returned=True,
                coupon_restored=order.coupon_id is not None,
                requested_at=now,
                updated_at=now,
            )
        )
        version = await uow.orders.apply_refund(order.id, order.version, amount, lines, now)
        if version is None or refund is None:
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["status"], current=was)
        uow.call(refund_call(refund, order))
        order = replace(order, refunded_fen=order.total_fen, version=version)
    moved = await move_order(uow, order, OrderStatus.CANCELLED, now)
    if was is OrderStatus.PENDING_PAYMENT:
        # A trade the customer may have opened (WeChat Pay) must not be paid any more.
        uow.call(close_trade_call(order.id))
    await _leave_campaign(uow, order, was)
    await release_units(
        uow,
        order,
        order.reference,
        {line.sku_id: line.quantity - line.refunded_quantity for line in order.lines},
    )
    if order.coupon_id is not None:
        coupon = await uow.coupons.get_coupon(order.coupon_id)
        if coupon is not None and (was is OrderStatus.PENDING_PAYMENT or now < coupon.valid_until):
            await change_coupon_status(
                order.coupon_id, CouponStatus.AVAILABLE, order_ref=None, uow=uow
            )
    return moved, refund


async def cancel_partner_in(
    uow: UnitOfWork, order: Order, now: datetime, actor: str, reason: str
) -> Order:
    """Cancel a partner's order in the open unit of work: what its sale took goes back.

    Its store's staff rejecting it, or the partner reporting the platform's cancel; the
    money is the partner's to return, so nothing is refunded here.
    """
    moved = await move_order(uow, order, OrderStatus.CANCELLED, now, cancel_reason=reason)
    sale = await uow.stock.movement_by_key(
        order.store_id, sale_source(order.source), order.reference
    )
    if sale is not None and sale.lines:
        await apply_movement(
            uow,
            actor=actor,
            store_id=order.store_id,
            source=MovementSource.ORDER_RELEASE,
            reference=order.reference,
            lines=sorted(
                (MovementLine(line.sku_id, -line.quantity) for line in sale.lines),
                key=lambda m: m.sku_id,
            ),
            reason=reason,
            line_field=None,
            key_field="orderId",
        )
    return replace(moved, cancel_reason=reason)


async def _leave_campaign(uow: UnitOfWork, order: Order, was: OrderStatus) -> None:
    """A cancelled campaign order gives back the member's entry and group seat, or lets
    its bargain be bought again.

    Rows are taken in the order every campaign write takes them (the member's entry, the
    group, then the quota in ``release_units``), so a cancel racing a join cannot deadlock.
    """
    if order.campaign_id is None or order.member_id is None:
        return
    if order.bargain_id is None:
        # The member's entry was this order, or its group seat; a bargain's is the bargain.
        await uow.campaigns.leave(order.campaign_id, order.member_id)
    if order.group_id is not None:
        group = await uow.campaigns.release_seat(order.group_id, order.member_id)
        if group is not None:
            uow.record(group_changed(group))
    if order.bargain_id is not None and was is OrderStatus.PENDING_PAYMENT:
        await uow.campaigns.reopen(order.bargain_id, order.id)


async def _reward(uow: UnitOfWork, order: Order, policy: OrderPolicy, now: datetime) -> None:
    """A completed order earns points on what was paid, at the tier the member held while
    ordering, then counts toward the tier. A partner's order has no member to reward."""
    if order.member_id is None:
        return
    paid = order.paid_fen
    before = await uow.members.points_balance(order.member_id)
    after = await earn_points(
        order.member_id,
        order.reference,
        paid,
        now=now,
        expiry_days=policy.points_expiry_days,
        uow=uow,
    )
    await uow.orders.set_points_earned(order.id, after - before)
    await record_spend(
        order.member_id,
        order.reference,
        paid,
        at=now,
        thresholds=policy.tier_thresholds,
        uow=uow,
    )


async def cancel_expired(now: datetime, *, uow: UnitOfWork, batch: int = SWEEP_BATCH) -> list[int]:
    """Cancel unpaid orders past their deadline: stock released, coupons restored.

    Safe with several processes: each order is claimed once (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, the write lock on SQLite) and the status update is conditional anyway.
    Each order is cancelled in a transaction of its own: two sweepers holding several
    orders each would otherwise return their stock in crossing orders and deadlock.
    """
    cancelled: list[int] = []
    for _ in range(batch):
        async with uow:
            claimed = await uow.orders.expired_unpaid(now, 1)
            order = await uow.orders.get(claimed[0]) if claimed else None
            if order is None or order.status is not OrderStatus.PENDING_PAYMENT:
                return cancelled
            await cancel_in(uow, order, now, "system:payment-timeout")
            await uow.commit()
        cancelled.append(order.id)
    return cancelled
