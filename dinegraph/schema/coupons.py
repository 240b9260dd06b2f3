"""GraphQL types and mutations of coupons: templates, the wallet, claiming, cart fit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import coupons as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.pricing import CouponKind, Inapplicable
from dinegraph.domain.tiers import Tier
from dinegraph.resolvers import coupons as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.common import Money, page_info
from dinegraph.schema.errors import raise_for_query

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


@strawberry.type(name="CouponIssueJob", description="Issuing a coupon to a segment, in batches.")
class CouponIssueJobNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.JobStatus
    issued: int
    skipped: int = strawberry.field(description="Members already at the per-member limit.")
    finished_at: datetime | None
    job: strawberry.Private[domain.IssueJob]

    @strawberry.field(
        description="Members of the segment: those gone through, and those still ahead "
        "(counted when asked, while the job is not DONE)."
    )
    async def total(self, info: Info) -> int:
        return await resolve.issue_job_total(info.context, self.job)

    @classmethod
    def of(cls, job: domain.IssueJob) -> CouponIssueJobNode:
        return cls(
            job=job,
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
