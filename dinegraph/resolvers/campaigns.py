"""Reads of campaigns, groups and bargains, their share codes and the group feed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from dinegraph.context import Context
from dinegraph.domain.campaigns import (
    Bargain,
    BargainStatus,
    Campaign,
    CampaignKind,
    CampaignState,
    GroupBuy,
    GroupBuyChanged,
    GroupSeat,
    GroupStatus,
    Invite,
    InviteKind,
    SeatStatus,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, StaffRole, StaffViewer
from dinegraph.events.codec import group_topic
from dinegraph.resolvers.subscriptions import latest_of


def _edits_campaigns(ctx: Context) -> bool:
    viewer = ctx.viewer
    return isinstance(viewer, StaffViewer) and viewer.role in (
        StaffRole.HQ_ADMIN,
        StaffRole.OPERATOR,
    )


async def running(ctx: Context, kind: CampaignKind | None, store_id: int | None) -> list[Campaign]:
    """What the mini-program shows: campaigns selling now, at a store if one is given."""
    found = await ctx.reads.running_campaigns(ctx.now(), kind.value if kind else None)
    if store_id is None:
        return found
    return [c for c in found if store_id in c.spec.store_ids]


async def visible_campaigns(ctx: Context, ids: Sequence[int]) -> list[Campaign | None]:
    """Campaigns by id; one not started yet is for head office's eyes only."""
    by_id = {c.id: c for c in await ctx.reads.campaigns_by_ids(list(ids))}
    now, editor = ctx.now(), _edits_campaigns(ctx)
    return [
        c
        if (c := by_id.get(i)) is not None
        and (editor or c.state(now) is not CampaignState.SCHEDULED)
        else None
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
    viewer = ctx.viewer
    if not isinstance(viewer, MemberViewer) or group.status is not GroupStatus.OPEN:
        return None
    if not any(s.member_id == viewer.member_id for s in members):
        return None
    return ctx.services.share_codes.sign(
        Invite(InviteKind.GROUP, group.campaign_id, group.id, viewer.member_id, group.expires_at)
    )


def bargain_share_code(ctx: Context, bargain: Bargain) -> str | None:
    """The owner's link for friends to help, while help can still cut the price."""
    viewer = ctx.viewer
    if not isinstance(viewer, MemberViewer) or viewer.member_id != bargain.member_id:
        return None
    if bargain.status(ctx.now()) is not BargainStatus.OPEN:
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
