"""GraphQL types and mutations of coupons: templates, the wallet, claiming, cart fit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import coupons as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.pricing import CouponKind, CouponScope, Inapplicable
from dinegraph.domain.services import coupons as service
from dinegraph.domain.tiers import Tier
from dinegraph.resolvers import coupons as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.common import Money, UserError, page_info
from dinegraph.schema.errors import attempt, raise_for_query

Info = strawberry.Info[Context, None]

strawberry.enum(CouponKind, name="CouponKind", description="满减, 无门槛, 折扣, 免配送费.")
strawberry.enum(domain.CouponStatus, name="CouponStatus")
strawberry.enum(domain.TemplateStatus, name="CouponTemplateStatus")
strawberry.enum(Inapplicable, name="CouponInapplicableReason")
strawberry.enum(domain.JobStatus, name="CouponIssueJobStatus")


@strawberry.type(name="CouponTemplate", description="A coupon on offer.")
class CouponTemplateNode(relay.Node):
    id: relay.NodeID[int]
    title: str
    kind: CouponKind
    percent_off: int
    min_tier: Tier
    new_members_only: bool
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None = strawberry.field(description="Days of validity from claiming.")
    total_quantity: int
    remaining: int
    per_member_limit: int
    claim_starts_at: datetime | None
    claim_ends_at: datetime | None
    status: domain.TemplateStatus
    fission_friends: int | None = strawberry.field(
        description="裂变: friends who must claim through a share link to earn the bonus."
    )
    template: strawberry.Private[domain.CouponTemplate]

    @classmethod
    def of(cls, t: domain.CouponTemplate) -> CouponTemplateNode:
        return cls(
            id=t.id,
            title=t.title,
            kind=t.kind,
            percent_off=t.percent_off,
            min_tier=t.min_tier,
            new_members_only=t.new_members_only,
            valid_from=t.valid_from,
            valid_until=t.valid_until,
            valid_days=t.valid_days,
            total_quantity=t.total_quantity,
            remaining=t.remaining,
            per_member_limit=t.per_member_limit,
            claim_starts_at=t.claim_starts_at,
            claim_ends_at=t.claim_ends_at,
            status=t.status,
            fission_friends=t.fission_friends,
            template=t,
        )

    @strawberry.field
    def amount_off(self) -> Money:
        return Money.of(self.template.amount_off_fen)

    @strawberry.field
    def threshold(self) -> Money:
        return Money.of(self.template.threshold_fen)

    @strawberry.field
    def cap(self) -> Money | None:
        cap = self.template.cap_fen
        return Money.of(cap) if cap is not None else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CouponTemplateNode | None]:
        ids = node_row_ids(node_ids)
        found = await info.context.loaders.coupon_template.load_many(ids)
        return [cls.of(t) if t else None for t in found]


def _coupon_status(root: CouponNode, info: Info) -> domain.CouponStatus:
    """What the member sees: EXPIRED once an available coupon's validity ends."""
    return root.coupon.status_at(info.context.now())


@strawberry.type(name="Coupon", description="A member's own coupon.")
class CouponNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.CouponStatus = strawberry.field(resolver=_coupon_status)
    valid_from: datetime
    expires_at: datetime
    claimed_at: datetime
    coupon: strawberry.Private[domain.Coupon]

    @classmethod
    def of(cls, c: domain.Coupon) -> CouponNode:
        return cls(
            id=c.id,
            valid_from=c.valid_from,
            expires_at=c.valid_until,
            claimed_at=c.claimed_at,
            coupon=c,
        )

    async def _template(self, info: Info) -> domain.CouponTemplate:
        found = await info.context.loaders.coupon_template.load(self.coupon.template_id)
        assert found is not None  # a coupon's template is never deleted
        return found

    @strawberry.field
    async def title(self, info: Info) -> str:
        return (await self._template(info)).title

    @strawberry.field
    async def template(self, info: Info) -> CouponTemplateNode:
        return CouponTemplateNode.of(await self._template(info))

    @strawberry.field(description="裂变: the link friends claim through; null if not shareable.")
    async def share_code(self, info: Info) -> str | None:
        if (await self._template(info)).fission_friends is None:
            return None
        return domain.share_code(info.context.services.share_key, self.coupon.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CouponNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(c) if c else None for c in await resolve.visible_coupons(info.context, ids)]


@strawberry.type
class CouponEdge:
    cursor: str
    node: CouponNode


@strawberry.type
class CouponConnection:
    edges: list[CouponEdge]
    page_info: relay.PageInfo


async def member_coupons(
    info: Info,
    member_id: int,
    status: domain.CouponStatus | None,
    first: int | None,
    after: str | None,
) -> CouponConnection:
    with raise_for_query(info):
        page = await resolve.member_coupons(
            info.context,
            member_id,
            status=status,
            first=first,
            after=after,
        )
    return CouponConnection(
        edges=[CouponEdge(cursor=c, node=CouponNode.of(x)) for c, x in page.items],
        page_info=page_info(page),
    )


@strawberry.type(description="One of the viewer's coupons against a cart.")
class CouponFit:
    coupon: CouponNode
    saving: Money | None = strawberry.field(description="Null when it does not apply.")
    on_delivery: bool
    reason: Inapplicable | None = strawberry.field(description="Why it does not apply.")


@strawberry.input
class CartLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input
class CartInput:
    store_id: strawberry.ID
    channel: Channel
    lines: list[CartLineInput]
    delivery_fee_fen: int = 0


async def applicable_coupons(info: Info, cart: CartInput) -> list[CouponFit]:
    with raise_for_query(info):
        request = resolve.CartRequest(
            store_id=decode_id(cart.store_id, "Store", ["cart", "storeId"]),
            channel=cart.channel,
            lines=[
                (decode_id(line.sku_id, "Sku", ["cart", "lines", str(n), "skuId"]), line.quantity)
                for n, line in enumerate(cart.lines)
            ],
            delivery_fee_fen=max(0, cart.delivery_fee_fen),
        )
        fits, misfits = await resolve.coupons_for_cart(info.context, request)
    return [
        CouponFit(
            coupon=CouponNode.of(c), saving=Money.of(s.fen), on_delivery=s.on_delivery, reason=None
        )
        for c, s in fits
    ] + [
        CouponFit(coupon=CouponNode.of(c), saving=None, on_delivery=False, reason=r)
        for c, r in misfits
    ]


async def claimable_coupons(info: Info) -> list[CouponTemplateNode]:
    return [CouponTemplateNode.of(t) for t in await resolve.claimable_templates(info.context)]


# --- mutations --------------------------------------------------------------------------


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


@strawberry.type(name="CouponIssueJob", description="Issuing a coupon to a segment, in batches.")
class CouponIssueJobNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.JobStatus
    issued: int
    skipped: int = strawberry.field(description="Members already at the per-member limit.")
    finished_at: datetime | None

    @classmethod
    def of(cls, job: domain.IssueJob) -> CouponIssueJobNode:
        return cls(
            id=job.id,
            status=job.status,
            issued=job.issued,
            skipped=job.skipped,
            finished_at=job.finished_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CouponIssueJobNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(j) if j else None for j in await resolve.issue_jobs(info.context, ids)]


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
