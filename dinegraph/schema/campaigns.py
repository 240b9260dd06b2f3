"""GraphQL types and queries of campaigns: group-buys (拼团), bargains (砍价) and flash sales
(秒杀). Their mutations are in campaign_mutations.py, the group feed in
campaign_subscriptions.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import bargains, group_buys, invites
from dinegraph.domain import campaigns as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.services import campaigns as service
from dinegraph.resolvers import campaigns as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.catalog import SkuNode, StoreNode, sku_at
from dinegraph.schema.common import Money
from dinegraph.schema.errors import raise_for_query
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]

strawberry.enum(domain.CampaignKind, name="CampaignKind")
strawberry.enum(domain.CampaignState, name="CampaignState")
strawberry.enum(group_buys.GroupStatus, name="GroupBuyStatus")
strawberry.enum(bargains.BargainStatus, name="BargainStatus")


def _global(type_name: str, raw_id: int) -> strawberry.ID:
    return strawberry.ID(str(relay.GlobalID(type_name, str(raw_id))))


def _masked(nickname: str) -> str:
    """A first name for the share page: the first character, the rest hidden."""
    return (nickname[:1] + "**") if nickname else "**"


# --- campaigns ------------------------------------------------------------------------


@strawberry.type(description="A SKU on offer, at its campaign price.")
class CampaignItem:
    price: Money = strawberry.field(
        description="The group or flash price; a bargain's floor price."
    )
    sku_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.sku_id, None)


@strawberry.type(name="Campaign", description="A group-buy, bargain or flash-sale campaign.")
class CampaignNode(relay.Node):
    id: relay.NodeID[int]
    kind: domain.CampaignKind
    name: str
    starts_at: datetime
    ends_at: datetime = strawberry.field(description="Earlier than planned if ended early.")
    channels: list[Channel]
    quota_per_store: int
    per_member_limit: int = strawberry.field(
        description="Orders (flash sale), groups (group-buy) or bargains a member may take."
    )
    new_members_only: bool
    group_size: int | None
    group_hours: int | None
    bargain_helps: int | None = strawberry.field(
        description="Friends' helps from the start price to the floor: fixed and shown."
    )
    bargain_hours: int | None
    daily_help_cap: int | None
    campaign: strawberry.Private[domain.Campaign]

    @classmethod
    def of(cls, c: domain.Campaign) -> CampaignNode:
        spec = c.spec
        return cls(
            id=c.id,
            kind=spec.kind,
            name=spec.name,
            starts_at=spec.starts_at,
            ends_at=c.ends_at,
            channels=sorted(spec.channels),
            quota_per_store=spec.quota_per_store,
            per_member_limit=spec.per_member_limit,
            new_members_only=spec.new_members_only,
            group_size=spec.group.size if spec.group else None,
            group_hours=spec.group.hours if spec.group else None,
            bargain_helps=spec.bargain.helps if spec.bargain else None,
            bargain_hours=spec.bargain.hours if spec.bargain else None,
            daily_help_cap=spec.bargain.daily_help_cap if spec.bargain else None,
            campaign=c,
        )

    @strawberry.field
    def state(self, info: Info) -> domain.CampaignState:
        return self.campaign.state(info.context.now())

    @strawberry.field
    def items(self) -> list[CampaignItem]:
        return [
            CampaignItem(price=Money.of(i.price_fen), sku_id=i.sku_id)
            for i in self.campaign.spec.items
        ]

    @strawberry.field
    async def stores(self, info: Info) -> list[StoreNode]:
        found = await info.context.loaders.store.load_many(list(self.campaign.spec.store_ids))
        return [StoreNode.of(s) for s in found if s is not None]

    @strawberry.field(description="Units left at a store (of the only SKU unless one is given).")
    async def quota_left(
        self, info: Info, store_id: strawberry.ID, sku_id: strawberry.ID | None = None
    ) -> int | None:
        with raise_for_query(info):
            store = decode_id(store_id, "Store", ["storeId"])
            sku = (
                decode_id(sku_id, "Sku", ["skuId"])
                if sku_id
                else self.campaign.spec.items[0].sku_id
            )
        return await resolve.quota_left(info.context, self.campaign, store, sku)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CampaignNode | None]:
        ids = node_row_ids(node_ids)
        found = await resolve.visible_campaigns(info.context, ids)
        return [cls.of(c) if c else None for c in found]


# --- group-buys -----------------------------------------------------------------------


@strawberry.type(description="A seat in a group: first names only, for the share page.")
class GroupBuyMember:
    nickname: str
    is_leader: bool
    paid: bool
    joined_at: datetime


@strawberry.type(name="GroupBuy", description="A group-buy (拼团) filling up.")
class GroupBuyNode(relay.Node):
    id: relay.NodeID[int]
    status: group_buys.GroupStatus
    size: int
    seats_taken: int
    seats_left: int
    seats_paid: int
    expires_at: datetime
    version: int
    group: strawberry.Private[group_buys.GroupBuy]
    seated: strawberry.Private[list[group_buys.GroupSeat] | None] = None

    async def _seats(self, info: Info) -> list[group_buys.GroupSeat]:
        """The members, read once however many fields of this group ask."""
        if self.seated is None:
            self.seated = await resolve.seats(info.context, self.group.id)
        return self.seated

    @classmethod
    def of(cls, g: group_buys.GroupBuy) -> GroupBuyNode:
        return cls(
            id=g.id,
            status=g.status,
            size=g.size,
            seats_taken=g.seats_taken,
            seats_left=g.seats_left,
            seats_paid=g.seats_paid,
            expires_at=g.expires_at,
            version=g.version,
            group=g,
        )

    @strawberry.field
    async def members(self, info: Info) -> list[GroupBuyMember]:
        seats = await self._seats(info)
        return [
            GroupBuyMember(
                nickname=_masked(s.nickname),
                is_leader=s.member_id == self.group.leader_id,
                paid=s.status is group_buys.SeatStatus.PAID,
                joined_at=s.joined_at,
            )
            for s in seats
        ]

    @strawberry.field(
        description="The viewer's own link for friends to join: for members of an open group."
    )
    async def share_code(self, info: Info) -> str | None:
        return resolve.group_share_code(info.context, self.group, await self._seats(info))

    @strawberry.field
    async def campaign(self, info: Info) -> CampaignNode | None:
        (found,) = await resolve.visible_campaigns(info.context, [self.group.campaign_id])
        return CampaignNode.of(found) if found else None

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.group.store_id)
        return StoreNode.of(found) if found else None

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.group.sku_id, self.group.store_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[GroupBuyNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(g) if g else None for g in await resolve.groups(info.context, ids)]


# --- bargains -------------------------------------------------------------------------


@strawberry.type(name="Bargain", description="A bargain (砍价): friends' helps cut the price.")
class BargainNode(relay.Node):
    id: relay.NodeID[int]
    start_price: Money
    floor_price: Money
    price: Money = strawberry.field(description="What buying now costs.")
    helps_needed: int = strawberry.field(description="From the start price to the floor.")
    helps_done: int
    expires_at: datetime
    version: int
    bargain: strawberry.Private[bargains.Bargain]

    @classmethod
    def of(cls, b: bargains.Bargain) -> BargainNode:
        return cls(
            id=b.id,
            start_price=Money.of(b.start_price_fen),
            floor_price=Money.of(b.floor_price_fen),
            price=Money.of(b.price_fen),
            helps_needed=b.helps_needed,
            helps_done=b.helps_done,
            expires_at=b.expires_at,
            version=b.version,
            bargain=b,
        )

    @strawberry.field
    def status(self, info: Info) -> bargains.BargainStatus:
        return self.bargain.status(info.context.now())

    @strawberry.field
    def helps_left(self) -> int:
        return self.bargain.helps_needed - self.bargain.helps_done

    @strawberry.field(description="The owner's link for friends to help, while it is open.")
    def share_code(self, info: Info) -> str | None:
        return resolve.bargain_share_code(info.context, self.bargain)

    @strawberry.field(description="The purchase, for the bargain's owner.")
    async def order(self, info: Info) -> OrderNode | None:
        found = await resolve.bargain_order(info.context, self.bargain)
        return OrderNode.of(found) if found else None

    @strawberry.field
    async def campaign(self, info: Info) -> CampaignNode | None:
        (found,) = await resolve.visible_campaigns(info.context, [self.bargain.campaign_id])
        return CampaignNode.of(found) if found else None

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.bargain.store_id)
        return StoreNode.of(found) if found else None

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.bargain.sku_id, self.bargain.store_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[BargainNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(b) if b else None for b in await resolve.bargains(info.context, ids)]


# --- share codes and reports ----------------------------------------------------------


@strawberry.type(description="What a share link points at, for the page it opens.")
class ShareInvite:
    kind: domain.CampaignKind
    expires_at: datetime
    inviter_nickname: str
    group: GroupBuyNode | None
    bargain: BargainNode | None
    campaign: CampaignNode | None


@strawberry.type(description="How a campaign went.")
class CampaignReport:
    participants: int = strawberry.field(
        description="Members who ordered, opened or joined a group, or started or helped."
    )
    groups_formed: int
    groups_succeeded: int
    groups_failed: int
    bargains_started: int
    bargain_helps: int
    orders: int = strawberry.field(description="Campaign orders paid.")
    gmv: Money = strawberry.field(description="What those orders took, less refunds.")
    invitations: int = strawberry.field(description="Joins and helps through a share code.")
    new_members: int = strawberry.field(
        description="Members new to the chain who came through a share code."
    )


async def campaigns(
    info: Info, kind: domain.CampaignKind | None = None, store_id: strawberry.ID | None = None
) -> list[CampaignNode]:
    with raise_for_query(info):
        store = decode_id(store_id, "Store", ["storeId"]) if store_id else None
    return [CampaignNode.of(c) for c in await resolve.running(info.context, kind, store)]


async def group_buy(info: Info, id: strawberry.ID) -> GroupBuyNode | None:
    with raise_for_query(info):
        group_id = decode_id(id, "GroupBuy", ["id"])
    (found,) = await resolve.groups(info.context, [group_id])
    return GroupBuyNode.of(found) if found else None


async def bargain(info: Info, id: strawberry.ID) -> BargainNode | None:
    with raise_for_query(info):
        bargain_id = decode_id(id, "Bargain", ["id"])
    (found,) = await resolve.bargains(info.context, [bargain_id])
    return BargainNode.of(found) if found else None


async def share_invite(info: Info, share_code: str) -> ShareInvite:
    ctx = info.context
    with raise_for_query(info):
        invite = resolve.read_invite(ctx, share_code)
    group = bargain_found = None
    if invite.kind is invites.InviteKind.GROUP:
        (group,) = await resolve.groups(ctx, [invite.target_id])
        kind = domain.CampaignKind.GROUP_BUY
    else:
        (bargain_found,) = await resolve.bargains(ctx, [invite.target_id])
        kind = domain.CampaignKind.BARGAIN
    (campaign,) = await resolve.visible_campaigns(ctx, [invite.campaign_id])
    inviter = await resolve.inviter_name(ctx, invite)
    return ShareInvite(
        kind=kind,
        expires_at=invite.expires_at,
        inviter_nickname=_masked(inviter or ""),
        group=GroupBuyNode.of(group) if group else None,
        bargain=BargainNode.of(bargain_found) if bargain_found else None,
        campaign=CampaignNode.of(campaign) if campaign else None,
    )


async def campaign_report(info: Info, campaign_id: strawberry.ID) -> CampaignReport:
    ctx = info.context
    with raise_for_query(info):
        found = await service.campaign_report(
            decode_id(campaign_id, "Campaign", ["campaignId"]), uow=ctx.uow(), viewer=ctx.viewer
        )
    return CampaignReport(
        participants=found.participants,
        groups_formed=found.groups_formed,
        groups_succeeded=found.groups_succeeded,
        groups_failed=found.groups_failed,
        bargains_started=found.bargains_started,
        bargain_helps=found.bargains_helped,
        orders=found.orders,
        gmv=Money.of(found.gmv_fen),
        invitations=found.invitations,
        new_members=found.new_members,
    )
