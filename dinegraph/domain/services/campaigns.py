"""Campaigns: set up by operators, ended, closed and reported on; the groups that ran
out of time fail in the same sweeps.

Selling through a campaign is in campaign_orders.py (what every campaign order shares),
flash_sales.py, group_buys.py and bargains.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.campaigns import (
    Campaign,
    CampaignReport,
    CampaignSpec,
    check_spec,
    quota_lines,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.group_buys import GroupStatus
from dinegraph.domain.identity import Viewer, actor_of, require_catalog_editor
from dinegraph.domain.orders import Order, OrderStatus
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.orders import OrderPolicy, cancel_in, group_changed
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine, MovementSource
from dinegraph.domain.supplies import supply_changed, whole_campaign

SWEEP_BATCH = 50


def campaign_reference(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


# --- set-up ---------------------------------------------------------------------------


# --- set-up ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateCampaign:
    spec: CampaignSpec
    now: datetime


async def create_campaign(cmd: CreateCampaign, *, uow: UnitOfWork, viewer: Viewer) -> Campaign:
    """Head office and operators set up a campaign; each store's quota of each tracked SKU
    is held from its stock through the ledger at once, so nothing is promised that the
    shelf does not hold. A store short of stock refuses the whole campaign."""
    staff = require_catalog_editor(viewer)
    spec = cmd.spec
    async with uow:
        found = await uow.catalog.skus_with_kinds(item.sku_id for item in spec.items)
        prices: dict[int, int] = {}
        channels: dict[int, frozenset[Channel]] = {}
        for sku_id, (sku, _) in found.items():
            product = await uow.catalog.get_product(sku.product_id)
            if product is None or not product.listed:
                continue
            prices[sku_id] = sku.price_fen
            channels[sku_id] = product.channels
        stores = frozenset(
            [
                store_id
                for store_id in set(spec.store_ids)
                if await uow.catalog.get_store(store_id) is not None
            ]
        )
        spec = check_spec(
            spec, now=cmd.now, regular_prices=prices, sku_channels=channels, known_stores=stores
        )
        campaign = await uow.campaigns.add(spec, created_by=actor_of(staff), at=cmd.now)
        await uow.campaigns.add_quotas(campaign.id, quota_lines(spec))
        tracked = sorted(sku_id for sku_id, (sku, _) in found.items() if sku.tracked)
        for n, store_id in enumerate(spec.store_ids):
            lines = [MovementLine(sku_id, -spec.quota_per_store) for sku_id in tracked]
            if not lines:
                continue
            try:
                await apply_movement(
                    uow,
                    actor=actor_of(staff),
                    store_id=store_id,
                    source=MovementSource.CAMPAIGN_HOLD,
                    reference=campaign_reference(campaign.id),
                    lines=lines,
                    reason=spec.name,
                    line_field=None,
                    key_field="campaignId",
                )
            except DomainError as error:
                if error.code is not ErrorCode.OUT_OF_STOCK:
                    raise
                raise DomainError(
                    ErrorCode.OUT_OF_STOCK, field=["storeIds", str(n)], **error.params
                ) from error
        uow.wrote("Campaign", campaign.id)
        await uow.commit()
    return campaign


@dataclass(frozen=True, slots=True)
class EndCampaign:
    campaign_id: int
    now: datetime
    policy: OrderPolicy


async def end_campaign(cmd: EndCampaign, *, uow: UnitOfWork, viewer: Viewer) -> Campaign:
    """Stop a campaign now: nothing more is sold, its open groups fail (their members are
    refunded), and what is left of the quotas goes back on the shelves."""
    require_catalog_editor(viewer)
    async with uow:
        campaign = await uow.campaigns.get(cmd.campaign_id)
        if campaign is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
        if not await uow.campaigns.end(campaign.id, cmd.now):
            raise DomainError(ErrorCode.CAMPAIGN_ENDED, field=["campaignId"])
        # Its buyers are refused CAMPAIGN_ENDED now: no process may answer SOLD_OUT.
        uow.record(supply_changed(whole_campaign(campaign.id), gone=False))
        await uow.campaigns.cut_groups_short(campaign.id, cmd.now)
        await uow.commit()
    while True:
        failed = await fail_expired_groups(cmd.now, cmd.policy, uow=uow)
        if len(failed.groups) < SWEEP_BATCH:
            break
    await close_campaigns(cmd.now, uow=uow)
    ended = replace(campaign, ended_at=cmd.now)
    return ended


async def close_campaigns(now: datetime, *, uow: UnitOfWork, batch: int = SWEEP_BATCH) -> int:
    """Ended campaigns give what is left of their quotas back to the shelves, once."""
    closed = 0
    async with uow:
        for campaign_id in await uow.campaigns.to_close(now, batch):
            left = await uow.campaigns.close(campaign_id)
            if left is None:
                continue
            closed += 1
            by_store: dict[int, list[MovementLine]] = {}
            for store_id, sku_id, units in left:
                if units > 0:
                    by_store.setdefault(store_id, []).append(MovementLine(sku_id, units))
            for store_id, lines in sorted(by_store.items()):
                await apply_movement(
                    uow,
                    actor="system:campaign-end",
                    store_id=store_id,
                    source=MovementSource.CAMPAIGN_RELEASE,
                    reference=campaign_reference(campaign_id),
                    lines=sorted(lines, key=lambda m: m.sku_id),
                    reason="",
                    line_field=None,
                    key_field="campaignId",
                )
        await uow.commit()
    return closed


async def campaign_report(campaign_id: int, *, uow: UnitOfWork, viewer: Viewer) -> CampaignReport:
    require_catalog_editor(viewer)
    async with uow.reading() as reads:
        if await reads.campaigns.get(campaign_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
        return await reads.campaigns.report(campaign_id)


# --- groups that ran out of time ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedGroups:
    groups: list[int]
    refunds: list[tuple[Order, int]]  # orders refunded, with the amount


async def fail_expired_groups(
    now: datetime, policy: OrderPolicy, *, uow: UnitOfWork, batch: int = SWEEP_BATCH
) -> FailedGroups:
    """Groups not filled in time fail: every member's order is cancelled, paid ones with
    a full refund, their units back in the quota (or on the shelf once it has closed).

    Safe with several processes: each group is claimed by a conditional status update
    (and ``SKIP LOCKED`` on PostgreSQL), so a group is failed, and refunded, once.
    """
    failed: list[int] = []
    refunds: list[tuple[Order, int]] = []
    async with uow:
        for group_id in await uow.campaigns.expired_groups(now, batch):
            group = await uow.campaigns.set_group_status(
                group_id, GroupStatus.OPEN, GroupStatus.FAILED
            )
            if group is None:
                continue
            failed.append(group_id)
            for order in await uow.orders.in_group(group_id):
                if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.GROUPING):
                    cancelled, refund = await cancel_in(uow, order, now, "system:group-failed")
                    if refund is not None:
                        refunds.append((cancelled, refund.amount_fen))
            uow.record(group_changed(group))
        await uow.commit()
    return FailedGroups(failed, refunds)
