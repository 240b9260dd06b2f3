"""Group-buys (拼团): a leader opens a group with the first order, and friends take its
seats through the leader's share code, each with an order at the group price."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.campaigns import CampaignKind, Deal, Fulfilment, check_running, choose
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.group_buys import GroupBuy, GroupStatus, group_expiry
from dinegraph.domain.identity import Viewer
from dinegraph.domain.invites import InviteKind
from dinegraph.domain.orders import Order
from dinegraph.domain.ports import ShareCodes, UnitOfWork
from dinegraph.domain.services.campaign_orders import (
    OrderOptions,
    Sale,
    admit,
    get_campaign,
    member_of,
    place,
    record_invitation,
    refuse_sold_out,
)
from dinegraph.domain.services.orders import OrderPolicy, group_changed


@dataclass(frozen=True, slots=True)
class StartGroupBuy:
    campaign_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class GroupOrder:
    group: GroupBuy
    order: Order


async def start_group_buy(cmd: StartGroupBuy, *, uow: UnitOfWork, viewer: Viewer) -> GroupOrder:
    """Open a group with the viewer as its leader, and place the leader's order at the
    group price; friends join through the leader's share code."""
    member_id = member_of(viewer)
    async with uow:
        campaign = await get_campaign(uow, cmd.campaign_id)
        check_running(campaign, CampaignKind.GROUP_BUY, cmd.now)
        assert campaign.spec.group is not None
        chosen = choose(campaign, cmd.options.fulfilment)
        await refuse_sold_out(uow, uow.board, campaign, chosen)
        await admit(uow, campaign, member_id, cmd.now)
        group = await uow.campaigns.add_group(
            campaign_id=campaign.id,
            leader_id=member_id,
            store_id=chosen.store_id,
            sku_id=chosen.item.sku_id,
            size=campaign.spec.group.size,
            expires_at=group_expiry(campaign, cmd.now),
            at=cmd.now,
        )
        deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen, group_id=group.id)
        sale = Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await place(uow, sale)
        await uow.campaigns.add_seat(group.id, member_id, order.id, cmd.now)
        uow.record(group_changed(group))
        await uow.commit()
    return GroupOrder(group, order)


@dataclass(frozen=True, slots=True)
class JoinGroupBuy:
    share_code: str
    options: OrderOptions
    now: datetime
    policy: OrderPolicy
    codes: ShareCodes


async def join_group_buy(cmd: JoinGroupBuy, *, uow: UnitOfWork, viewer: Viewer) -> GroupOrder:
    """Take a seat in a friend's group and place the joiner's order at the group price.

    The seat is a conditional update of the group (open, not expired, not full), so the
    last seats go to exactly as many joiners as there are; the (group, member) key keeps
    anyone from joining twice. The seat is held until the order's payment deadline.
    """
    member_id = member_of(viewer)
    invite = cmd.codes.read(cmd.share_code).check(InviteKind.GROUP, cmd.now)
    async with uow:
        group = await uow.campaigns.get_group(invite.target_id)
        if group is None or group.campaign_id != invite.campaign_id:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        campaign = await get_campaign(uow, group.campaign_id)
        check_running(campaign, CampaignKind.GROUP_BUY, cmd.now)
        if await uow.campaigns.seat(group.id, member_id) is not None:
            raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"])
        _check_open(group, cmd.now)
        wanted = cmd.options.fulfilment
        chosen = choose(
            campaign,
            Fulfilment(
                sku_id=group.sku_id,
                store_id=wanted.store_id or group.store_id,
                channel=wanted.channel,
            ),
        )
        await refuse_sold_out(uow, uow.board, campaign, chosen)
        try:
            new = await admit(uow, campaign, member_id, cmd.now)
        except DomainError as error:
            # The entry was waiting on this member's own join of this group, committed
            # meanwhile (PostgreSQL): that join is the reason, not some other entry.
            if error.code is ErrorCode.CAMPAIGN_LIMIT_REACHED and (
                await uow.campaigns.seat(group.id, member_id) is not None
            ):
                raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"]) from error
            raise
        seated = await uow.campaigns.take_seat(group.id, cmd.now)
        if seated is None:
            current = await uow.campaigns.get_group(group.id)
            assert current is not None
            _check_open(current, cmd.now)
            raise DomainError(ErrorCode.GROUP_FULL, field=["shareCode"])  # pragma: no cover
        deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen, group_id=group.id)
        sale = Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await place(uow, sale)
        if not await uow.campaigns.add_seat(group.id, member_id, order.id, cmd.now):
            raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"])
        await record_invitation(uow, invite, member_id, new)
        uow.record(group_changed(seated))
        await uow.commit()
    return GroupOrder(seated, order)


def _check_open(group: GroupBuy, now: datetime) -> None:
    if group.status is not GroupStatus.OPEN or now >= group.expires_at:
        raise DomainError(ErrorCode.GROUP_CLOSED, field=["shareCode"])
    if group.seats_left <= 0:
        raise DomainError(ErrorCode.GROUP_FULL, field=["shareCode"])
