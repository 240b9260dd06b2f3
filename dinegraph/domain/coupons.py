"""Coupon templates, members' coupons, claiming rules and redemption states."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.members import Member
from dinegraph.domain.pricing import CouponKind, CouponScope, CouponTerms
from dinegraph.domain.tiers import Tier, tier_rank

NEW_MEMBER_DAYS = 30
TITLE_MAX = 40
TOTAL_QUANTITY_MAX = 10_000_000
PER_MEMBER_LIMIT_MAX = 100
FISSION_FRIENDS_MAX = 100  # friends who must claim through a share before the bonus
SHARE_CODE_MAX = 40  # "<coupon id>.<16 hex>"


class TemplateStatus(StrEnum):
    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"


class CouponStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    LOCKED = "LOCKED"  # held by a placed, unpaid order
    USED = "USED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True, kw_only=True)
class CouponTemplate:
    """What is offered: the discount, when it is valid, how many, to whom."""

    id: int
    title: str
    kind: CouponKind
    amount_off_fen: int = 0
    threshold_fen: int = 0
    percent_off: int = 0
    cap_fen: int | None = None
    scope: CouponScope = field(default_factory=CouponScope)
    min_tier: Tier = Tier.NORMAL
    new_members_only: bool = False
    # Validity: a fixed window, or valid_days from the moment of claiming.
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    total_quantity: int
    issued: int = 0
    per_member_limit: int = 1
    claim_starts_at: datetime | None = None
    claim_ends_at: datetime | None = None
    status: TemplateStatus = TemplateStatus.ACTIVE
    # 裂变券: when this many friends claim through a member's share code, the member gets
    # a coupon of the bonus template.
    fission_friends: int | None = None
    fission_bonus_template_id: int | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.total_quantity - self.issued)


@dataclass(frozen=True, slots=True)
class Coupon:
    id: int
    template_id: int
    member_id: int
    status: CouponStatus
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime
    order_ref: str | None = None

    def status_at(self, now: datetime) -> CouponStatus:
        """What the member sees: the stored status, or EXPIRED once it lapsed unswept."""
        return status_at(self.status, self.valid_until, now)


@dataclass(frozen=True, slots=True)
class Claimant:
    """What a claim is checked against, read after the member's row is locked: the member,
    the template (None if unknown) and how many of it the member claimed (bonuses aside)."""

    member: Member
    template: CouponTemplate | None
    claimed: int


# Stored statuses that lapse at the end of validity (the sweep may not have stored it yet).
LAPSING = frozenset({CouponStatus.AVAILABLE})


def status_at(stored: CouponStatus, valid_until: datetime, now: datetime) -> CouponStatus:
    """A coupon's status at ``now``: a stored AVAILABLE past ``valid_until`` is EXPIRED."""
    if stored in LAPSING and valid_until <= now:
        return CouponStatus.EXPIRED
    return stored


@dataclass(frozen=True, slots=True)
class StoredAs:
    """Which stored coupons read as one status (``status_at``), for a query to select by:
    those stored ``as_is`` whatever their validity, those stored ``while_valid`` with
    ``valid_until`` after now, and those stored ``once_lapsed`` with it at or before now."""

    as_is: frozenset[CouponStatus]
    while_valid: frozenset[CouponStatus]
    once_lapsed: frozenset[CouponStatus]


def stored_as(status: CouponStatus) -> StoredAs:
    """The stored statuses that ``status_at`` turns into ``status``."""
    return StoredAs(
        as_is=frozenset({status} - LAPSING),
        while_valid=frozenset({status} & LAPSING),
        once_lapsed=LAPSING if status is CouponStatus.EXPIRED else frozenset(),
    )


def is_new_member(member: Member, now: datetime) -> bool:
    return now - member.created_at < timedelta(days=NEW_MEMBER_DAYS)


def claim_validity(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    if template.valid_days is not None:
        return now, now + timedelta(days=template.valid_days)
    assert template.valid_from is not None and template.valid_until is not None
    return template.valid_from, template.valid_until


def terms_of(template: CouponTemplate, coupon: Coupon) -> CouponTerms:
    """The pricing terms of a member's coupon: its template's, with its own validity."""
    return CouponTerms(
        kind=template.kind,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        amount_off_fen=template.amount_off_fen,
        threshold_fen=template.threshold_fen,
        percent_off=template.percent_off,
        cap_fen=template.cap_fen,
        scope=template.scope,
        min_tier=template.min_tier,
        new_members_only=template.new_members_only,
    )


def check_claimable(
    template: CouponTemplate, member: Member, *, now: datetime, already_claimed: int
) -> None:
    """Whether ``member`` may claim one more of ``template`` now (stock is checked apart)."""
    if template.status is TemplateStatus.STOPPED:
        raise DomainError(ErrorCode.TEMPLATE_STOPPED, field=["templateId"])
    if (template.claim_starts_at and now < template.claim_starts_at) or (
        template.claim_ends_at and now >= template.claim_ends_at
    ):
        raise DomainError(ErrorCode.CLAIM_NOT_OPEN, field=["templateId"])
    if tier_rank(member.tier) < tier_rank(template.min_tier):
        raise DomainError(ErrorCode.NOT_ELIGIBLE, field=["templateId"])
    if template.new_members_only and not is_new_member(member, now):
        raise DomainError(ErrorCode.NOT_ELIGIBLE, field=["templateId"])
    if already_claimed >= template.per_member_limit:
        raise DomainError(ErrorCode.CLAIM_LIMIT_REACHED, field=["templateId"])
    if template.remaining <= 0:
        raise DomainError(ErrorCode.COUPON_SOLD_OUT, field=["templateId"])


def claimable_now(template: CouponTemplate, member: Member | None, now: datetime) -> bool:
    """Shown in the 领券中心: open, in stock, and (for a member) within their tier."""
    try:
        if member is None:
            if template.status is TemplateStatus.STOPPED or template.remaining <= 0:
                return False
            return not (
                (template.claim_starts_at and now < template.claim_starts_at)
                or (template.claim_ends_at and now >= template.claim_ends_at)
            )
        check_claimable(template, member, now=now, already_claimed=0)
    except DomainError:
        return False
    return True


# --- issuing to a segment ---


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    SOLD_OUT = "SOLD_OUT"  # stopped early: the template ran out


@dataclass(frozen=True, slots=True)
class Segment:
    """Members to issue to: a tier, members dormant for N days (唤醒券), or both."""

    tier: Tier | None = None
    dormant_days: int | None = None


@dataclass(frozen=True, slots=True)
class IssueJob:
    id: int
    template_id: int
    segment: Segment
    status: JobStatus
    issued: int
    skipped: int
    last_member_id: int
    finished_at: datetime | None


def check_segment(segment: Segment) -> Segment:
    if segment.tier is None and segment.dormant_days is None:
        raise DomainError(ErrorCode.REQUIRED, field=["segment"])
    if segment.dormant_days is not None and not 1 <= segment.dormant_days <= 3650:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["dormantDays"], min=1, max=3650)
    return segment


# --- redemption -----------------------------------------------------------------------

_TRANSITIONS: dict[tuple[CouponStatus, CouponStatus], str] = {
    (CouponStatus.AVAILABLE, CouponStatus.LOCKED): "an order is placed with it",
    (CouponStatus.LOCKED, CouponStatus.USED): "the order is paid",
    (CouponStatus.LOCKED, CouponStatus.AVAILABLE): "the order is cancelled before payment",
    (CouponStatus.AVAILABLE, CouponStatus.EXPIRED): "its validity ends",
    (CouponStatus.USED, CouponStatus.AVAILABLE): "a full refund returns it, if still valid",
}


def check_transition(current: CouponStatus, target: CouponStatus) -> None:
    """AVAILABLE → LOCKED → USED; LOCKED → AVAILABLE on cancel; AVAILABLE → EXPIRED."""
    if (current, target) not in _TRANSITIONS:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["coupon"])


# --- share codes (裂变) ----------------------------------------------------------------


def share_code(key: bytes, coupon_id: int) -> str:
    """A signed code naming the coupon it was shared from; friends claim through it."""
    mac = hmac.new(key, f"share:{coupon_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"{coupon_id}.{mac}"


def read_share_code(key: bytes, code: str) -> int:
    raw_id = code.partition(".")[0]
    if (
        len(code) > SHARE_CODE_MAX
        or not (raw_id.isascii() and raw_id.isdigit())
        or not hmac.compare_digest(share_code(key, int(raw_id)), code)
    ):
        raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
    return int(raw_id)


def clean_title(raw: str) -> str:
    title = raw.strip()
    if not title:
        raise DomainError(ErrorCode.REQUIRED, field=["title"])
    if len(title) > TITLE_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["title"], max=TITLE_MAX)
    return title
