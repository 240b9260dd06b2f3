"""Campaign quotas as staff watch them sell: each running campaign's units at each store.

A quota has no version of its own: every committed write to one moves its store's quota
stamp (``domain.stamps``), and a campaign set up, ended early or closed moves ``CAMPAIGNS``.
The feed reads the quotas again when it hears one of those moves (or when a campaign
starts or ends by the clock) and sends what differs from what it sent last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from dinegraph.domain.campaigns import Campaign, CampaignState, may_see_scheduled
from dinegraph.domain.identity import Viewer, require_staff, require_store_manager
from dinegraph.domain.stamps import CAMPAIGNS, EVERYTHING, is_quota_stamp, quota_stamp


@dataclass(frozen=True, slots=True)
class QuotaRow:
    """One SKU's quota of a campaign at a store, as stored: ``remaining`` reads 0 once the
    campaign is ``closed`` (what was left went back on the shelf)."""

    campaign_id: int
    store_id: int
    sku_id: int
    quota: int
    remaining: int
    closed: bool


@dataclass(frozen=True, slots=True)
class SkuQuota:
    sku_id: int
    quota: int
    sold: int  # units drawn on the quota and not given back
    left: int


@dataclass(frozen=True, slots=True)
class CampaignQuota:
    """A campaign's quota at one store: running, or just ended (then nothing is left)."""

    campaign: Campaign
    store_id: int
    state: CampaignState
    skus: tuple[SkuQuota, ...]

    @property
    def key(self) -> tuple[int, int]:
        return (self.campaign.id, self.store_id)

    @property
    def sold(self) -> int:
        return sum(s.sold for s in self.skus)

    @property
    def left(self) -> int:
        return sum(s.left for s in self.skus)

    def same_as(self, other: CampaignQuota | None) -> bool:
        """Whether a subscriber shown ``other`` would be shown nothing new."""
        return (
            other is not None
            and other.state is self.state
            and other.skus == self.skus
            and other.campaign.ends_at == self.campaign.ends_at
        )


def quota_stores(viewer: Viewer, store_id: int | None) -> frozenset[int] | None:
    """The stores whose quotas the viewer may follow (None: every store).

    One store: head office, or staff who run it. No store: head office follows the whole
    chain, a store manager the stores they run."""
    if store_id is not None:
        if not may_see_scheduled(viewer):
            require_store_manager(viewer, store_id)
        return frozenset({store_id})
    if may_see_scheduled(viewer):
        return None
    return require_staff(viewer).store_ids


def moves_quotas(stamps: Iterable[str], stores: frozenset[int] | None) -> bool:
    """Whether a commit that moved ``stamps`` may have changed a quota at ``stores``."""
    for stamp in stamps:
        if stamp in (CAMPAIGNS, EVERYTHING):
            return True
        if stores is None and is_quota_stamp(stamp):
            return True
    return stores is not None and any(quota_stamp(s) in stamps for s in stores)


def running_quotas(
    campaigns: Iterable[Campaign],
    stores: frozenset[int] | None,
    rows: Iterable[QuotaRow],
) -> dict[tuple[int, int], CampaignQuota]:
    """The quotas of running ``campaigns`` at ``stores``, by (campaign, store)."""
    by_key: dict[tuple[int, int], list[QuotaRow]] = {}
    for row in rows:
        by_key.setdefault((row.campaign_id, row.store_id), []).append(row)
    found: dict[tuple[int, int], CampaignQuota] = {}
    for campaign in campaigns:
        for store_id in campaign.spec.store_ids:
            if stores is not None and store_id not in stores:
                continue
            held = {r.sku_id: r for r in by_key.get((campaign.id, store_id), ())}
            skus = tuple(
                SkuQuota(r.sku_id, r.quota, r.quota - r.remaining, r.remaining)
                for item in campaign.spec.items
                if (r := held.get(item.sku_id)) is not None
            )
            found[(campaign.id, store_id)] = CampaignQuota(
                campaign, store_id, CampaignState.RUNNING, skus
            )
    return found


def ended_quota(
    last: CampaignQuota, campaign: Campaign | None, rows: Mapping[int, QuotaRow]
) -> CampaignQuota:
    """What ``last`` became once its campaign ended: nothing left; sold as the quota rows
    still tell (``rows`` by SKU), or as last sent once they are closed."""
    skus = []
    for sku in last.skus:
        row = rows.get(sku.sku_id)
        sold = row.quota - row.remaining if row is not None and not row.closed else sku.sold
        skus.append(SkuQuota(sku.sku_id, sku.quota, sold, 0))
    return replace(
        last,
        campaign=campaign or last.campaign,
        state=CampaignState.ENDED,
        skus=tuple(skus),
    )
