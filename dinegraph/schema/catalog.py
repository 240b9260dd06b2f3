"""GraphQL types of the product centre: stores, categories, products, SKUs, menus."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import catalog as domain
from dinegraph.domain.carriers import CarrierRule
from dinegraph.domain.delivery import Provider
from dinegraph.resolvers import catalog as resolve
from dinegraph.resolvers.ids import node_row_ids
from dinegraph.schema.common import GeoPoint, Money

Info = strawberry.Info[Context, None]

# The domain's enums are the schema's own: strawberry.enum registers them in place.
Channel = domain.Channel
ProductKind = domain.ProductKind
strawberry.enum(Channel, name="Channel", description="Where a product is sold.")
strawberry.enum(Provider, name="DeliveryProvider", description="Who carries an order.")
strawberry.enum(
    CarrierRule,
    description="How a store's platform is chosen at dispatch: the cheapest or fastest quote, "
    "or its own order of preference.",
)
strawberry.enum(
    ProductKind,
    name="ProductKind",
    description="DISH made to order, COMBO of other SKUs, RETAIL pre-made goods.",
)


def _ints(node_ids: Iterable[str]) -> list[int]:
    return node_row_ids(node_ids)


@strawberry.type(description="Opening hours, local time; closes before opens runs past midnight.")
class OpeningHours:
    opens: str
    closes: str


@strawberry.type(name="Store", description="A restaurant of the chain.")
class StoreNode(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    address: str
    location: GeoPoint
    delivery_radius_meters: int
    opening_hours: OpeningHours
    is_open: bool = strawberry.field(description="Open for business (false while closed down).")
    delivery_provider: Provider = strawberry.field(
        description="Who carries its delivery orders: OWN_RIDER or a delivery platform."
    )
    delivery_platforms: list[Provider] = strawberry.field(
        default_factory=list,
        description="The platforms it asks for quotes at dispatch, in its order of preference "
        "(empty: deliveryProvider alone).",
    )
    carrier_rule: CarrierRule = strawberry.field(
        default=CarrierRule.PREFERRED, description="How one of deliveryPlatforms is chosen."
    )
    distance_meters: int | None = strawberry.field(
        default=None, description="From the point asked about (`stores(near:)`), in metres."
    )

    @classmethod
    def of(cls, store: domain.Store, distance: int | None = None) -> StoreNode:
        return cls(
            id=store.id,
            code=store.code,
            name=store.name,
            address=store.address,
            location=GeoPoint(lat=store.location.lat, lng=store.location.lng),
            delivery_radius_meters=store.delivery_radius_m,
            opening_hours=OpeningHours(
                opens=store.opens.strftime("%H:%M"), closes=store.closes.strftime("%H:%M")
            ),
            is_open=store.is_open,
            delivery_provider=Provider(store.delivery_provider),
            delivery_platforms=[Provider(p) for p in store.delivery_platforms],
            carrier_rule=CarrierRule(store.carrier_rule),
            distance_meters=distance,
        )

    @strawberry.field(description="Orders in the kitchen queue now (paid, not yet ready).")
    async def pending_orders(self, info: Info) -> int:
        return await info.context.loaders.pending_orders.load(self.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[StoreNode | None]:
        stores = await info.context.loaders.store.load_many(_ints(node_ids))
        return [cls.of(s) if s else None for s in stores]


@strawberry.type(name="Category", description="A menu category; categories nest.")
class CategoryNode(relay.Node):
    id: relay.NodeID[int]
    name: str
    sort: int
    category: strawberry.Private[domain.Category]
    menu_products: strawberry.Private[list[domain.Product] | None] = None
    menu_store_id: strawberry.Private[int | None] = None
    priced: strawberry.Private[list[resolve.MenuProduct] | None] = None

    @classmethod
    def of(
        cls,
        category: domain.Category,
        products: list[domain.Product] | None = None,
        store_id: int | None = None,
        priced: list[resolve.MenuProduct] | None = None,
    ) -> CategoryNode:
        return cls(
            id=category.id,
            name=category.name,
            sort=category.sort,
            category=category,
            menu_products=products,
            menu_store_id=store_id,
            priced=priced,
        )

    @strawberry.field
    async def parent(self, info: Info) -> CategoryNode | None:
        if self.category.parent_id is None:
            return None
        parent = await info.context.loaders.category.load(self.category.parent_id)
        return CategoryNode.of(parent) if parent else None

    @strawberry.field(description="In a menu, what this store sells here on that channel.")
    async def products(self, info: Info) -> list[ProductNode]:
        if self.priced is not None:
            return [
                ProductNode.of(
                    p.product,
                    self.menu_store_id,
                    skus=[SkuNode.of(s.sku, self.menu_store_id, s) for s in p.skus],
                )
                for p in self.priced
            ]
        if self.menu_products is not None:
            return [ProductNode.of(p, self.menu_store_id) for p in self.menu_products]
        return [
            ProductNode.of(p) for p in await resolve.category_products(info.context, self.category)
        ]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CategoryNode | None]:
        found = await info.context.loaders.category.load_many(_ints(node_ids))
        return [cls.of(c) if c else None for c in found]


@strawberry.type(name="Product", description="A dish, combo or retail item, sold as SKUs.")
class ProductNode(relay.Node):
    id: relay.NodeID[int]
    kind: ProductKind
    name: str
    description: str
    tags: list[str]
    image_urls: list[str]
    channels: list[Channel]
    listed: bool
    product: strawberry.Private[domain.Product]
    store_id: strawberry.Private[int | None] = None
    preset_skus: strawberry.Private[list[SkuNode] | None] = None

    @classmethod
    def of(
        cls,
        product: domain.Product,
        store_id: int | None = None,
        skus: list[SkuNode] | None = None,
    ) -> ProductNode:
        return cls(
            id=product.id,
            kind=product.kind,
            name=product.name,
            description=product.description,
            tags=list(product.tags),
            image_urls=list(product.image_urls),
            channels=sorted(product.channels),
            listed=product.listed,
            product=product,
            store_id=store_id,
            preset_skus=skus,
        )

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode | None:
        found = await info.context.loaders.category.load(self.product.category_id)
        return CategoryNode.of(found) if found else None

    @strawberry.field(description="Sellable variants, priced for the menu's store if any.")
    def skus(self, info: Info) -> list[SkuNode]:
        if self.preset_skus is not None:
            return self.preset_skus
        # graphql-core awaits what a plain resolver returns: the loader path stays async.
        return cast("list[SkuNode]", self._load_skus(info))

    async def _load_skus(self, info: Info) -> list[SkuNode]:
        return [
            SkuNode.of(s, self.store_id) for s in await resolve.skus_of(info.context, self.product)
        ]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ProductNode | None]:
        found = await resolve.visible_products(info.context, _ints(node_ids))
        return [cls.of(p) if p else None for p in found]


@strawberry.type(description="One option of a SKU's spec, e.g. size: 大份.")
class SpecOption:
    name: str
    value: str


@strawberry.type(description="Stock of a SKU at one store.")
class StockLevel:
    available: int | None = strawberry.field(
        description="Units left of a tracked SKU; null for dishes made to order."
    )
    sold_out: bool
    version: int


@strawberry.type(description="A SKU that is part of a combo, and how many of it.")
class ComboComponent:
    quantity: int
    sku_id: strawberry.Private[int]
    store_id: strawberry.Private[int | None]

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        found = await info.context.loaders.sku.load(self.sku_id)
        return SkuNode.of(found, self.store_id) if found else None


@strawberry.type(name="Sku", description="One sellable variant of a product.")
class SkuNode(relay.Node):
    id: relay.NodeID[int]
    name: str
    tracked: bool = strawberry.field(description="Counted per store (retail, limited dishes).")
    base_price: Money = strawberry.field(description="The chain's price before store overrides.")
    sku: strawberry.Private[domain.Sku]
    store_id: strawberry.Private[int | None] = None
    preset: strawberry.Private[resolve.MenuSku | None] = None

    @classmethod
    def of(
        cls, sku: domain.Sku, store_id: int | None = None, preset: resolve.MenuSku | None = None
    ) -> SkuNode:
        return cls(
            id=sku.id,
            name=sku.name,
            tracked=sku.tracked,
            base_price=Money.of(sku.price_fen),
            sku=sku,
            store_id=store_id,
            preset=preset,
        )

    @strawberry.field
    def specs(self) -> list[SpecOption]:
        return [SpecOption(name=k, value=v) for k, v in self.sku.specs.items()]

    @strawberry.field(description="At the menu's store when in a menu, else the base price.")
    def price(self, info: Info) -> Money:
        if self.preset is not None:
            return Money.of(self.preset.price_fen)
        return cast(Money, self._load_price(info))  # awaited by graphql-core

    async def _load_price(self, info: Info) -> Money:
        return Money.of(await resolve.price_at(info.context, self.sku, self.store_id))

    @strawberry.field(description="At the menu's store; null outside a store's menu.")
    def stock(self, info: Info) -> StockLevel | None:
        if self.preset is not None:
            view = self.preset.stock
            return StockLevel(
                available=view.available, sold_out=view.sold_out, version=view.version
            )
        return cast(StockLevel | None, self._load_stock(info))  # awaited by graphql-core

    async def _load_stock(self, info: Info) -> StockLevel | None:
        view = await resolve.stock_at(info.context, self.sku, self.store_id)
        if view is None:
            return None
        return StockLevel(available=view.available, sold_out=view.sold_out, version=view.version)

    @strawberry.field
    def components(self) -> list[ComboComponent]:
        return [
            ComboComponent(quantity=c.quantity, sku_id=c.sku_id, store_id=self.store_id)
            for c in self.sku.components
        ]

    @strawberry.field
    async def product(self, info: Info) -> ProductNode | None:
        found = await info.context.loaders.product.load(self.sku.product_id)
        return ProductNode.of(found, self.store_id) if found else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[SkuNode | None]:
        found = await resolve.visible_skus(info.context, _ints(node_ids))
        return [cls.of(s) if s else None for s in found]


@strawberry.type(description="What one store sells on one channel, with its prices and stock.")
class Menu:
    store: StoreNode
    channel: Channel
    store_entity: strawberry.Private[domain.Store]

    @strawberry.field(description="Categories with something to sell, in menu order.")
    async def categories(self, info: Info) -> list[CategoryNode]:
        store_id = self.store_entity.id
        sections = await resolve.priced_menu(info.context, store_id, self.channel)
        return [
            CategoryNode.of(c, [p.product for p in group], store_id, priced=group)
            for c, group in sections
        ]


async def sku_at(info: Info, sku_id: int, store_id: int | None) -> SkuNode | None:
    """A SKU as seen at one store (its price and stock there)."""
    found = await info.context.loaders.sku.load(sku_id)
    return SkuNode.of(found, store_id) if found else None
