"""Admin mutations of the product centre; each takes one input and returns a payload."""

from __future__ import annotations

import strawberry

from dinegraph.context import Context
from dinegraph.domain import catalog as domain
from dinegraph.domain.services import catalog as service
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.catalog import (
    CategoryNode,
    Channel,
    ProductKind,
    ProductNode,
    SkuNode,
)
from dinegraph.schema.common import UserError, keep
from dinegraph.schema.errors import attempt

Info = strawberry.Info[Context, None]


# --- inputs -----------------------------------------------------------------------------


@strawberry.input
class SpecOptionInput:
    name: str
    value: str


@strawberry.input
class ComboComponentInput:
    sku_id: strawberry.ID
    quantity: int = 1


@strawberry.input
class CreateCategoryInput:
    name: str
    parent_id: strawberry.ID | None = None
    sort: int = 0


@strawberry.input
class UpdateCategoryInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null moves the category to the top level."
    )
    sort: int | None = strawberry.UNSET


@strawberry.input
class SkuInput:
    name: str
    price_fen: int
    specs: list[SpecOptionInput] = strawberry.field(default_factory=list)
    tracked: bool | None = strawberry.field(
        default=None, description="Counted per store; defaults to true for RETAIL products."
    )
    components: list[ComboComponentInput] = strawberry.field(
        default_factory=list, description="For a COMBO product: the SKUs it is made of."
    )


@strawberry.input
class CreateProductInput:
    category_id: strawberry.ID
    kind: ProductKind
    name: str
    channels: list[Channel]
    skus: list[SkuInput]
    description: str = ""
    tags: list[str] = strawberry.field(default_factory=list)
    image_urls: list[str] = strawberry.field(default_factory=list)
    listed: bool = True
    sort: int = 0


@strawberry.input
class UpdateProductInput:
    id: strawberry.ID
    category_id: strawberry.ID | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    image_urls: list[str] | None = strawberry.UNSET
    channels: list[Channel] | None = strawberry.UNSET
    sort: int | None = strawberry.UNSET


@strawberry.input
class ProductIdInput:
    id: strawberry.ID


@strawberry.input
class CreateSkuInput:
    product_id: strawberry.ID
    name: str
    price_fen: int
    specs: list[SpecOptionInput] = strawberry.field(default_factory=list)
    tracked: bool | None = None
    components: list[ComboComponentInput] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateSkuInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    price_fen: int | None = strawberry.UNSET
    specs: list[SpecOptionInput] | None = strawberry.UNSET
    components: list[ComboComponentInput] | None = strawberry.UNSET


@strawberry.input
class SetStorePriceInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    price_fen: int | None = strawberry.field(
        description="The store's price; null removes the override."
    )


# --- payloads ---------------------------------------------------------------------------


@strawberry.type
class CategoryPayload:
    category: CategoryNode | None
    errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: ProductNode | None
    errors: list[UserError]


@strawberry.type
class SkuPayload:
    sku: SkuNode | None
    errors: list[UserError]


# --- conversions ------------------------------------------------------------------------


def _specs(options: list[SpecOptionInput]) -> dict[str, str]:
    return {o.name: o.value for o in options}


def _components(items: list[ComboComponentInput], field: str) -> tuple[domain.ComboComponent, ...]:
    return tuple(
        domain.ComboComponent(decode_id(i.sku_id, "Sku", [field, str(n), "skuId"]), i.quantity)
        for n, i in enumerate(items)
    )


def _new_sku(sku: SkuInput | CreateSkuInput, field: str = "components") -> domain.NewSku:
    return domain.NewSku(
        name=sku.name,
        price_fen=sku.price_fen,
        specs=_specs(sku.specs),
        tracked=sku.tracked,
        components=_components(sku.components, field),
    )


# --- mutations --------------------------------------------------------------------------


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(description="Add a category (head office).")
    async def create_category(self, info: Info, input: CreateCategoryInput) -> CategoryPayload:
        async def run() -> domain.Category:
            parent = input.parent_id
            cmd = domain.CreateCategory(
                name=input.name,
                parent_id=decode_id(parent, "Category", ["parentId"]) if parent else None,
                sort=input.sort,
            )
            return await info.context.run(service.create_category, cmd)

        category, errors = await attempt(info, run)
        return CategoryPayload(
            category=CategoryNode.of(category) if category else None, errors=errors
        )

    @strawberry.mutation(description="Rename, re-sort or move a category (head office).")
    async def update_category(self, info: Info, input: UpdateCategoryInput) -> CategoryPayload:
        async def run() -> domain.Category:
            parent: int | domain.Unset | None = domain.UNSET
            if input.parent_id is None:
                parent = None
            elif input.parent_id is not strawberry.UNSET:
                parent = decode_id(input.parent_id, "Category", ["parentId"])
            cmd = domain.UpdateCategory(
                category_id=decode_id(input.id, "Category", ["id"]),
                name=keep(input.name),
                parent_id=parent,
                sort=keep(input.sort),
            )
            return await info.context.run(service.update_category, cmd)

        category, errors = await attempt(info, run)
        return CategoryPayload(
            category=CategoryNode.of(category) if category else None, errors=errors
        )

    @strawberry.mutation(description="Add a product with its SKUs (head office).")
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        async def run() -> domain.Product:
            cmd = domain.CreateProduct(
                category_id=decode_id(input.category_id, "Category", ["categoryId"]),
                kind=input.kind,
                name=input.name,
                channels=frozenset(input.channels),
                skus=tuple(
                    _new_sku(s, field=f"skus.{n}.components") for n, s in enumerate(input.skus)
                ),
                description=input.description,
                tags=tuple(input.tags),
                image_urls=tuple(input.image_urls),
                listed=input.listed,
                sort=input.sort,
            )
            product, _ = await info.context.run(service.create_product, cmd)
            return product

        product, errors = await attempt(info, run)
        return ProductPayload(product=ProductNode.of(product) if product else None, errors=errors)

    @strawberry.mutation(description="Change a product's details (head office).")
    async def update_product(self, info: Info, input: UpdateProductInput) -> ProductPayload:
        async def run() -> domain.Product:
            category = keep(input.category_id)
            tags, images, channels = (
                keep(input.tags),
                keep(input.image_urls),
                keep(input.channels),
            )
            cmd = domain.UpdateProduct(
                product_id=decode_id(input.id, "Product", ["id"]),
                category_id=(
                    category
                    if isinstance(category, domain.Unset)
                    else decode_id(category, "Category", ["categoryId"])
                ),
                name=keep(input.name),
                description=keep(input.description),
                tags=tags if isinstance(tags, domain.Unset) else tuple(tags),
                image_urls=images if isinstance(images, domain.Unset) else tuple(images),
                channels=channels if isinstance(channels, domain.Unset) else frozenset(channels),
                sort=keep(input.sort),
            )
            return await info.context.run(service.update_product, cmd)

        product, errors = await attempt(info, run)
        return ProductPayload(product=ProductNode.of(product) if product else None, errors=errors)

    @strawberry.mutation(description="Put a product on every store's menu (上架).")
    async def list_product(self, info: Info, input: ProductIdInput) -> ProductPayload:
        return await _set_listed(info, input, listed=True)

    @strawberry.mutation(description="Take a product off every store's menu (下架).")
    async def unlist_product(self, info: Info, input: ProductIdInput) -> ProductPayload:
        return await _set_listed(info, input, listed=False)

    @strawberry.mutation(description="Add a SKU to a product (head office).")
    async def create_sku(self, info: Info, input: CreateSkuInput) -> SkuPayload:
        async def run() -> domain.Sku:
            cmd = domain.CreateSku(
                product_id=decode_id(input.product_id, "Product", ["productId"]),
                sku=_new_sku(input),
            )
            return await info.context.run(service.create_sku, cmd)

        sku, errors = await attempt(info, run)
        return SkuPayload(sku=SkuNode.of(sku) if sku else None, errors=errors)

    @strawberry.mutation(description="Change a SKU's name, specs, base price or parts.")
    async def update_sku(self, info: Info, input: UpdateSkuInput) -> SkuPayload:
        async def run() -> domain.Sku:
            specs, parts = keep(input.specs), keep(input.components)
            cmd = domain.UpdateSku(
                sku_id=decode_id(input.id, "Sku", ["id"]),
                name=keep(input.name),
                price_fen=keep(input.price_fen),
                specs=specs if isinstance(specs, domain.Unset) else _specs(specs),
                components=(
                    parts if isinstance(parts, domain.Unset) else _components(parts, "components")
                ),
            )
            return await info.context.run(service.update_sku, cmd)

        sku, errors = await attempt(info, run)
        return SkuPayload(sku=SkuNode.of(sku) if sku else None, errors=errors)

    @strawberry.mutation(description="Set or clear a SKU's price at one store (its manager).")
    async def set_store_price(self, info: Info, input: SetStorePriceInput) -> SkuPayload:
        store_id = 0

        async def run() -> domain.Sku:
            nonlocal store_id
            store_id = decode_id(input.store_id, "Store", ["storeId"])
            cmd = domain.SetStorePrice(
                store_id=store_id,
                sku_id=decode_id(input.sku_id, "Sku", ["skuId"]),
                price_fen=input.price_fen,
            )
            return await info.context.run(service.set_store_price, cmd)

        sku, errors = await attempt(info, run)
        return SkuPayload(sku=SkuNode.of(sku, store_id) if sku else None, errors=errors)


async def _set_listed(info: Info, input: ProductIdInput, *, listed: bool) -> ProductPayload:
    async def run() -> domain.Product:
        cmd = domain.SetProductListed(decode_id(input.id, "Product", ["id"]), listed)
        return await info.context.run(service.set_product_listed, cmd)

    product, errors = await attempt(info, run)
    return ProductPayload(product=ProductNode.of(product) if product else None, errors=errors)
