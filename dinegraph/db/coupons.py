"""The coupon repository: templates, their issue counts, and members' coupons."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.mappers import Prefixed
from dinegraph.db.members import member_of
from dinegraph.db.tables import (
    check_ins,
    coupon_issue_jobs,
    coupon_templates,
    coupons,
    member_spend,
    members,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.coupons import (
    Claimant,
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    JobStatus,
    Segment,
    TemplateStatus,
)
from dinegraph.domain.pricing import CouponKind, CouponScope
from dinegraph.domain.stamps import issue_job_stamp
from dinegraph.domain.supplies import Taken
from dinegraph.domain.tiers import Tier


def template_of(row: Any) -> CouponTemplate:
    scope = row.scope or {}
    return CouponTemplate(
        id=row.id,
        title=row.title,
        kind=CouponKind(row.kind),
        amount_off_fen=row.amount_off_fen,
        threshold_fen=row.threshold_fen,
        percent_off=row.percent_off,
        cap_fen=row.cap_fen,
        scope=CouponScope(
            store_ids=frozenset(scope.get("stores", [])),
            category_ids=frozenset(scope.get("categories", [])),
            product_ids=frozenset(scope.get("products", [])),
            channels=frozenset(Channel(c) for c in scope.get("channels", [])),
        ),
        min_tier=Tier(row.min_tier),
        new_members_only=row.new_members_only,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        valid_days=row.valid_days,
        total_quantity=row.total_quantity,
        issued=row.issued,
        per_member_limit=row.per_member_limit,
        claim_starts_at=row.claim_starts_at,
        claim_ends_at=row.claim_ends_at,
        status=TemplateStatus(row.status),
        fission_friends=row.fission_friends,
        fission_bonus_template_id=row.fission_bonus_template_id,
    )


def template_values(t: CouponTemplate) -> dict[str, object]:
    return {
        "title": t.title,
        "kind": t.kind.value,
        "amount_off_fen": t.amount_off_fen,
        "threshold_fen": t.threshold_fen,
        "percent_off": t.percent_off,
        "cap_fen": t.cap_fen,
        "scope": {
            "stores": sorted(t.scope.store_ids),
            "categories": sorted(t.scope.category_ids),
            "products": sorted(t.scope.product_ids),
            "channels": sorted(c.value for c in t.scope.channels),
        },
        "min_tier": t.min_tier.value,
        "new_members_only": t.new_members_only,
        "valid_from": t.valid_from,
        "valid_until": t.valid_until,
        "valid_days": t.valid_days,
        "total_quantity": t.total_quantity,
        "issued": t.issued,
        "per_member_limit": t.per_member_limit,
        "claim_starts_at": t.claim_starts_at,
        "claim_ends_at": t.claim_ends_at,
        "status": t.status.value,
        "fission_friends": t.fission_friends,
        "fission_bonus_template_id": t.fission_bonus_template_id,
    }


def coupon_of(row: Any) -> Coupon:
    return Coupon(
        id=row.id,
        template_id=row.template_id,
        member_id=row.member_id,
        status=CouponStatus(row.status),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        claimed_at=row.claimed_at,
        order_ref=row.order_ref,
    )


# The statements of a claim, built once: building one costs more than running it.
_GET_TEMPLATE = sa.select(coupon_templates).where(coupon_templates.c.id == sa.bindparam("id"))
_CLAIMED = (
    sa.select(sa.func.count())
    .select_from(coupons)
    .where(
        coupons.c.template_id == sa.bindparam("template_id"),
        coupons.c.member_id == sa.bindparam("member_id"),
        coupons.c.bonus_for_id.is_(None),
    )
    .scalar_subquery()
)
_LOCK_MEMBER = sa.select(members).where(members.c.id == sa.bindparam("member_id")).with_for_update()
_TEMPLATE_AND_CLAIMED = sa.select(coupon_templates, _CLAIMED.label("claimed")).where(
    coupon_templates.c.id == sa.bindparam("template_id")
)
# Where writers take turns for the whole transaction (SQLite), all of it in one read.
_CLAIMANT = (
    sa.select(
        *(c.label(f"m_{c.name}") for c in members.c),
        *coupon_templates.c,
        _CLAIMED.label("claimed"),
    )
    .select_from(members)
    .outerjoin(coupon_templates, coupon_templates.c.id == sa.bindparam("template_id"))
    .where(members.c.id == sa.bindparam("member_id"))
)
_TAKE_ONE = (
    coupon_templates.update()
    .where(
        coupon_templates.c.id == sa.bindparam("template"),
        coupon_templates.c.issued < coupon_templates.c.total_quantity,
        coupon_templates.c.status == TemplateStatus.ACTIVE.value,
    )
    .values(issued=coupon_templates.c.issued + 1)
    .returning(coupon_templates.c.total_quantity - coupon_templates.c.issued)
)
_ADD_COUPON = coupons.insert().returning(*coupons.c)


class SqlCouponRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_template(self, template_id: int) -> CouponTemplate | None:
        row = (await self._conn.execute(_GET_TEMPLATE, {"id": template_id})).first()
        return template_of(row) if row else None

    async def lock_claimant(self, member_id: int, template_id: int) -> Claimant | None:
        keys = {"member_id": member_id, "template_id": template_id}
        if self._conn.dialect.name != "postgresql":
            # SQLite: BEGIN IMMEDIATE made this the one writer already.
            row = (await self._conn.execute(_CLAIMANT, keys)).first()
            if row is None:
                return None
            template = template_of(row) if row.id is not None else None
            return Claimant(member_of(Prefixed(row, "m_")), template, int(row.claimed))
        # PostgreSQL: the template and the count are read after the lock is granted, so
        # that they see what a claim of the same member committed while this one waited.
        locked = (await self._conn.execute(_LOCK_MEMBER, keys)).first()
        if locked is None:
            return None
        found = (await self._conn.execute(_TEMPLATE_AND_CLAIMED, keys)).first()
        if found is None:
            return Claimant(member_of(locked), None, 0)
        return Claimant(member_of(locked), template_of(found), int(found.claimed))

    async def add_template(self, template: CouponTemplate) -> CouponTemplate:
        row = (
            await self._conn.execute(
                coupon_templates.insert()
                .values(**template_values(template))
                .returning(*coupon_templates.c)
            )
        ).one()
        return template_of(row)

    async def save_template(self, template: CouponTemplate) -> None:
        values = template_values(template)
        del values["issued"]  # only take_one changes it
        await self._conn.execute(
            coupon_templates.update().where(coupon_templates.c.id == template.id).values(**values)
        )

    async def take_one(self, template_id: int) -> Taken | None:
        """Count one more issued, unless that would pass the quantity: one atomic step."""
        left = await self._conn.scalar(_TAKE_ONE, {"template": template_id})
        return None if left is None else Taken(int(left))

    async def claimed_by(self, template_id: int, member_id: int) -> int:
        count = await self._conn.scalar(
            sa.select(sa.func.count())
            .select_from(coupons)
            .where(
                coupons.c.template_id == template_id,
                coupons.c.member_id == member_id,
                coupons.c.bonus_for_id.is_(None),
            )
        )
        return int(count or 0)

    async def add_coupon(
        self,
        *,
        template_id: int,
        member_id: int,
        valid_from: datetime,
        valid_until: datetime,
        claimed_at: datetime,
        shared_from_id: int | None = None,
        bonus_for_id: int | None = None,
    ) -> Coupon:
        row = (
            await self._conn.execute(
                _ADD_COUPON,
                {
                    "template_id": template_id,
                    "member_id": member_id,
                    "status": CouponStatus.AVAILABLE.value,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                    "claimed_at": claimed_at,
                    "shared_from_id": shared_from_id,
                    "bonus_for_id": bonus_for_id,
                },
            )
        ).one()
        return coupon_of(row)

    async def get_coupon(self, coupon_id: int) -> Coupon | None:
        row = (
            await self._conn.execute(sa.select(coupons).where(coupons.c.id == coupon_id))
        ).first()
        return coupon_of(row) if row else None

    async def claims_through(self, coupon_id: int) -> int:
        count = await self._conn.scalar(
            sa.select(sa.func.count())
            .select_from(coupons)
            .where(coupons.c.shared_from_id == coupon_id)
        )
        return int(count or 0)

    async def has_bonus(self, coupon_id: int) -> bool:
        found = await self._conn.scalar(
            sa.select(coupons.c.id).where(coupons.c.bonus_for_id == coupon_id)
        )
        return found is not None

    async def change_status(
        self, coupon_id: int, current: CouponStatus, target: CouponStatus, order_ref: str | None
    ) -> bool:
        """Move a coupon on, only from the status it is known to be in (no lost updates)."""
        result = await self._conn.execute(
            coupons.update()
            .where(coupons.c.id == coupon_id, coupons.c.status == current.value)
            .values(status=target.value, order_ref=order_ref)
        )
        return result.rowcount == 1


def job_of(row: Any) -> IssueJob:
    return IssueJob(
        id=row.id,
        template_id=row.template_id,
        segment=Segment(tier=Tier(row.tier) if row.tier else None, dormant_days=row.dormant_days),
        status=JobStatus(row.status),
        issued=row.issued,
        skipped=row.skipped,
        last_member_id=row.last_member_id,
        finished_at=row.finished_at,
    )


class SqlIssueJobRepository:
    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        self._conn = conn
        self._moved = moved if moved is not None else set()  # stamps its writes move

    async def add(self, template_id: int, segment: Segment) -> IssueJob:
        row = (
            await self._conn.execute(
                coupon_issue_jobs.insert()
                .values(
                    template_id=template_id,
                    tier=segment.tier.value if segment.tier else None,
                    dormant_days=segment.dormant_days,
                    status=JobStatus.QUEUED.value,
                    issued=0,
                    skipped=0,
                    last_member_id=0,
                )
                .returning(*coupon_issue_jobs.c)
            )
        ).one()
        return job_of(row)

    async def get(self, job_id: int, *, lock: bool = False) -> IssueJob | None:
        query = sa.select(coupon_issue_jobs).where(coupon_issue_jobs.c.id == job_id)
        if lock:  # PostgreSQL; SQLite's write transactions are one at a time anyway
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return job_of(row) if row else None

    async def unfinished(self) -> list[int]:
        query = (
            sa.select(coupon_issue_jobs.c.id)
            .where(
                coupon_issue_jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
            .order_by(coupon_issue_jobs.c.id)
        )
        return [int(i) for i in await self._conn.scalars(query)]

    async def save(self, job: IssueJob) -> None:
        self._moved.add(issue_job_stamp(job.id))  # its followers read it again
        await self._conn.execute(
            coupon_issue_jobs.update()
            .where(coupon_issue_jobs.c.id == job.id)
            .values(
                status=job.status.value,
                issued=job.issued,
                skipped=job.skipped,
                last_member_id=job.last_member_id,
                finished_at=job.finished_at,
            )
        )

    async def segment_members(
        self, segment: Segment, *, now: datetime, after_id: int, limit: int
    ) -> list[int]:
        """Member ids of the segment above ``after_id``, in id order."""
        where = segment_filter(segment, now=now, after_id=after_id)
        query = sa.select(members.c.id).where(*where).order_by(members.c.id).limit(limit)
        return [int(i) for i in await self._conn.scalars(query)]


def segment_filter(
    segment: Segment, *, now: datetime, after_id: int
) -> list[sa.ColumnElement[bool]]:
    """The members of a segment whose id is above ``after_id``."""
    where: list[sa.ColumnElement[bool]] = [members.c.id > after_id]
    if segment.tier is not None:
        where.append(members.c.tier == segment.tier.value)
    if segment.dormant_days is not None:
        cutoff = now - timedelta(days=segment.dormant_days)
        where += [
            members.c.created_at < cutoff,
            ~sa.exists().where(
                (member_spend.c.member_id == members.c.id) & (member_spend.c.at >= cutoff)
            ),
            ~sa.exists().where(
                (check_ins.c.member_id == members.c.id) & (check_ins.c.day >= cutoff.date())
            ),
        ]
    return where
