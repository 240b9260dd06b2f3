"""Reads of coupons: the 领券中心, a member's wallet, and which coupons fit a cart."""

from __future__ import annotations

from dataclasses import dataclass

from dinegraph.context import Context
from dinegraph.domain.catalog import Channel, in_a_cart, store_price
from dinegraph.domain.coupons import (
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    JobStatus,
    claimable_now,
    is_new_member,
    terms_of,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    MemberViewer,
    can_read_member,
    can_serve_member,
    require_catalog_editor,
)
from dinegraph.domain.pricing import (
    Cart,
    CartLine,
    Inapplicable,
    Saving,
    Shopper,
    check_line_quantity,
    rank_coupons,
)
from dinegraph.resolvers.members import viewer_member
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


async def claimable_templates(ctx: Context) -> list[CouponTemplate]:
    """Open templates with stock left that the viewer (if a member) may claim."""
    member = await viewer_member(ctx)
    now = ctx.now()
    templates = await ctx.reads.templates(active_only=True)
    return [t for t in templates if claimable_now(t, member[0] if member else None, now)]


async def member_coupons(
    ctx: Context,
    member_id: int,
    *,
    status: CouponStatus | None,
    first: int | None,
    after: str | None,
) -> Page[Coupon]:
    if not can_serve_member(ctx.viewer, member_id):
        raise DomainError(ErrorCode.FORBIDDEN)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("coupon", after)
    rows = await ctx.reads.member_coupons(
        member_id, status=status, now=ctx.now(), before_id=before, limit=size + 1
    )
    return keyset_page(rows, size=size, kind="coupon", key=lambda c: c.id, after=before)


async def visible_coupons(ctx: Context, ids: list[int]) -> list[Coupon | None]:
    found = {c.id: c for c in await ctx.reads.coupons_by_ids(ids)}
    return [
        c if (c := found.get(i)) is not None and can_read_member(ctx.viewer, c.member_id) else None
        for i in ids
    ]


@dataclass(frozen=True, slots=True)
class CartRequest:
    store_id: int
    channel: Channel
    lines: list[tuple[int, int]]  # (sku id, quantity)
    delivery_fee_fen: int


async def build_cart(ctx: Context, request: CartRequest) -> Cart:
    """A cart priced at the store, with each line's product and category for coupon scope."""
    skus = await ctx.loaders.sku.load_many([sku_id for sku_id, _ in request.lines])
    products = await ctx.loaders.product.load_many([s.product_id if s else 0 for s in skus])
    lines: list[CartLine] = []
    for n, ((sku_id, quantity), sku, product) in enumerate(
        zip(request.lines, skus, products, strict=True)
    ):
        if not in_a_cart(sku, product):
            raise DomainError(ErrorCode.NOT_FOUND, field=["cart", "lines", str(n), "skuId"])
        assert sku is not None and product is not None
        check_line_quantity(quantity, field=["cart", "lines", str(n), "quantity"])
        override = await ctx.loaders.store_price.load((request.store_id, sku_id))
        lines.append(
            CartLine(sku_id, product.id, product.category_id, store_price(sku, override), quantity)
        )
    return Cart(request.store_id, request.channel, tuple(lines), request.delivery_fee_fen)


async def coupons_for_cart(
    ctx: Context, request: CartRequest
) -> tuple[list[tuple[Coupon, Saving]], list[tuple[Coupon, Inapplicable]]]:
    """The viewer's available coupons: those that fit, biggest saving first, then the rest."""
    if not isinstance(ctx.viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    found = await viewer_member(ctx)
    if found is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    member = found[0]
    cart = await build_cart(ctx, request)
    now = ctx.now()
    available = await ctx.reads.member_coupons(
        member.id, status=CouponStatus.AVAILABLE, now=now, before_id=None, limit=200
    )
    templates = {
        t.id: t for t in await ctx.reads.templates_by_ids([c.template_id for c in available])
    }
    shopper = Shopper(member.tier, is_new_member(member, now))
    return rank_coupons(
        ((c, terms_of(templates[c.template_id], c)) for c in available), cart, shopper, now
    )


async def issue_job_total(ctx: Context, job: IssueJob) -> int:
    """The members a job has gone through and, unless it is done, those still ahead of it."""
    if job.status is JobStatus.DONE:
        return job.issued + job.skipped
    return job.issued + job.skipped + await ctx.reads.members_ahead_of(job, ctx.now())


async def issue_jobs(ctx: Context, ids: list[int]) -> list[IssueJob | None]:
    """Jobs by id, for head office only."""
    try:
        require_catalog_editor(ctx.viewer)
    except DomainError:
        return [None for _ in ids]
    found = {j.id: j for j in await ctx.reads.issue_jobs(ids)}
    return [found.get(i) for i in ids]
