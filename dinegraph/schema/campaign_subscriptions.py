"""The group feed: a group-buy as it fills."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from dinegraph.context import Context
from dinegraph.domain import group_buys
from dinegraph.resolvers import campaigns as resolve
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.campaigns import GroupBuyNode
from dinegraph.schema.errors import live

Info = strawberry.Info[Context, None]


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
