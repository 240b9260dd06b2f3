"""The subscription root: live stock for everyone, low-stock alerts for staff."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from dinegraph.context import Context, FeedSlot
from dinegraph.domain.stock import LowStock, StockChanged
from dinegraph.resolvers import subscriptions as feeds
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.campaign_subscriptions import CampaignSubscription
from dinegraph.schema.catalog import SkuNode, StoreNode, sku_at
from dinegraph.schema.delivery import DeliverySubscription
from dinegraph.schema.errors import live
from dinegraph.schema.kitchen import KitchenSubscription
from dinegraph.schema.order_subscriptions import OrderSubscription

Info = strawberry.Info[Context, None]


@strawberry.type(description="A SKU's stock at one store; versions grow with every change.")
class StockUpdate:
    available: int | None = strawberry.field(description="Null for dishes made to order.")
    sold_out: bool
    version: int
    event: strawberry.Private[StockChanged]

    @classmethod
    def of(cls, event: StockChanged) -> StockUpdate:
        return cls(
            available=event.available, sold_out=event.sold_out, version=event.version, event=event
        )

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.event.sku_id, self.event.store_id)


@strawberry.type(description="A tracked SKU at or below its low-stock threshold.")
class LowStockAlert:
    available: int
    threshold: int
    version: int
    event: strawberry.Private[LowStock]

    @classmethod
    def of(cls, event: LowStock) -> LowStockAlert:
        return cls(
            available=event.available, threshold=event.threshold, version=event.version, event=event
        )

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.event.sku_id, self.event.store_id)

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.event.store_id)
        return StoreNode.of(found) if found else None


def _by_sku(event: StockChanged) -> FeedSlot:
    return FeedSlot(event.sku_id)


@strawberry.type
class Subscription(
    OrderSubscription, DeliverySubscription, CampaignSubscription, KitchenSubscription
):
    @strawberry.subscription(
        description="The current stock of the SKUs asked for (or all that can sell out), "
        "then every change."
    )
    async def stock_changed(
        self, info: Info, store_id: strawberry.ID, sku_ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[StockUpdate, None]:
        def feed() -> AsyncIterator[StockChanged]:
            store = decode_id(store_id, "Store", ["storeId"])
            skus = (
                [decode_id(s, "Sku", ["skuIds"]) for s in sku_ids] if sku_ids is not None else None
            )
            return feeds.stock_feed(info.context, store, skus)

        async for update in live(info, feed, StockUpdate.of, slot=_by_sku):
            yield update

    @strawberry.subscription(description="Low-stock alerts of the stores (their staff only).")
    async def low_stock_alerts(
        self, info: Info, store_ids: list[strawberry.ID]
    ) -> AsyncGenerator[LowStockAlert, None]:
        def feed() -> AsyncIterator[LowStock]:
            stores = [decode_id(s, "Store", ["storeIds"]) for s in store_ids]
            return feeds.low_stock_feed(info.context, stores)

        async for alert in live(info, feed, LowStockAlert.of):
            yield alert
