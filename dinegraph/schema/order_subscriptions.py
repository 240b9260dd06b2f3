"""The order feeds: one order as it changes, and a store's order board."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from dinegraph.context import Context, FeedSlot
from dinegraph.domain import orders as domain
from dinegraph.resolvers import orders as resolve
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.errors import live
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]


def _on_board(order: domain.Order) -> FeedSlot:
    """An order stays on the board while it is open, as the feed's first snapshot shows."""
    return FeedSlot(order.id, order.status in domain.OPEN)


@strawberry.type
class OrderSubscription:
    @strawberry.subscription(
        description="One order (its member, its store's staff): its state now, then each change."
    )
    async def order_updates(
        self, info: Info, order_id: strawberry.ID
    ) -> AsyncGenerator[OrderNode, None]:
        def feed() -> AsyncIterator[domain.Order]:
            return resolve.order_feed(info.context, decode_id(order_id, "Order", ["orderId"]))

        async for update in live(info, feed, OrderNode.of):
            yield update

    @strawberry.subscription(
        description="A store's order board (its staff, partners with orders:read): open orders "
        "from every source now, then new orders and status changes."
    )
    async def store_order_feed(
        self, info: Info, store_id: strawberry.ID
    ) -> AsyncGenerator[OrderNode, None]:
        def feed() -> AsyncIterator[domain.Order]:
            return resolve.store_order_feed(info.context, decode_id(store_id, "Store", ["storeId"]))

        async for update in live(info, feed, OrderNode.of, may_start_empty=True, slot=_on_board):
            yield update
