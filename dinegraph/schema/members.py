"""GraphQL types and mutations of members: sign-in, profile, addresses, points, check-in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import members as domain
from dinegraph.domain.coupons import CouponStatus
from dinegraph.domain.identity import Viewer as ViewerOf
from dinegraph.domain.identity import can_read_member
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.reads import PointsRow
from dinegraph.domain.tiers import BENEFITS, Tier, tier_progress
from dinegraph.resolvers import members as resolve
from dinegraph.resolvers.ids import encode_id, node_row_ids
from dinegraph.schema.common import GeoPoint, page_info
from dinegraph.schema.coupons import CouponConnection, member_coupons
from dinegraph.schema.errors import raise_for_query
from dinegraph.schema.orders import OrderConnection, member_orders
from dinegraph.schema.staff import StaffAccount, viewer_staff

Info = strawberry.Info[Context, None]

strawberry.enum(Tier, name="MemberTier", description="NORMAL, SILVER, GOLD, BLACK_DIAMOND.")
strawberry.enum(domain.PointsKind, name="PointsKind")


@strawberry.type(description="What a tier is worth.")
class TierBenefits:
    discount_percent: int
    free_delivery: bool
    birthday_coupon: bool
    points_multiplier: float


@strawberry.type
class TierProgress:
    current: Tier
    next: Tier | None
    spend_to_next_fen: int


@strawberry.type
class Address:
    id: strawberry.ID
    contact_name: str
    contact_phone: str
    address: str
    location: GeoPoint
    is_default: bool

    @classmethod
    def of(cls, address: domain.Address) -> Address:
        return cls(
            id=strawberry.ID(encode_id("Address", address.id)),
            contact_name=address.contact_name,
            contact_phone=address.contact_phone,
            address=address.address,
            location=GeoPoint(lat=address.location.lat, lng=address.location.lng),
            is_default=address.is_default,
        )


@strawberry.type(description="One change of a member's points.")
class PointsEntry:
    kind: domain.PointsKind
    reference: str
    delta: int
    balance_after: int
    expires_at: datetime | None
    created_at: datetime


@strawberry.type
class PointsEdge:
    cursor: str
    node: PointsEntry


@strawberry.type
class PointsConnection:
    edges: list[PointsEdge]
    page_info: relay.PageInfo


def _points_entry(row: PointsRow) -> PointsEntry:
    return PointsEntry(
        kind=domain.PointsKind(row.kind),
        reference=row.reference,
        delta=row.delta,
        balance_after=row.balance_after,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )


@strawberry.type(name="Member", description="A registered customer of the chain.")
class MemberNode(relay.Node):
    id: relay.NodeID[int]
    nickname: str
    phone: str | None = strawberry.field(description="Masked, e.g. 138****5678.")
    birthday: date | None = strawberry.field(
        description="Null for a store manager (as are addresses and the points ledger)."
    )
    tier: Tier
    points: int = strawberry.field(description="The balance: the sum of the points ledger.")
    member: strawberry.Private[domain.Member]

    @classmethod
    def of(cls, member: domain.Member, points: int) -> MemberNode:
        return cls(
            id=member.id,
            nickname=member.nickname,
            phone=domain.mask_phone(member.phone),
            birthday=member.birthday,
            tier=member.tier,
            points=points,
            member=member,
        )

    @classmethod
    def served(cls, member: domain.Member, points: int, viewer: ViewerOf) -> MemberNode:
        """The member as ``viewer`` may see them: a store manager serving them at the
        counter is not shown the birthday (nor addresses nor points history)."""
        node = cls.of(member, points)
        if not can_read_member(viewer, member.id):
            node.birthday = None
        return node

    @strawberry.field
    def benefits(self) -> TierBenefits:
        b = BENEFITS[self.tier]
        return TierBenefits(
            discount_percent=b.discount_percent,
            free_delivery=b.free_delivery,
            birthday_coupon=b.birthday_coupon,
            points_multiplier=b.points_multiplier,
        )

    @strawberry.field(description="Spend of the trailing 12 months against the next tier.")
    async def tier_progress(self, info: Info) -> TierProgress:
        ctx = info.context
        spend = await resolve.tier_spend(ctx, self.member.id)
        progress = tier_progress(spend, ctx.settings.tier_thresholds)
        return TierProgress(
            current=progress.current,
            next=progress.next,
            spend_to_next_fen=progress.spend_to_next_fen,
        )

    @strawberry.field
    async def addresses(self, info: Info) -> list[Address]:
        return [Address.of(a) for a in await resolve.addresses(info.context, self.member.id)]

    @strawberry.field(description="The member's coupons, newest first.")
    async def coupons(
        self,
        info: Info,
        status: CouponStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> CouponConnection:
        return await member_coupons(info, self.member.id, status, first, after)

    @strawberry.field(description="The member's orders, newest first.")
    async def orders(
        self,
        info: Info,
        status: list[OrderStatus] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> OrderConnection:
        return await member_orders(info, self.member.id, status, first, after)

    @strawberry.field(description="Newest first (not for store managers).")
    async def points_ledger(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> PointsConnection:
        with raise_for_query(info):
            page = await resolve.points_page(info.context, self.member.id, first=first, after=after)
        return PointsConnection(
            edges=[PointsEdge(cursor=c, node=_points_entry(r)) for c, r in page.items],
            page_info=page_info(page),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[MemberNode | None]:
        ids = node_row_ids(node_ids)
        found = await resolve.members(info.context, ids)
        return [cls.of(*f) if f else None for f in found]


async def member_by_phone(info: Info, phone: str) -> MemberNode | None:
    with raise_for_query(info):
        found = await resolve.member_by_phone(info.context, phone)
    return MemberNode.served(*found, info.context.viewer) if found else None


@strawberry.type(description="Who is asking.")
class Viewer:
    @strawberry.field
    async def member(self, info: Info) -> MemberNode | None:
        found = await resolve.viewer_member(info.context)
        return MemberNode.of(*found) if found else None

    @strawberry.field(description="The signed-in staff account (see schema/staff.py).")
    async def staff(self, info: Info) -> StaffAccount | None:
        return await viewer_staff(info)
