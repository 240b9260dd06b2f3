"""Paying through a provider the customer pays in their own app (WeChat Pay JSAPI): the
prepay ``payOrder`` opens (or reuses), and the reconciliation that asks the provider about
trades whose notification never came and closes the trades of cancelled orders.

The payment itself is confirmed by ``payments.confirm_payment``, once per transaction,
whether the notification or the reconciliation brings it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer
from dinegraph.domain.orders import Mover, Order, OrderStatus
from dinegraph.domain.payments import (
    CheckoutProvider,
    PaymentRequest,
    Prepay,
    PrepayStore,
    ProviderRefused,
    ProviderUnavailable,
    out_trade_no,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.orders import mover_of
from dinegraph.domain.services.payments import ConfirmPayment, confirm_payment

log = logging.getLogger("dinegraph.payments")

# WeChat Pay keeps a prepay id for two hours; the order's deadline usually comes first.
PREPAY_LIFETIME = timedelta(hours=2)
# A prepay this close to its end is not handed out again: the customer needs time to pay.
PREPAY_MARGIN = timedelta(seconds=30)
RECONCILE_BATCH = 50


@dataclass(frozen=True, slots=True)
class CheckoutPayments:
    """The provider and the store of its prepays, chosen once by the wiring."""

    provider: CheckoutProvider
    prepays: PrepayStore


@dataclass(frozen=True, slots=True)
class StartPayment:
    order_id: int
    now: datetime
    payments: CheckoutPayments


@dataclass(frozen=True, slots=True)
class PaymentStarted:
    order: Order
    request: PaymentRequest


async def start_payment(cmd: StartPayment, *, uow: UnitOfWork, viewer: Viewer) -> PaymentStarted:
    """The order's member pays it in WeChat: the signed ``wx.requestPayment`` parameters.

    A still-valid prepay of the same order is handed out again; otherwise the provider opens
    one. Nothing of ours changes until the provider answered; its error or silence is
    ``PAYMENT_PROVIDER_UNAVAILABLE``.
    """
    async with uow.reading() as reads:
        order = await reads.orders.get(cmd.order_id)
        if mover_of(viewer, order) is not Mover.CUSTOMER:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        assert order is not None
        member = None if order.member_id is None else await reads.members.get(order.member_id)
    if order.status is not OrderStatus.PENDING_PAYMENT or cmd.now >= order.pay_by:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, field=["orderId"], current=order.status, target="PAID"
        )
    payer = member.wechat_openid if member is not None else None
    if not payer:
        raise DomainError(ErrorCode.WECHAT_REQUIRED, field=["orderId"])
    provider, prepays = cmd.payments.provider, cmd.payments.prepays
    prepay = await prepays.get(order.id)
    if prepay is not None and prepay.usable_for(payer, order.total_fen, cmd.now + PREPAY_MARGIN):
        return PaymentStarted(order, provider.payment_request(prepay.prepay_id))
    try:
        prepay_id = await provider.prepay(order, payer)
    except (ProviderUnavailable, ProviderRefused) as exc:
        log.warning("prepay of order %s failed: %s", order.id, exc)
        raise DomainError(ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, field=["orderId"]) from exc
    prepay = Prepay(
        order_id=order.id,
        provider=provider.name,
        prepay_id=prepay_id,
        payer=payer,
        amount_fen=order.total_fen,
        created_at=cmd.now,
        expires_at=min(cmd.now + PREPAY_LIFETIME, order.pay_by),
    )
    await prepays.save(prepay)
    return PaymentStarted(order, provider.payment_request(prepay_id))


@dataclass
class Reconciled:
    """What a reconciliation round did, by order id."""

    confirmed: list[int] = field(default_factory=list)  # paid; the notification never came
    ended: list[int] = field(default_factory=list)  # the provider closed the trade unpaid
    closed: list[int] = field(default_factory=list)  # cancelled orders' trades closed by us
    refunded: list[int] = field(default_factory=list)  # paid after cancelling: sent back
    failed: list[int] = field(default_factory=list)  # the provider did not answer; next round


async def reconcile_payments(
    now: datetime,
    *,
    payments: CheckoutPayments,
    new_uow: Callable[[], UnitOfWork],
    quiet_for: timedelta,
    batch: int = RECONCILE_BATCH,
) -> Reconciled:
    """Ask the provider about prepays older than ``quiet_for`` whose order still awaits
    payment (confirming those paid), and close the trades of cancelled orders.

    A cancelled order's trade the customer paid all the same is refunded in full.
    """
    provider, prepays = payments.provider, payments.prepays
    done = Reconciled()
    for prepay in await prepays.awaiting(now - quiet_for, batch):
        order_id = prepay.order_id
        try:
            trade = await provider.query(out_trade_no(order_id))
        except (ProviderUnavailable, ProviderRefused) as exc:
            log.warning("reconciliation could not query order %s: %s", order_id, exc)
            done.failed.append(order_id)
            continue
        if trade is None:
            continue
        if trade.state.paid and trade.transaction_id and trade.amount_fen is not None:
            paid = ConfirmPayment(
                order_id=order_id,
                provider=provider.name,
                transaction_id=trade.transaction_id,
                amount_fen=trade.amount_fen,
                at=trade.paid_at or now,
            )
            try:
                await confirm_payment(paid, uow=new_uow())
            except DomainError as error:
                log.error("reconciliation could not confirm order %s: %s", order_id, error)
                done.failed.append(order_id)
                continue
            await prepays.mark_closed(order_id, now)
            done.confirmed.append(order_id)
        elif trade.state.over:
            await prepays.mark_closed(order_id, now)
            done.ended.append(order_id)
    for prepay in await prepays.of_cancelled_orders(batch):
        await _close_trade(prepay, now, payments, done)
    return done


async def _close_trade(
    prepay: Prepay, now: datetime, payments: CheckoutPayments, done: Reconciled
) -> None:
    provider, order_id = payments.provider, prepay.order_id
    trade_no = out_trade_no(order_id)
    try:
        try:
            await provider.close(trade_no)
            done.closed.append(order_id)
        except ProviderRefused as refused:
            if refused.code == "ORDER_NOT_EXIST":  # never opened there: nothing to close
                done.closed.append(order_id)
                await payments.prepays.mark_closed(order_id, now)
                return
            if refused.code != "ORDERPAID":
                raise
            # Paid while (or after) the order was cancelled: the money goes back.
            log.error("order %s was paid after it was cancelled: refunding it", order_id)
            await provider.refund(
                trade_no=trade_no,
                refund_no=f"{trade_no}-cancelled",
                refund_fen=prepay.amount_fen,
                total_fen=prepay.amount_fen,
                reason="订单已取消",
            )
            done.refunded.append(order_id)
    except (ProviderUnavailable, ProviderRefused) as exc:
        log.warning("reconciliation could not close order %s: %s", order_id, exc)
        done.failed.append(order_id)
        return
    await payments.prepays.mark_closed(order_id, now)
