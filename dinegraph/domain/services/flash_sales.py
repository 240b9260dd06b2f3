"""Flash sales (秒杀): one unit at the flash price, within the member's limit, while the
quota lasts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.campaigns import Campaign, CampaignKind, Chosen, Deal, check_running, choose
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer
from dinegraph.domain.orders import Order, clean_idempotency_key
from dinegraph.domain.ports import Repositories, UnitOfWork
from dinegraph.domain.services.campaign_orders import (
    OrderOptions,
    Sale,
    admit_member,
    get_campaign,
    member_of,
    place,
    quota_of,
    refuse_sold_out,
)
from dinegraph.domain.services.orders import OrderPolicy
from dinegraph.domain.supplies import GoneWhileQueued, KeptCampaign


@dataclass(frozen=True, slots=True)
class BuyFlashSale:
    campaign_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


async def buy_flash_sale(cmd: BuyFlashSale, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """One unit at the flash price, within the member's limit, while the quota lasts."""
    member_id = member_of(viewer)
    kept = uow.board.campaign(cmd.campaign_id)
    if kept is not None:
        campaign = kept.campaign
    else:
        async with uow.reading() as reads:
            campaign = await get_campaign(reads, cmd.campaign_id)
    check_running(campaign, CampaignKind.FLASH_SALE, cmd.now)
    chosen = choose(campaign, cmd.options.fulfilment)
    first = await _refused_early(uow, kept, campaign, chosen, member_id, cmd.options)
    if first is not None:
        return first
    deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen)
    while True:
        try:
            return await _buy(uow, cmd, campaign, chosen, deal, member_id)
        except GoneWhileQueued:
            # Gone while this buyer queued for the lock: refused as the board refuses (or,
            # given back meanwhile, queued again).
            kept = uow.board.campaign(cmd.campaign_id)
            first = await _refused_early(uow, kept, campaign, chosen, member_id, cmd.options)
            if first is not None:
                return first


async def _buy(
    uow: UnitOfWork,
    cmd: BuyFlashSale,
    campaign: Campaign,
    chosen: Chosen,
    deal: Deal,
    member_id: int,
) -> Order:
    async with uow.unless_gone(quota_of(campaign, chosen)):
        first = await _replayed(uow, member_id, cmd.options, campaign.id)
        if first is not None:
            return first
        # Again under the lock: buyers who queued for it while units were left are
        # refused in one statement once they are gone.
        await refuse_sold_out(uow, uow.board, campaign, chosen)
        buyer = await admit_member(uow, campaign, member_id, cmd.now)
        sale = Sale(
            campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy, buyer, True
        )
        order = await place(uow, sale)
        await uow.commit()
    return order


async def _refused_early(
    uow: UnitOfWork,
    kept: KeptCampaign | None,
    campaign: Campaign,
    chosen: Chosen,
    member_id: int,
    options: OrderOptions,
) -> Order | None:
    """Before the write: once the quota is known gone, a retry gets the order its key
    placed and every other buyer ``SOLD_OUT``, without a write transaction.

    Known from this process's board, or else read by the write under its lock. Where
    writers queue for one lock (SQLite) they leave the queue as soon as the board learns it
    (``unless_gone``), so those already queued are refused together, not one after another.
    The first refusal keeps the campaign and its orders' keys on the board (one read for a
    crowd refused at once), so the next needs no read at all.
    """
    quota = quota_of(campaign, chosen)
    if not uow.board.gone(quota):
        return None
    if kept is None:

        async def read() -> KeptCampaign:
            async with uow.reading() as reads:
                return KeptCampaign(campaign, await reads.orders.keys_of_campaign(campaign.id))

        kept = await uow.board.read_campaign(campaign.id, read)
    key = options.idempotency_key
    if key is not None and (member_id, clean_idempotency_key(key)) in kept.order_keys:
        async with uow.reading() as reads:
            first = await _replayed(reads, member_id, options, campaign.id)
        if first is not None:
            return first
    raise DomainError(ErrorCode.SOLD_OUT, field=["campaignId"])


async def _replayed(
    repos: Repositories, member_id: int, options: OrderOptions, campaign_id: int
) -> Order | None:
    """A retry with the key of an order this campaign placed before: that order."""
    if options.idempotency_key is None:
        return None
    key = clean_idempotency_key(options.idempotency_key)
    existing = await repos.orders.by_key(member_id, key)
    if existing is None:
        return None
    if existing.campaign_id != campaign_id:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["order", "idempotencyKey"])
    return existing
