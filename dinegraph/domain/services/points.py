"""Points and tiers as orders move them: earn, redeem, adjust, expire, recompute the tier.

The orders flow calls ``record_spend`` and ``earn_points`` when an order completes (and
again, negatively, on a refund); head office adjusts by hand; a sweep expires old points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer, require_catalog_editor
from dinegraph.domain.members import POINTS_REFERENCE_MAX, PointsKind, earned_points
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.text import clean_text
from dinegraph.domain.tiers import BENEFITS, Tier, tier_for_spend

TIER_WINDOW = timedelta(days=365)


async def record_spend(
    member_id: int,
    reference: str,
    amount_fen: int,
    *,
    at: datetime,
    thresholds: Mapping[Tier, int],
    uow: UnitOfWork,
) -> Tier:
    """Count an order's amount (negative for a refund) once, and recompute the tier."""
    member = await uow.members.get(member_id, lock=True)
    if member is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["memberId"])
    await uow.members.add_spend(
        member_id=member_id, reference=reference, amount_fen=amount_fen, at=at
    )
    tier = tier_for_spend(await uow.members.spend_since(member_id, at - TIER_WINDOW), thresholds)
    if tier is not member.tier:
        await uow.members.save_profile(replace(member, tier=tier))
    return tier


async def earn_points(
    member_id: int,
    reference: str,
    paid_fen: int,
    *,
    now: datetime,
    expiry_days: int,
    uow: UnitOfWork,
) -> int:
    """Points for a paid order, with the tier's multiplier; they expire after expiry_days."""
    member = await uow.members.get(member_id, lock=True)
    if member is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["memberId"])
    points = earned_points(paid_fen, BENEFITS[member.tier].points_multiplier)
    if points <= 0:
        return await uow.members.points_balance(member_id)
    balance = await uow.members.change_points(
        member_id=member_id,
        kind=PointsKind.EARN,
        reference=reference,
        delta=points,
        expires_at=now + timedelta(days=expiry_days),
    )
    assert balance is not None
    return balance


async def redeem_points(member_id: int, points: int, reference: str, *, uow: UnitOfWork) -> int:
    """Spend points (an order's points deduction); never below zero."""
    if points <= 0:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["points"], min=1, max=10_000_000)
    balance = await uow.members.change_points(
        member_id=member_id, kind=PointsKind.REDEEM, reference=reference, delta=-points
    )
    if balance is None:
        raise DomainError(ErrorCode.INSUFFICIENT_POINTS, field=["points"])
    return balance


@dataclass(frozen=True, slots=True)
class AdjustPoints:
    member_id: int
    delta: int
    reference: str
    reason: str


ADJUST_REASON_MAX = 200


async def adjust_points(cmd: AdjustPoints, *, uow: UnitOfWork, viewer: Viewer) -> int:
    """Head office corrects a member's points, with a reason (the audit log keeps it with
    the change); the reference makes a retry harmless."""
    require_catalog_editor(viewer)
    if cmd.delta == 0 or abs(cmd.delta) > 1_000_000:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["delta"], min=-1_000_000, max=1_000_000)
    reference = clean_text(cmd.reference, ["reference"], max_length=POINTS_REFERENCE_MAX)
    clean_text(cmd.reason, ["reason"], max_length=ADJUST_REASON_MAX)
    async with uow:
        if await uow.members.get(cmd.member_id, lock=True) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["memberId"])
        balance = await uow.members.change_points(
            member_id=cmd.member_id,
            kind=PointsKind.ADJUST,
            reference=reference,
            delta=cmd.delta,
        )
        if balance is None:
            raise DomainError(ErrorCode.INSUFFICIENT_POINTS, field=["delta"])
        await uow.commit()
    return balance


async def expire_points(now: datetime, *, uow: UnitOfWork, batch: int = 500) -> tuple[int, int]:
    """Expire earned points past their date, once per earning: (earnings seen, points).

    Points already spent cannot expire twice: each earning expires at most what is left
    of the balance.
    """
    total = 0
    async with uow:
        due = await uow.members.expirable_points(now, batch)
        for member_id, earn_id, points in due:
            await uow.members.get(member_id, lock=True)
            left = await uow.members.points_balance(member_id)
            amount = min(points, left)
            if amount <= 0:
                amount = 0
            balance = await uow.members.change_points(
                member_id=member_id, kind=PointsKind.EXPIRE, reference=str(earn_id), delta=-amount
            )
            assert balance is not None
            total += amount
        await uow.commit()
    return len(due), total
