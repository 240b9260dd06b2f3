"""Coupons: head office sets templates up; members claim them; orders redeem them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from dinegraph.domain.coupons import (
    FISSION_FRIENDS_MAX,
    PER_MEMBER_LIMIT_MAX,
    TOTAL_QUANTITY_MAX,
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    JobStatus,
    Segment,
    TemplateStatus,
    check_claimable,
    check_segment,
    check_transition,
    claim_validity,
    clean_title,
    read_share_code,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer, require_catalog_editor
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.pricing import CouponTerms, check_terms
from dinegraph.domain.services.members import require_member
from dinegraph.domain.supplies import coupon_template, supply_changed


@dataclass(frozen=True, slots=True)
class ClaimCoupon:
    template_id: int
    now: datetime
    share_code: str | None = None
    share_key: bytes = b""


@dataclass(frozen=True, slots=True)
class Claimed:
    coupon: Coupon
    bonus: Coupon | None  # the sharer's bonus, when this claim completed their 裂变


async def claim_coupon(cmd: ClaimCoupon, *, uow: UnitOfWork, viewer: Viewer) -> Claimed:
    """Claim one coupon of a template: never past its quantity or the member's limit."""
    member_id = require_member(viewer)
    shared_from = read_share_code(cmd.share_key, cmd.share_code) if cmd.share_code else None
    # A flash sale's late thousands are refused here, without queueing for a write lock:
    # from this process's board once it knows, else from a plain read. The conditional
    # UPDATE below stays the authority.
    supply = coupon_template(cmd.template_id)
    if uow.board.gone(supply):
        raise DomainError(ErrorCode.COUPON_SOLD_OUT, field=["templateId"])
    peeked = await uow.peek_template(cmd.template_id)
    if peeked is not None and peeked.status is TemplateStatus.STOPPED:
        raise DomainError(ErrorCode.TEMPLATE_STOPPED, field=["templateId"])
    if peeked is not None and peeked.remaining <= 0:
        uow.board.saw_gone(supply)
        raise DomainError(ErrorCode.COUPON_SOLD_OUT, field=["templateId"])
    async with uow:
        # Locking the member row serialises one member's concurrent claims, so two of them
        # cannot both pass the per-member limit.
        claimant = await uow.coupons.lock_claimant(member_id, cmd.template_id)
        if claimant is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        member, template = claimant.member, claimant.template
        if template is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["templateId"])
        check_claimable(template, member, now=cmd.now, already_claimed=claimant.claimed)
        source = None
        if shared_from is not None:
            source = await uow.coupons.get_coupon(shared_from)
            if source is None or source.template_id != template.id or source.member_id == member.id:
                raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        if not await _take_one(uow, template):
            uow.board.saw_gone(supply)
            raise DomainError(ErrorCode.COUPON_SOLD_OUT, field=["templateId"])
        valid_from, valid_until = claim_validity(template, cmd.now)
        coupon = await uow.coupons.add_coupon(
            template_id=template.id,
            member_id=member.id,
            valid_from=valid_from,
            valid_until=valid_until,
            claimed_at=cmd.now,
            shared_from_id=source.id if source else None,
        )
        bonus = None
        if source is not None:
            bonus = await _fission_bonus(uow, template, source, cmd.now)
        await uow.commit()
    return Claimed(coupon, bonus)


async def _fission_bonus(
    uow: UnitOfWork, template: CouponTemplate, source: Coupon, now: datetime
) -> Coupon | None:
    """When the K-th friend claims through a share code, the sharer gets the bonus coupon."""
    needed, bonus_id = template.fission_friends, template.fission_bonus_template_id
    if needed is None or bonus_id is None or await uow.coupons.has_bonus(source.id):
        return None
    if await uow.coupons.claims_through(source.id) < needed:
        return None
    bonus_template = await uow.coupons.get_template(bonus_id)
    if bonus_template is None or not await _take_one(uow, bonus_template):
        return None  # the bonus ran out: the friends' coupons stand
    valid_from, valid_until = claim_validity(bonus_template, now)
    return await uow.coupons.add_coupon(
        template_id=bonus_id,
        member_id=source.member_id,
        valid_from=valid_from,
        valid_until=valid_until,
        claimed_at=now,
        bonus_for_id=source.id,
    )


async def _take_one(uow: UnitOfWork, template: CouponTemplate) -> bool:
    """One coupon of the template, unless it ran out; taking the last one is news for
    every process's board."""
    taken = await uow.coupons.take_one(template.id)
    if taken is not None and taken.left == 0:
        uow.record(supply_changed(coupon_template(template.id), gone=True))
    return taken is not None


async def create_template(
    template: CouponTemplate, *, uow: UnitOfWork, viewer: Viewer
) -> CouponTemplate:
    """Set up a coupon (head office); ``id`` and ``issued`` of the argument are ignored."""
    require_catalog_editor(viewer)
    template = replace(template, id=0, issued=0, title=clean_title(template.title))
    _check_template(template)
    async with uow:
        bonus_id = template.fission_bonus_template_id
        if bonus_id is not None and await uow.coupons.get_template(bonus_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["fissionBonusTemplateId"])
        created = await uow.coupons.add_template(template)
        uow.wrote("CouponTemplate", created.id)
        await uow.commit()
    return created


@dataclass(frozen=True, slots=True)
class UpdateTemplate:
    template_id: int
    title: str | None = None
    total_quantity: int | None = None
    per_member_limit: int | None = None
    claim_ends_at: datetime | None = None
    stop: bool = False


async def update_template(
    cmd: UpdateTemplate, *, uow: UnitOfWork, viewer: Viewer
) -> CouponTemplate:
    """Rename, add stock, change limits or the end of claiming, or stop issuing."""
    require_catalog_editor(viewer)
    async with uow:
        template = await uow.coupons.get_template(cmd.template_id)
        if template is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
        if cmd.title is not None:
            template = replace(template, title=clean_title(cmd.title))
        if cmd.total_quantity is not None:
            if cmd.total_quantity < template.issued:
                raise DomainError(
                    ErrorCode.OUT_OF_RANGE,
                    field=["totalQuantity"],
                    min=template.issued,
                    max=TOTAL_QUANTITY_MAX,
                )
            template = replace(template, total_quantity=cmd.total_quantity)
        if cmd.per_member_limit is not None:
            template = replace(template, per_member_limit=cmd.per_member_limit)
        if cmd.claim_ends_at is not None:
            template = replace(template, claim_ends_at=cmd.claim_ends_at)
        if cmd.stop:
            template = replace(template, status=TemplateStatus.STOPPED)
        _check_template(template)
        await uow.coupons.save_template(template)
        # More to claim, or stopped (TEMPLATE_STOPPED is not COUPON_SOLD_OUT): forget it.
        if template.status is TemplateStatus.STOPPED or template.remaining > 0:
            uow.record(supply_changed(coupon_template(template.id), gone=False))
        await uow.commit()
    return template


async def change_coupon_status(
    coupon_id: int,
    target: CouponStatus,
    *,
    order_ref: str | None,
    uow: UnitOfWork,
) -> Coupon:
    """Lock, use, release or expire a coupon inside the caller's unit of work (orders)."""
    coupon = await uow.coupons.get_coupon(coupon_id)
    if coupon is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["couponId"])
    check_transition(coupon.status, target)
    if not await uow.coupons.change_status(coupon.id, coupon.status, target, order_ref):
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["couponId"])
    return replace(coupon, status=target, order_ref=order_ref)


# A coupon's dates lie in this century: year 1 or 9999 is a client's mistake, not a plan.
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2100, 1, 1, tzinfo=UTC)


def _check_template(t: CouponTemplate) -> None:
    if not 1 <= t.total_quantity <= TOTAL_QUANTITY_MAX:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE, field=["totalQuantity"], min=1, max=TOTAL_QUANTITY_MAX
        )
    if not 1 <= t.per_member_limit <= PER_MEMBER_LIMIT_MAX:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE, field=["perMemberLimit"], min=1, max=PER_MEMBER_LIMIT_MAX
        )
    for key, moment in (
        ("validFrom", t.valid_from),
        ("validUntil", t.valid_until),
        ("claimStartsAt", t.claim_starts_at),
        ("claimEndsAt", t.claim_ends_at),
    ):
        if moment is not None and moment.tzinfo is None:  # times carry an offset
            raise DomainError(ErrorCode.INVALID_INPUT, field=[key])
        if moment is not None and not EARLIEST_DATE <= moment < LATEST_DATE:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE,
                field=[key],
                min=EARLIEST_DATE.date().isoformat(),
                max=LATEST_DATE.date().isoformat(),
            )
    if t.valid_days is None and (t.valid_from is None or t.valid_until is None):
        raise DomainError(ErrorCode.REQUIRED, field=["validity"])
    if t.valid_days is not None and not 1 <= t.valid_days <= 366:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["validDays"], min=1, max=366)
    if (t.fission_friends is None) != (t.fission_bonus_template_id is None):
        raise DomainError(ErrorCode.INVALID_INPUT, field=["fissionFriends"])
    if t.fission_friends is not None and not 1 <= t.fission_friends <= FISSION_FRIENDS_MAX:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE, field=["fissionFriends"], min=1, max=FISSION_FRIENDS_MAX
        )
    # The terms as a claim would make them: a window of valid_days stands in for the
    # claim-relative validity.
    start = t.valid_from or datetime(2000, 1, 1, tzinfo=UTC)
    end = t.valid_until or start + timedelta(days=t.valid_days or 0)
    check_terms(
        CouponTerms(
            kind=t.kind,
            valid_from=start,
            valid_until=end,
            amount_off_fen=t.amount_off_fen,
            threshold_fen=t.threshold_fen,
            percent_off=t.percent_off,
            cap_fen=t.cap_fen,
            scope=t.scope,
            min_tier=t.min_tier,
            new_members_only=t.new_members_only,
        )
    )


@dataclass(frozen=True, slots=True)
class IssueToSegment:
    template_id: int
    segment: Segment


async def start_issue_job(cmd: IssueToSegment, *, uow: UnitOfWork, viewer: Viewer) -> IssueJob:
    """Queue issuing a template to a segment (head office); ``run_issue_job`` does the work."""
    require_catalog_editor(viewer)
    segment = check_segment(cmd.segment)
    async with uow:
        template = await uow.coupons.get_template(cmd.template_id)
        if template is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["templateId"])
        if template.status is TemplateStatus.STOPPED:
            raise DomainError(ErrorCode.TEMPLATE_STOPPED, field=["templateId"])
        job = await uow.jobs.add(template.id, segment)
        uow.wrote("CouponIssueJob", job.id)
        await uow.commit()
    return job


async def run_issue_job(
    job_id: int, *, new_uow: Callable[[], UnitOfWork], now: datetime, batch: int = 200
) -> IssueJob:
    """Issue one coupon to each member of the segment, a batch per transaction.

    Members over the per-member limit are skipped; the job stops early when the template
    runs out. Progress is saved with each batch, in the transaction that issues it, so a
    restarted job resumes where it was; the job's row is held while a batch is issued, so
    two runners of one job (a resumed job and one still going) never issue a batch twice.
    """
    while True:
        async with new_uow() as uow:
            job = await uow.jobs.get(job_id, lock=True)
            if job is None or job.status in (JobStatus.DONE, JobStatus.SOLD_OUT):
                assert job is not None
                return job
            template = await uow.coupons.get_template(job.template_id)
            assert template is not None
            members = await uow.jobs.segment_members(
                job.segment, now=now, after_id=job.last_member_id, limit=batch
            )
            issued = skipped = 0
            status = JobStatus.RUNNING
            for member_id in members:
                if (
                    await uow.coupons.claimed_by(template.id, member_id)
                    >= template.per_member_limit
                ):
                    skipped += 1
                    continue
                if not await _take_one(uow, template):
                    status = JobStatus.SOLD_OUT
                    break
                valid_from, valid_until = claim_validity(template, now)
                await uow.coupons.add_coupon(
                    template_id=template.id,
                    member_id=member_id,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    claimed_at=now,
                )
                issued += 1
            if status is JobStatus.RUNNING and len(members) < batch:
                status = JobStatus.DONE
            job = replace(
                job,
                status=status,
                issued=job.issued + issued,
                skipped=job.skipped + skipped,
                last_member_id=members[-1] if members else job.last_member_id,
                finished_at=now if status is not JobStatus.RUNNING else None,
            )
            await uow.jobs.save(job)
            await uow.commit()


async def resume_issue_jobs(*, new_uow: Callable[[], UnitOfWork], now: datetime) -> int:
    """Finish the jobs a stopped server left QUEUED or RUNNING; how many there were."""
    async with new_uow() as uow:
        unfinished = await uow.jobs.unfinished()
    for job_id in unfinished:
        await run_issue_job(job_id, new_uow=new_uow, now=now)
    return len(unfinished)
