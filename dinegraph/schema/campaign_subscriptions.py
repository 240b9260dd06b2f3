"""The campaign feeds: a group-buy as it fills, running campaigns' quotas as they sell, and
a coupon issue job as it goes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from dinegraph.context import Context, FeedSlot
from dinegraph.domain import campaign_quotas as quotas
from dinegraph.domain import coupons, group_buys
from dinegraph.domain.campaigns import CampaignState
from dinegraph.resolvers import campaign_quotas as resolve_quotas
from dinegraph.resolvers import campaigns as resolve
from dinegraph.resolvers import issue_jobs as resolve_jobs
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.campaigns import CampaignNode, GroupBuyNode
from dinegraph.schema.catalog import SkuNode, StoreNode, sku_at
from dinegraph.schema.coupons import CouponIssueJobNode
from dinegraph.schema.errors import live

Info = strawberry.Info[Context, None]


@strawberry.type(description="One SKU of a campaign's quota at a store.")
class SkuQuota:
    quota: int = strawberry.field(description="Units the store holds for the campaign.")
    sold: int = strawberry.field(description="Units drawn on the quota and not given back.")
    left: int
    sku_id: strawberry.Private[int]
    store_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.sku_id, self.store_id)


@strawberry.type(
    description="A campaign's quota at one store: while it runs, then once more as it ends "
    "(nothing left)."
)
class CampaignQuota:
    state: CampaignState
    sold: int = strawberry.field(description="Over all of its SKUs.")
    left: int = strawberry.field(description="Over all of its SKUs.")
    skus: list[SkuQuota]
    campaign: CampaignNode
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, q: quotas.CampaignQuota) -> CampaignQuota:
        return cls(
            state=q.state,
            sold=q.sold,
            left=q.left,
            skus=[
                SkuQuota(
                    quota=s.quota, sold=s.sold, left=s.left, sku_id=s.sku_id, store_id=q.store_id
                )
                for s in q.skus
            ],
            campaign=CampaignNode.of(q.campaign),
            store_id=q.store_id,
        )

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.store_id)
        return StoreNode.of(found) if found else None


def _by_campaign_at_store(quota: quotas.CampaignQuota) -> FeedSlot:
    """A quota stays in the feed's state while its campaign runs."""
    return FeedSlot(quota.key, quota.state is CampaignState.RUNNING)


@strawberry.type
class CampaignSubscription:
    @strawberry.subscription(
        description="A group as it fills (anyone with its id): its state now, then each change."
    )
    async def group_buy_updates(
        self, info: Info, group_id: strawberry.ID
    ) -> AsyncGenerator[GroupBuyNode, None]:
        def feed() -> AsyncIterator[group_buys.GroupBuy]:
            return resolve.group_feed(info.context, decode_id(group_id, "GroupBuy", ["groupId"]))

        async for update in live(info, feed, GroupBuyNode.of):
            yield update

    @strawberry.subscription(
        description="Running campaigns' quotas at a store (head office, its managers), or "
        "without one at every store the viewer runs (head office: all): each now, then every "
        "committed sale, give-back, start and end."
    )
    async def campaign_quota_feed(
        self, info: Info, store_id: strawberry.ID | None = None
    ) -> AsyncGenerator[CampaignQuota, None]:
        def feed() -> AsyncIterator[quotas.CampaignQuota]:
            store = decode_id(store_id, "Store", ["storeId"]) if store_id is not None else None
            return resolve_quotas.campaign_quota_feed(info.context, store)

        async for update in live(
            info, feed, CampaignQuota.of, may_start_empty=True, slot=_by_campaign_at_store
        ):
            yield update

    @strawberry.subscription(
        description="A coupon issue job (head office and operators): its progress now, then "
        "after each batch it commits; its last value is DONE or SOLD_OUT, then it completes."
    )
    async def coupon_issue_job_updates(
        self, info: Info, job_id: strawberry.ID
    ) -> AsyncGenerator[CouponIssueJobNode, None]:
        def feed() -> AsyncIterator[coupons.IssueJob]:
            return resolve_jobs.issue_job_feed(
                info.context, decode_id(job_id, "CouponIssueJob", ["jobId"])
            )

        async for update in live(info, feed, CouponIssueJobNode.of):
            yield update
