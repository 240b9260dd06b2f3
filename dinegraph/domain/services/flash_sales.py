"""Flash sales (秒杀): one unit at the flash price, within the member's limit, while the
quota lasts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.campaigns import CampaignKind, Deal, check_running, choose
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer
from dinegraph.domain.orders import Order, clean_idempotency_key
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.campaign_orders import (
    OrderOptions,
    Sale,
    admit_member,
    get_campaign,
    member_of,
    place,
    refuse_sold_out,
)
from dinegraph.domain.services.orders import OrderPolicy


@dataclass(frozen=True, slots=True)
class BuyFlashSale:
    campaign_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


async def buy_flash_sale(cmd: BuyFlashSale, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """One unit at the flash price, within the member's limit, while the quota lasts."""
    member_id = member_of(viewer)
    async with uow.reading() as reads:
        campaign = await get_campaign(reads, cmd.campaign_id)
    check_running(campaign, CampaignKind.FLASH_SALE, cmd.now)
    chosen = choose(campaign, cmd.options.fulfilment)
    if uow.one_writer:
        async with uow.reading() as reads:
            await refuse_sold_out(reads, campaign, chosen)
    deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen)
    async with uow:
        first = await _replayed(uow, member_id, cmd.options, campaign.id)
        if first is not None:
            return first
        # Again under the lock: buyers who queued for it while units were left are
        # refused in one statement once they are gone.
        await refuse_sold_out(uow, campaign, chosen)
        buyer = await admit_member(uow, campaign, member_id, cmd.now)
        sale = Sale(
            campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy, buyer, True
        )
        order = await place(uow, sale)
        await uow.commit()
    return order


async def _replayed(
    uow: UnitOfWork, member_id: int, options: OrderOptions, campaign_id: int
) -> Order | None:
    """A retry with the key of an order this campaign placed before: that order."""
    if options.idempotency_key is None:
        return None
    key = clean_idempotency_key(options.idempotency_key)
    existing = await uow.orders.by_key(member_id, key)
    if existing is None:
        return None
    if existing.campaign_id != campaign_id:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["order", "idempotencyKey"])
    return existing
