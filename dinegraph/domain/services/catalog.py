"""Editing the product centre (head office) and store prices (store managers)."""

from __future__ import annotations

from dataclasses import replace

from dinegraph.domain.catalog import (
    UNSET,
    Category,
    CreateCategory,
    CreateProduct,
    CreateSku,
    NewSku,
    Product,
    ProductKind,
    SetProductListed,
    SetStorePrice,
    Sku,
    UpdateCategory,
    UpdateProduct,
    UpdateSku,
    check_channels,
    check_combo_components,
    check_no_category_cycle,
    check_price,
    clean_description,
    clean_image_urls,
    clean_name,
    clean_specs,
    clean_tags,
    sku_is_tracked,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer, require_catalog_editor, require_store_manager
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.store_repositories import CatalogRepository


async def create_category(cmd: CreateCategory, *, uow: UnitOfWork, viewer: Viewer) -> Category:
    """Add a category, at the top or under a parent."""
    require_catalog_editor(viewer)
    name = clean_name(cmd.name)
    async with uow:
        if cmd.parent_id is not None:
            await _category(uow.catalog, cmd.parent_id, field="parentId")
        category = await uow.catalog.add_category(name=name, parent_id=cmd.parent_id, sort=cmd.sort)
        uow.wrote("Category", category.id)
        await uow.commit()
    return category


async def update_category(cmd: UpdateCategory, *, uow: UnitOfWork, viewer: Viewer) -> Category:
    """Rename, re-sort or move a category; moving it under its own subtree is refused."""
    require_catalog_editor(viewer)
    async with uow:
        category = await _category(uow.catalog, cmd.category_id, field="id")
        if cmd.name is not UNSET:
            category = replace(category, name=clean_name(cmd.name))
        if cmd.sort is not UNSET:
            category = replace(category, sort=cmd.sort)
        if cmd.parent_id is not UNSET:
            if cmd.parent_id is not None:
                await _category(uow.catalog, cmd.parent_id, field="parentId")
            check_no_category_cycle(
                category.id, cmd.parent_id, await uow.catalog.category_parents()
            )
            category = replace(category, parent_id=cmd.parent_id)
        await uow.catalog.save_category(category)
        await uow.commit()
    return category


async def create_product(
    cmd: CreateProduct, *, uow: UnitOfWork, viewer: Viewer
) -> tuple[Product, list[Sku]]:
    """Add a product with its SKUs (and, for a combo, the SKUs each combo SKU is made of)."""
    require_catalog_editor(viewer)
    name = clean_name(cmd.name)
    description = clean_description(cmd.description)
    tags = clean_tags(cmd.tags)
    image_urls = clean_image_urls(cmd.image_urls)
    channels = check_channels(cmd.channels)
    if not cmd.skus:
        raise DomainError(ErrorCode.REQUIRED, field=["skus"])
    async with uow:
        await _category(uow.catalog, cmd.category_id, field="categoryId")
        product = await uow.catalog.add_product(
            category_id=cmd.category_id,
            kind=cmd.kind,
            name=name,
            description=description,
            tags=tags,
            image_urls=image_urls,
            channels=channels,
            listed=cmd.listed,
            sort=cmd.sort,
        )
        skus = [
            await _add_sku(uow.catalog, product, new, sort=i, field=("skus", str(i)))
            for i, new in enumerate(cmd.skus)
        ]
        uow.wrote("Product", product.id)
        await uow.commit()
    return product, skus


async def update_product(cmd: UpdateProduct, *, uow: UnitOfWork, viewer: Viewer) -> Product:
    """Change what a product says about itself; its SKUs change through ``update_sku``."""
    require_catalog_editor(viewer)
    async with uow:
        product = await _product(uow.catalog, cmd.product_id)
        if cmd.category_id is not UNSET:
            await _category(uow.catalog, cmd.category_id, field="categoryId")
            product = replace(product, category_id=cmd.category_id)
        if cmd.name is not UNSET:
            product = replace(product, name=clean_name(cmd.name))
        if cmd.description is not UNSET:
            product = replace(product, description=clean_description(cmd.description))
        if cmd.tags is not UNSET:
            product = replace(product, tags=clean_tags(cmd.tags))
        if cmd.image_urls is not UNSET:
            product = replace(product, image_urls=clean_image_urls(cmd.image_urls))
        if cmd.channels is not UNSET:
            product = replace(product, channels=check_channels(cmd.channels))
        if cmd.sort is not UNSET:
            product = replace(product, sort=cmd.sort)
        await uow.catalog.save_product(product)
        await uow.commit()
    return product


async def set_product_listed(cmd: SetProductListed, *, uow: UnitOfWork, viewer: Viewer) -> Product:
    """List (上架) or unlist (下架) a product in every store's menu."""
    require_catalog_editor(viewer)
    async with uow:
        product = replace(await _product(uow.catalog, cmd.product_id), listed=cmd.listed)
        await uow.catalog.save_product(product)
        await uow.commit()
    return product


async def create_sku(cmd: CreateSku, *, uow: UnitOfWork, viewer: Viewer) -> Sku:
    """Add a sellable variant to an existing product."""
    require_catalog_editor(viewer)
    async with uow:
        product = await _product(uow.catalog, cmd.product_id)
        sort = await uow.catalog.next_sku_sort(product.id)
        sku = await _add_sku(uow.catalog, product, cmd.sku, sort=sort, field=())
        uow.wrote("Sku", sku.id)
        await uow.commit()
    return sku


async def update_sku(cmd: UpdateSku, *, uow: UnitOfWork, viewer: Viewer) -> Sku:
    """Rename, re-spec or re-price a SKU, or change what a combo SKU is made of."""
    require_catalog_editor(viewer)
    async with uow:
        sku = await uow.catalog.get_sku(cmd.sku_id)
        if sku is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
        if cmd.name is not UNSET:
            sku = replace(sku, name=clean_name(cmd.name))
        if cmd.specs is not UNSET:
            sku = replace(sku, specs=clean_specs(cmd.specs))
        if cmd.price_fen is not UNSET:
            sku = replace(sku, price_fen=check_price(cmd.price_fen))
        if cmd.components is not UNSET:
            product = await _product(uow.catalog, sku.product_id)
            known = await uow.catalog.skus_with_kinds(c.sku_id for c in cmd.components)
            sku = replace(
                sku, components=check_combo_components(product.kind, cmd.components, known)
            )
        await uow.catalog.save_sku(sku)
        await uow.commit()
    return sku


async def set_store_price(cmd: SetStorePrice, *, uow: UnitOfWork, viewer: Viewer) -> Sku:
    """Override a SKU's price at one store, or clear the override with ``price_fen=None``."""
    require_store_manager(viewer, cmd.store_id)
    if cmd.price_fen is not None:
        check_price(cmd.price_fen)
    async with uow:
        if await uow.catalog.get_store(cmd.store_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        sku = await uow.catalog.get_sku(cmd.sku_id)
        if sku is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["skuId"])
        await uow.catalog.set_store_price(cmd.store_id, cmd.sku_id, cmd.price_fen)
        await uow.commit()
    return sku


async def _category(repo: CatalogRepository, category_id: int, *, field: str) -> Category:
    category = await repo.get_category(category_id)
    if category is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=[field])
    return category


async def _product(repo: CatalogRepository, product_id: int) -> Product:
    product = await repo.get_product(product_id)
    if product is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
    return product


async def _add_sku(
    repo: CatalogRepository,
    product: Product,
    new: NewSku,
    *,
    sort: int,
    field: tuple[str, ...],
) -> Sku:
    known = await repo.skus_with_kinds(c.sku_id for c in new.components)
    components = check_combo_components(
        product.kind, new.components, known, field=(*field, "components")
    )
    if product.kind is ProductKind.COMBO and new.tracked:
        # A combo's availability follows its parts; it is never counted on its own.
        raise DomainError(ErrorCode.INVALID_INPUT, field=[*field, "tracked"])
    return await repo.add_sku(
        product_id=product.id,
        name=clean_name(new.name, field=(*field, "name")),
        specs=clean_specs(new.specs, field=(*field, "specs")),
        price_fen=check_price(new.price_fen, field=(*field, "priceFen")),
        tracked=sku_is_tracked(product.kind, new.tracked),
        sort=sort,
        components=components,
    )
