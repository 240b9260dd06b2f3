"""Bargains (砍价): a member opens a bargain, friends help cut its price through the
member's share code, and the member buys at the price reached."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.bargains import Bargain, BargainStatus, bargain_expiry, bargain_steps
from dinegraph.domain.campaigns import CampaignKind, Deal, Fulfilment, check_running, choose
from dinegraph.domain.coupons import is_new_member
from dinegraph.domain.errors import DomainError, ErrorCode
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
)
from dinegraph.domain.services.orders import OrderPolicy

_rng = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class StartBargain:
    campaign_id: int
    fulfilment: Fulfilment
    now: datetime


async def start_bargain(cmd: StartBargain, *, uow: UnitOfWork, viewer: Viewer) -> Bargain:
    """Open a bargain at the store's price; every help's cut is fixed now, so the number
    of helps to the floor is known (and shown) from the start."""
    member_id = member_of(viewer)
    async with uow:
        campaign = await get_campaign(uow, cmd.campaign_id)
        check_running(campaign, CampaignKind.BARGAIN, cmd.now)
        rules = campaign.spec.bargain
        assert rules is not None
        chosen = choose(campaign, replace(cmd.fulfilment, channel=None), need_channel=False)
        await admit(uow, campaign, member_id, cmd.now)
        candidates = await uow.orders.candidates([chosen.item.sku_id], chosen.store_id)
        item = candidates.items.get((chosen.store_id, chosen.item.sku_id))
        if item is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["order", "skuId"])
        start, floor = item.unit_price_fen, chosen.item.price_fen
        if start - floor < rules.helps:  # the store sells it below the campaign's room
            raise DomainError(ErrorCode.NOT_AVAILABLE, field=["order", "storeId"])
        bargain = await uow.campaigns.add_bargain(
            Bargain(
                id=0,
                campaign_id=campaign.id,
                member_id=member_id,
                store_id=chosen.store_id,
                sku_id=chosen.item.sku_id,
                start_price_fen=start,
                floor_price_fen=floor,
                steps=bargain_steps(start - floor, rules.helps, _rng),
                helps_done=0,
                order_id=None,
                expires_at=bargain_expiry(campaign, cmd.now),
                created_at=cmd.now,
                version=1,
            )
        )
        await uow.commit()
    return bargain


@dataclass(frozen=True, slots=True)
class HelpBargain:
    share_code: str
    now: datetime
    policy: OrderPolicy
    codes: ShareCodes


@dataclass(frozen=True, slots=True)
class Helped:
    bargain: Bargain
    cut_fen: int


async def help_bargain(cmd: HelpBargain, *, uow: UnitOfWork, viewer: Viewer) -> Helped:
    """A friend's help cuts the price by the next fixed step. Each member helps a bargain
    once, and helps at most the campaign's daily cap across bargains; nobody helps their
    own."""
    helper_id = member_of(viewer)
    invite = cmd.codes.read(cmd.share_code).check(InviteKind.BARGAIN, cmd.now)
    async with uow:
        bargain = await uow.campaigns.get_bargain(invite.target_id)
        if bargain is None or bargain.campaign_id != invite.campaign_id:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        if bargain.member_id == helper_id:
            raise DomainError(ErrorCode.OWN_BARGAIN, field=["shareCode"])
        if await uow.campaigns.has_helped(bargain.id, helper_id):
            raise DomainError(ErrorCode.ALREADY_HELPED, field=["shareCode"])
        if bargain.status(cmd.now) is not BargainStatus.OPEN:
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["shareCode"])
        campaign = await get_campaign(uow, bargain.campaign_id)
        rules = campaign.spec.bargain
        assert rules is not None
        helper = await uow.members.get(helper_id)
        if helper is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        day = cmd.now.astimezone(cmd.policy.time_zone).date()
        if not await uow.campaigns.count_help(helper_id, day, rules.daily_help_cap):
            raise DomainError(
                ErrorCode.HELP_LIMIT_REACHED, field=["shareCode"], limit=rules.daily_help_cap
            )
        cut = await uow.campaigns.cut(bargain.id, cmd.now)
        if cut is None:  # completed, bought or expired since it was read
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["shareCode"])
        step_no = cut.helps_done - 1
        cut_fen = cut.steps[step_no]
        if not await uow.campaigns.record_help(bargain.id, helper_id, step_no, cut_fen, cmd.now):
            raise DomainError(ErrorCode.ALREADY_HELPED, field=["shareCode"])
        await record_invitation(uow, invite, helper_id, is_new_member(helper, cmd.now))
        await uow.commit()
    return Helped(cut, cut_fen)


@dataclass(frozen=True, slots=True)
class BuyBargain:
    bargain_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class BargainOrder:
    bargain: Bargain
    order: Order


async def buy_bargain(cmd: BuyBargain, *, uow: UnitOfWork, viewer: Viewer) -> BargainOrder:
    """The bargain's owner buys at the price reached so far, or at the floor once every
    help is in; a bargain is bought once (again only if that order went unpaid)."""
    member_id = member_of(viewer)
    async with uow:
        bargain = await uow.campaigns.get_bargain(cmd.bargain_id)
        if bargain is None or bargain.member_id != member_id:
            raise DomainError(ErrorCode.NOT_FOUND, field=["bargainId"])
        if bargain.status(cmd.now) in (BargainStatus.PURCHASED, BargainStatus.EXPIRED):
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["bargainId"])
        campaign = await get_campaign(uow, bargain.campaign_id)
        check_running(campaign, CampaignKind.BARGAIN, cmd.now)
        wanted = cmd.options.fulfilment
        chosen = choose(
            campaign,
            Fulfilment(sku_id=bargain.sku_id, store_id=bargain.store_id, channel=wanted.channel),
        )
        deal = Deal(campaign.id, bargain.sku_id, bargain.price_fen, bargain_id=bargain.id)
        sale = Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await place(uow, sale)
        if not await uow.campaigns.purchase(bargain.id, order.id, cmd.now):
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["bargainId"])
        await uow.commit()
    return BargainOrder(replace(bargain, order_id=order.id, version=bargain.version + 1), order)
