"""The campaign quota feed: running campaigns' quotas at the stores, then each change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from dinegraph.context import Context
from dinegraph.domain.campaign_quotas import (
    CampaignQuota,
    ended_quota,
    moves_quotas,
    quota_stores,
    running_quotas,
)
from dinegraph.domain.campaigns import running_now
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.events import Event
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.events.codec import READS_TOPIC

RECHECK_SECONDS = 60.0
"""The quotas are read again at least this often, for a change no process heard of (a
broker connection down for a while): the read cache's ``max_age`` does the same."""


class _Box(Protocol):
    async def take(self) -> list[Event]: ...


async def campaign_quota_feed(ctx: Context, store_id: int | None) -> AsyncIterator[CampaignQuota]:
    """Staff: each running campaign's quota at the stores now, then every committed change
    to one (units sold or given back, a campaign started or ended)."""
    stores = quota_stores(ctx.viewer, store_id)
    if store_id is not None and await ctx.loaders.store.load(store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    # Join before the first read, so no commit between the two can be missed: each move
    # heard is followed by a read of the quotas, and only what differs is sent.
    box = await ctx.broker.hub.join([READS_TOPIC])
    try:
        sent: dict[tuple[int, int], CampaignQuota] = {}
        while True:
            ctx.refresh_loaders()  # each read with loaders of its own
            now = ctx.now()
            fresh, wake = await _running(ctx, stores, now)
            for key, quota in fresh.items():
                if not quota.same_as(sent.get(key)):
                    sent[key] = quota
                    yield quota
            gone = [sent.pop(key) for key in [k for k in sent if k not in fresh]]
            for ended in await _ended(ctx, gone):
                yield ended
            await _news(box, stores, (wake - now).total_seconds() if wake else None)
    finally:
        await ctx.broker.hub.leave([READS_TOPIC], box)


async def _running(
    ctx: Context, stores: frozenset[int] | None, now: datetime
) -> tuple[dict[tuple[int, int], CampaignQuota], datetime | None]:
    """The quotas of the campaigns running now, and when that set next changes by itself."""
    planned = await ctx.reads.campaigns_planned_over(now, None)
    moments = [c.next_change(now) for c in planned]
    moments.append(await ctx.reads.next_campaign_start(now, None))
    running = [
        c
        for c in running_now(planned, now)
        if stores is None or not stores.isdisjoint(c.spec.store_ids)
    ]
    rows = await ctx.reads.campaign_quotas([c.id for c in running], stores)
    wake = min((m for m in moments if m is not None), default=None)
    return running_quotas(running, stores, rows), wake


async def _ended(ctx: Context, gone: list[CampaignQuota]) -> list[CampaignQuota]:
    """The last word on quotas whose campaign stopped running: ended, nothing left."""
    if not gone:
        return []
    ids = sorted({q.campaign.id for q in gone})
    campaigns = {c.id: c for c in await ctx.reads.campaigns_by_ids(ids)}
    rows = await ctx.reads.campaign_quotas(ids, frozenset(q.store_id for q in gone))
    by_key = {(r.campaign_id, r.store_id, r.sku_id): r for r in rows}
    return [
        ended_quota(
            q,
            campaigns.get(q.campaign.id),
            {s.sku_id: r for s in q.skus if (r := by_key.get((*q.key, s.sku_id))) is not None},
        )
        for q in gone
    ]


async def _news(box: _Box, stores: frozenset[int] | None, wait: float | None) -> None:
    """Wait until a commit may have moved a quota of ``stores``, or ``wait`` seconds pass."""
    loop = asyncio.get_running_loop()
    wait = RECHECK_SECONDS if wait is None else min(max(wait, 0.05), RECHECK_SECONDS)
    deadline = loop.time() + wait
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            events = await asyncio.wait_for(box.take(), left)
        except TimeoutError:
            return
        if any(isinstance(e, ReadsChanged) and moves_quotas(e.stamps, stores) for e in events):
            return
