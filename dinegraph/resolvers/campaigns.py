"""Reads of campaigns, groups and bargains, their share codes and the group feed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from dinegraph.context import Context
from dinegraph.domain.bargains import Bargain, may_share_bargain, sees_bargain_order
from dinegraph.domain.campaigns import (
    Campaign,
    CampaignKind,
    CampaignState,
    running_now,
    visible_to,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.group_buys import (
    GroupBuy,
    GroupBuyChanged,
    GroupSeat,
    SeatStatus,
    group_sharer,
)
from dinegraph.domain.invites import Invite, InviteKind
from dinegraph.domain.orders import Order
from dinegraph.events.codec import group_topic
from dinegraph.resolvers.subscriptions import latest_of


async def running(ctx: Context, kind: CampaignKind | None, store_id: int | None) -> list[Campaign]:
    """What the mini-program shows: campaigns selling now, at a store if one is given.

    The answer holds until one of them ends or another starts (at that store, if given:
    another store's campaigns do not age it)."""
    now = ctx.now()
    planned = await ctx.reads.campaigns_planned_over(now, kind)
    for campaign in planned:
        if store_id is None or store_id in campaign.spec.store_ids:
            ctx.changes_at(campaign.next_change(now))
    ctx.changes_at(await ctx.reads.next_campaign_start(now, kind, store_id))
    return running_now(planned, now, store_id)


async def visible_campaigns(ctx: Context, ids: Sequence[int]) -> list[Campaign | None]:
    """Campaigns by id; one not started yet is for head office's eyes only."""
    by_id = {c.id: c for c in await ctx.reads.campaigns_by_ids(list(ids))}
    now = ctx.now()
    for campaign in by_id.values():
        ctx.changes_at(campaign.next_change(now))  # its state and who may see it
    return [
        c if (c := by_id.get(i)) is not None and visible_to(c, ctx.viewer, now) else None
        for i in ids
    ]


async def quota_left(ctx: Context, campaign: Campaign, store_id: int, sku_id: int) -> int | None:
    if campaign.state(ctx.now()) is CampaignState.ENDED:
        return 0
    return await ctx.reads.quota_left(campaign.id, store_id, sku_id)


async def groups(ctx: Context, ids: Sequence[int]) -> list[GroupBuy | None]:
    """Groups are public: a share page shows seats and first names to anyone it reaches."""
    by_id = {g.id: g for g in await ctx.reads.groups_by_ids(list(ids))}
    return [by_id.get(i) for i in ids]


async def seats(ctx: Context, group_id: int) -> list[GroupSeat]:
    """The group's members, in joining order (seats given up are left out)."""
    return [s for s in await ctx.reads.group_seats(group_id) if s.status is not SeatStatus.RELEASED]


async def bargains(ctx: Context, ids: Sequence[int]) -> list[Bargain | None]:
    by_id = {b.id: b for b in await ctx.reads.bargains_by_ids(list(ids))}
    return [by_id.get(i) for i in ids]


def group_share_code(ctx: Context, group: GroupBuy, members: Sequence[GroupSeat]) -> str | None:
    """The viewer's own link to this group (a member's, while the group is open)."""
    sharer = group_sharer(ctx.viewer, group, members)
    if sharer is None:
        return None
    return ctx.services.share_codes.sign(
        Invite(InviteKind.GROUP, group.campaign_id, group.id, sharer, group.expires_at)
    )


def bargain_share_code(ctx: Context, bargain: Bargain) -> str | None:
    """The owner's link for friends to help, while help can still cut the price."""
    if not may_share_bargain(ctx.viewer, bargain, ctx.now()):
        return None
    return ctx.services.share_codes.sign(
        Invite(
            InviteKind.BARGAIN,
            bargain.campaign_id,
            bargain.id,
            bargain.member_id,
            bargain.expires_at,
        )
    )


async def bargain_order(ctx: Context, bargain: Bargain) -> Order | None:
    """The bargain's purchase, for the member who bought it."""
    if bargain.order_id is None:
        return None
    found = await ctx.loaders.order.load(bargain.order_id)
    if found is None or not sees_bargain_order(ctx.viewer, found.member_id):
        return None
    return found


async def inviter_name(ctx: Context, invite: Invite) -> str | None:
    """The nickname of the member who shared ``invite``."""
    return await ctx.reads.member_name(invite.inviter_id)


def read_invite(ctx: Context, code: str) -> Invite:
    """What a share code points at; a tampered or expired code is refused with its code."""
    return ctx.services.share_codes.read(code).check(None, ctx.now())


async def group_feed(ctx: Context, group_id: int) -> AsyncIterator[GroupBuy]:
    """A group as it fills: its state now, then every change (seats, payment, outcome)."""

    async def load() -> GroupBuy | None:
        (group,) = await groups(ctx, [group_id])
        return group

    missing = DomainError(ErrorCode.NOT_FOUND, field=["groupId"])
    async for group in latest_of(ctx, group_topic(group_id), GroupBuyChanged, load, missing):
        yield group
