"""A granted refund at the payment provider: sent once APPROVED (the approving unit records
its call out, ``domain.refunds.REFUND_CALL``), then SUBMITTED (the provider took it) and
REFUNDED or FAILED (its final word).

The provider's side calls ``refund_submitted`` and ``refund_settled``; each is idempotent
(a repeated or late report changes nothing) and makes a new version of the order, so
``orderUpdates`` pushes the refund's progress. (``services.refunds`` re-exports them.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import order_changed
from dinegraph.domain.ports import PaymentGateway, UnitOfWork
from dinegraph.domain.refunds import Refund, RefundStatus, RefundToSend

R = RefundStatus


@dataclass(frozen=True, slots=True)
class RefundSubmitted:
    reference: str  # the refund's reference at the provider (out_refund_no)
    provider_refund_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RefundSettled:
    reference: str
    succeeded: bool
    provider_refund_id: str | None
    at: datetime


async def refund_submitted(event: RefundSubmitted, *, uow: UnitOfWork) -> Refund:
    """The provider accepted the refund: SUBMITTED (a repeat, or a report overtaken by the
    final one, changes nothing)."""
    async with uow:
        refund = await _refund(uow, event.reference)
        if refund.status is not R.APPROVED:
            return refund
        moved = await uow.orders.move_refund(
            refund.id,
            [R.APPROVED],
            R.SUBMITTED,
            at=event.at,
            provider_refund_id=event.provider_refund_id,
        )
        if moved is None:  # a racing report moved it first
            return await _refund(uow, event.reference)
        await _tell_followers(uow, refund.order_id, event.at)
        await uow.commit()
    return moved


async def refund_settled(event: RefundSettled, *, uow: UnitOfWork) -> Refund:
    """The provider's final word: REFUNDED, or FAILED (the stock, coupon and points stay as
    approval left them; head office follows a failed refund up). A repeat changes nothing."""
    target = R.REFUNDED if event.succeeded else R.FAILED
    async with uow:
        refund = await _refund(uow, event.reference)
        if refund.status not in (R.APPROVED, R.SUBMITTED):
            return refund
        moved = await uow.orders.move_refund(
            refund.id,
            [R.APPROVED, R.SUBMITTED],
            target,
            at=event.at,
            provider_refund_id=event.provider_refund_id or refund.provider_refund_id,
        )
        if moved is None:
            return await _refund(uow, event.reference)
        await _tell_followers(uow, refund.order_id, event.at)
        await uow.commit()
    return moved


async def make_refund(
    call: OutboundCall, *, payments: PaymentGateway, uow: UnitOfWork, now: datetime
) -> None:
    """The handler of a refund's call out: ask the provider; what it answers comes back
    through ``refund_submitted``/``refund_settled``, each in a unit of its own."""
    await payments.refund(RefundToSend.of_call(call), _Progress(call.key, uow, now))


async def refund_refused(call: OutboundCall, *, uow: UnitOfWork, now: datetime) -> None:
    """The provider refused the refund's call for good: FAILED, for head office to follow
    up (the call is FAILED in ``outboundCalls`` too). A call out of attempts leaves the
    refund APPROVED: an operator may put the call back (``retryOutboundCall``)."""
    await refund_settled(RefundSettled(call.key, False, None, now), uow=uow)


class _Progress:
    """The provider's answers about one refund, each recorded in a unit of its own."""

    def __init__(self, reference: str, uow: UnitOfWork, now: datetime) -> None:
        self._reference = reference
        self._uow = uow
        self._now = now

    async def submitted(self, provider_refund_id: str) -> None:
        await refund_submitted(
            RefundSubmitted(self._reference, provider_refund_id, self._now), uow=self._uow
        )

    async def settled(self, succeeded: bool, provider_refund_id: str | None) -> None:
        await refund_settled(
            RefundSettled(self._reference, succeeded, provider_refund_id, self._now),
            uow=self._uow,
        )


async def _refund(uow: UnitOfWork, reference: str) -> Refund:
    refund = await uow.orders.refund_by_reference(reference)
    if refund is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["reference"])
    return refund


async def _tell_followers(uow: UnitOfWork, order_id: int, at: datetime) -> None:
    version = await uow.orders.touch(order_id, at)
    order = await uow.orders.get(order_id)
    assert version is not None and order is not None
    uow.record(order_changed(replace(order, version=version)))
