"""A granted refund at the payment provider: sent once APPROVED (the approving unit records
its call out, ``domain.refunds.REFUND_CALL``), then SUBMITTED (the provider took it) and
REFUNDED or FAILED (its final word).

The provider's side calls ``refund_submitted`` and ``refund_settled``; each is idempotent
(a repeated or late report changes nothing) and makes a new version of the order, so
``orderUpdates`` pushes the refund's progress. (``services.refunds`` re-exports them.)
``reconcile_refunds`` asks the provider about refunds whose final word never came, and
settles them through ``refund_settled`` too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import order_changed
from dinegraph.domain.payments import (
    CheckoutProvider,
    ProviderRefused,
    ProviderUnavailable,
    out_refund_no,
)
from dinegraph.domain.ports import PaymentGateway, UnitOfWork
from dinegraph.domain.refunds import Refund, RefundStatus, RefundToSend

log = logging.getLogger("dinegraph.payments")

R = RefundStatus
# Refunds asked about per reconciliation round (WeChat Pay allows 300 queries a second).
REFUND_RECONCILE_BATCH = 50


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
    reason: str | None = None  # why it failed, shown as the refund's refusalReason


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
            refusal_reason=None if event.succeeded else event.reason,
        )
        if moved is None:
            return await _refund(uow, event.reference)
        await _tell_followers(uow, refund.order_id, event.at)
        await uow.commit()
    return moved


@dataclass
class RefundsReconciled:
    """What a round of refund reconciliation did, by refund id."""

    refunded: list[int] = field(default_factory=list)  # the provider paid it back: REFUNDED
    failed: list[int] = field(default_factory=list)  # closed or abnormal there: FAILED
    processing: list[int] = field(default_factory=list)  # still under way: asked again later
    unanswered: list[int] = field(default_factory=list)  # the provider did not answer
    # The last refund looked at: the next round goes on after it (0: from the start again).
    after_id: int = 0

    @property
    def settled(self) -> int:
        return len(self.refunded) + len(self.failed)


async def reconcile_refunds(
    now: datetime,
    *,
    provider: CheckoutProvider,
    new_uow: Callable[[], UnitOfWork],
    quiet_for: timedelta,
    after_id: int = 0,
    batch: int = REFUND_RECONCILE_BATCH,
) -> RefundsReconciled:
    """Ask the provider about refunds SUBMITTED and quiet for ``quiet_for`` (their
    notification was lost), and settle those it has ended through ``refund_settled``, as the
    notification would: a notification arriving at the same time settles nothing twice.

    One round looks at ``batch`` refunds after ``after_id``; the answer's ``after_id`` is
    where the next round goes on, so refunds the provider keeps PROCESSING for days do not
    hold newer ones back. Nothing the provider says or fails to say escapes as an error.
    """
    async with new_uow().reading() as reads:
        quiet = await reads.orders.submitted_refunds(
            now - quiet_for, after_id=after_id, limit=batch
        )
    done = RefundsReconciled(after_id=quiet[-1].id if len(quiet) == batch else 0)
    for refund in quiet:
        try:
            found = await provider.query_refund(out_refund_no(refund.reference))
        except (ProviderUnavailable, ProviderRefused) as exc:
            log.warning("reconciliation could not query refund %s: %s", refund.id, exc)
            done.unanswered.append(refund.id)
            continue
        if found is None:  # it accepted the refund, yet knows no such number
            log.error("the provider has no refund %s (%s)", refund.id, refund.reference)
            done.unanswered.append(refund.id)
            continue
        outcome = found.outcome
        if outcome is None:
            done.processing.append(refund.id)
            continue
        event = RefundSettled(
            reference=refund.reference,
            succeeded=outcome.succeeded,
            provider_refund_id=outcome.provider_refund_id,
            at=outcome.at or now,
            reason=outcome.reason,
        )
        try:
            settled = await refund_settled(event, uow=new_uow())
        except DomainError as error:
            log.error("reconciliation could not settle refund %s: %s", refund.id, error)
            done.unanswered.append(refund.id)
            continue
        if settled.status is R.REFUNDED:
            done.refunded.append(refund.id)
        elif settled.status is R.FAILED:
            done.failed.append(refund.id)
    return done


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
