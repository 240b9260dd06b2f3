"""Coupon mutations: claiming, head office's templates, and issuing to a segment of members."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dinegraph.context import Context
from dinegraph.domain import coupons as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.pricing import CouponKind, CouponScope
from dinegraph.domain.services import coupons as service
from dinegraph.domain.tiers import Tier
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import UserError
from dinegraph.schema.coupons import CouponIssueJobNode, CouponNode, CouponTemplateNode
from dinegraph.schema.errors import attempt

Info = strawberry.Info[Context, None]


@strawberry.type
class ClaimCouponPayload:
    coupon: CouponNode | None
    bonus: CouponNode | None = strawberry.field(
        description="The sharer's bonus, when this claim completed a 裂变."
    )
    errors: list[UserError]


@strawberry.input
class CouponScopeInput:
    store_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    category_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    product_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    channels: list[Channel] = strawberry.field(default_factory=list)


@strawberry.input
class CreateCouponTemplateInput:
    title: str
    kind: CouponKind
    total_quantity: int
    amount_off_fen: int = 0
    threshold_fen: int = 0
    percent_off: int = 0
    cap_fen: int | None = None
    scope: CouponScopeInput | None = None
    min_tier: Tier = Tier.NORMAL
    new_members_only: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    per_member_limit: int = 1
    claim_starts_at: datetime | None = None
    claim_ends_at: datetime | None = None
    fission_friends: int | None = None
    fission_bonus_template_id: strawberry.ID | None = None


@strawberry.input
class UpdateCouponTemplateInput:
    id: strawberry.ID
    title: str | None = None
    total_quantity: int | None = None
    per_member_limit: int | None = None
    claim_ends_at: datetime | None = None
    stop: bool = strawberry.field(default=False, description="Stop issuing it for good.")


@strawberry.type
class CouponTemplatePayload:
    template: CouponTemplateNode | None
    errors: list[UserError]


def _scope(scope: CouponScopeInput | None) -> CouponScope:
    if scope is None:
        return CouponScope()
    return CouponScope(
        store_ids=frozenset(decode_id(i, "Store", ["scope", "storeIds"]) for i in scope.store_ids),
        category_ids=frozenset(
            decode_id(i, "Category", ["scope", "categoryIds"]) for i in scope.category_ids
        ),
        product_ids=frozenset(
            decode_id(i, "Product", ["scope", "productIds"]) for i in scope.product_ids
        ),
        channels=frozenset(scope.channels),
    )


@strawberry.type
class CouponMutation:
    @strawberry.mutation(description="Claim a coupon (领券); through a friend's share code too.")
    async def claim_coupon(
        self, info: Info, template_id: strawberry.ID, share_code: str | None = None
    ) -> ClaimCouponPayload:
        ctx = info.context

        async def run() -> service.Claimed:
            cmd = service.ClaimCoupon(
                template_id=decode_id(template_id, "CouponTemplate", ["templateId"]),
                now=ctx.now(),
                share_code=share_code,
                share_key=ctx.services.share_key,
            )
            return await ctx.run(service.claim_coupon, cmd)

        claimed, errors = await attempt(info, run)
        if claimed is None:
            return ClaimCouponPayload(coupon=None, bonus=None, errors=errors)
        bonus = CouponNode.of(claimed.bonus) if claimed.bonus else None
        return ClaimCouponPayload(coupon=CouponNode.of(claimed.coupon), bonus=bonus, errors=errors)

    @strawberry.mutation(description="Set up a coupon template (head office).")
    async def create_coupon_template(
        self, info: Info, input: CreateCouponTemplateInput
    ) -> CouponTemplatePayload:
        async def run() -> domain.CouponTemplate:
            bonus = input.fission_bonus_template_id
            template = domain.CouponTemplate(
                id=0,
                title=input.title,
                kind=input.kind,
                amount_off_fen=input.amount_off_fen,
                threshold_fen=input.threshold_fen,
                percent_off=input.percent_off,
                cap_fen=input.cap_fen,
                scope=_scope(input.scope),
                min_tier=input.min_tier,
                new_members_only=input.new_members_only,
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                valid_days=input.valid_days,
                total_quantity=input.total_quantity,
                per_member_limit=input.per_member_limit,
                claim_starts_at=input.claim_starts_at,
                claim_ends_at=input.claim_ends_at,
                fission_friends=input.fission_friends,
                fission_bonus_template_id=(
                    decode_id(bonus, "CouponTemplate", ["fissionBonusTemplateId"])
                    if bonus
                    else None
                ),
            )
            return await info.context.run(service.create_template, template)

        template, errors = await attempt(info, run)
        return CouponTemplatePayload(
            template=CouponTemplateNode.of(template) if template else None, errors=errors
        )

    @strawberry.mutation(description="Rename, restock, re-limit or stop a coupon template.")
    async def update_coupon_template(
        self, info: Info, input: UpdateCouponTemplateInput
    ) -> CouponTemplatePayload:
        async def run() -> domain.CouponTemplate:
            cmd = service.UpdateTemplate(
                template_id=decode_id(input.id, "CouponTemplate", ["id"]),
                title=input.title,
                total_quantity=input.total_quantity,
                per_member_limit=input.per_member_limit,
                claim_ends_at=input.claim_ends_at,
                stop=input.stop,
            )
            return await info.context.run(service.update_template, cmd)

        template, errors = await attempt(info, run)
        return CouponTemplatePayload(
            template=CouponTemplateNode.of(template) if template else None, errors=errors
        )


@strawberry.input
class IssueCouponToSegmentInput:
    template_id: strawberry.ID
    tier: Tier | None = None
    dormant_days: int | None = strawberry.field(
        default=None, description="Members with no order or check-in for this many days."
    )


@strawberry.type
class IssueCouponToSegmentPayload:
    job: CouponIssueJobNode | None
    errors: list[UserError]


@strawberry.type
class CouponSegmentMutation:
    @strawberry.mutation(description="Issue a coupon to a tier or to dormant members (唤醒券).")
    async def issue_coupon_to_segment(
        self, info: Info, input: IssueCouponToSegmentInput
    ) -> IssueCouponToSegmentPayload:
        ctx = info.context

        async def run() -> domain.IssueJob:
            cmd = service.IssueToSegment(
                template_id=decode_id(input.template_id, "CouponTemplate", ["templateId"]),
                segment=domain.Segment(tier=input.tier, dormant_days=input.dormant_days),
            )
            job = await ctx.run(service.start_issue_job, cmd)
            ctx.services.background.spawn(
                service.run_issue_job(job.id, new_uow=ctx.uow, now=ctx.now())
            )
            return job

        job, errors = await attempt(info, run)
        return IssueCouponToSegmentPayload(
            job=CouponIssueJobNode.of(job) if job else None, errors=errors
        )
