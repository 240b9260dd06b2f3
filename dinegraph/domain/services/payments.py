"""Payments of orders: a provider's confirmation, once per transaction, and the development
payment adapter. A group-buy member's payment fills its group's seat."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.catalog import Channel
from dinegraph.domain.coupons import CouponStatus
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.group_buys import GroupBuy, GroupStatus
from dinegraph.domain.identity import Viewer
from dinegraph.domain.orders import (
    Mover,
    Order,
    OrderStatus,
    check_move,
    pickup_code,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.orders import group_changed, move_order, mover_of


@dataclass(frozen=True, slots=True)
class ConfirmPayment:
    """The provider says the order was paid (a notification, or the development adapter)."""

    order_id: int
    provider: str
    transaction_id: str
    amount_fen: int
    at: datetime


async def confirm_payment(cmd: ConfirmPayment, *, uow: UnitOfWork) -> Order:
    """Mark the order PAID once; a repeated notification of the same transaction is a no-op.

    A payment that does not match the total, or that arrives after the order was cancelled,
    changes nothing and is refused with a code for the provider's reconciliation.
    """
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        seen = await uow.orders.payment_order(cmd.provider, cmd.transaction_id)
        if seen is not None:
            if seen != order.id:
                raise DomainError(ErrorCode.PAYMENT_MISMATCH, field=["transactionId"])
            return order
        if cmd.amount_fen != order.total_fen:
            raise DomainError(
                ErrorCode.PAYMENT_MISMATCH, field=["amount"], expected=order.total_fen
            )
        # A group-buy member's order waits for its group; the last seat paid fills it.
        target = OrderStatus.GROUPING if order.group_id is not None else OrderStatus.PAID
        check_move(order, target, Mover.SYSTEM)
        group = None
        if order.group_id is not None and order.member_id is not None:
            group = await uow.campaigns.pay_seat(order.group_id, order.member_id, cmd.at)
            if group is None:
                raise DomainError(ErrorCode.GROUP_CLOSED, field=["orderId"])
        recorded = await uow.orders.add_payment(
            order_id=order.id,
            provider=cmd.provider,
            transaction_id=cmd.transaction_id,
            amount_fen=cmd.amount_fen,
            at=cmd.at,
        )
        if not recorded:
            # The same transaction told twice at once (a notification and the reconciliation):
            # the other telling committed it while this one waited on its key.
            again = await uow.orders.get(order.id)
            return again if again is not None else order
        # Pickup and dine-in orders get the number the counter calls (取餐号).
        code = pickup_code(order.id) if order.channel is not Channel.DELIVERY else None
        paid = await move_order(uow, order, target, cmd.at, paid_at=cmd.at, pickup_code=code)
        paid = replace(paid, paid_at=cmd.at, pickup_code=code)
        if order.coupon_id is not None:
            await change_coupon_status(
                order.coupon_id, CouponStatus.USED, order_ref=order.reference, uow=uow
            )
        if group is not None:
            uow.record(group_changed(group))
            if group.seats_paid == group.size:
                await _fill_group(uow, group, cmd.at)
                paid = replace(paid, status=OrderStatus.PAID, version=paid.version + 1)
        await uow.commit()
    return paid


async def _fill_group(uow: UnitOfWork, group: GroupBuy, at: datetime) -> None:
    """Every seat is paid: the group succeeds and its orders go to the store's kitchen."""
    filled = await uow.campaigns.set_group_status(group.id, GroupStatus.OPEN, GroupStatus.SUCCEEDED)
    if filled is None:  # pragma: no cover - the group row is locked by the payment
        raise DomainError(ErrorCode.GROUP_CLOSED, field=["orderId"])
    uow.record(group_changed(filled))
    for member_order in await uow.orders.in_group(group.id):
        if member_order.status is OrderStatus.GROUPING:
            await move_order(uow, member_order, OrderStatus.PAID, at)


@dataclass(frozen=True, slots=True)
class PayInDevelopment:
    order_id: int
    now: datetime


async def pay_in_development(cmd: PayInDevelopment, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """The development payment adapter: the order's member pays it at once. Paying twice is
    the same transaction told twice, so it changes nothing."""
    async with uow.reading() as reads:
        order = await reads.orders.get(cmd.order_id)
    if mover_of(viewer, order) is not Mover.CUSTOMER:
        raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
    assert order is not None
    payment = ConfirmPayment(
        order_id=order.id,
        provider="development",
        transaction_id=f"dev-{order.id}",
        amount_fen=order.total_fen,
        at=cmd.now,
    )
    return await confirm_payment(payment, uow=uow)
