"""The product centre: stores, categories, products, SKUs and combos, and their rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from enum import Enum, StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint, distance_m


class Channel(StrEnum):
    DINE_IN = "DINE_IN"
    PICKUP = "PICKUP"
    DELIVERY = "DELIVERY"
    RETAIL = "RETAIL"


class ProductKind(StrEnum):
    DISH = "DISH"
    COMBO = "COMBO"
    RETAIL = "RETAIL"


class Unset(Enum):
    """Marks an update field the caller left out (as opposed to setting it to null)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET

NAME_MAX = 60
DESCRIPTION_MAX = 500
TAG_MAX = 12
TAGS_MAX = 10
IMAGES_MAX = 10
URL_MAX = 500
SPEC_MAX = 8
PRICE_MAX_FEN = 10_000_000
COMBO_COMPONENTS_MAX = 20


@dataclass(frozen=True, slots=True)
class Store:
    id: int
    code: str
    name: str
    address: str
    location: GeoPoint
    delivery_radius_m: int
    opens: time
    closes: time
    is_open: bool
    delivery_provider: str = "DADA"  # who carries its delivery orders (domain.delivery)
    delivery_platforms: tuple[str, ...] = ()  # platforms to choose from (domain.carriers)
    carrier_rule: str = "PREFERRED"

    def in_hours(self, at: time) -> bool:
        """Whether ``at`` lies in opening hours; hours may run past midnight (10:00-02:00),
        and equal opening and closing times mean open around the clock (24小时营业)."""
        if self.opens == self.closes:
            return True
        if self.opens < self.closes:
            return self.opens <= at < self.closes
        return at >= self.opens or at < self.closes

    def distance_to(self, point: GeoPoint) -> int:
        return distance_m(self.location, point)

    def delivers_to(self, point: GeoPoint) -> bool:
        return self.distance_to(point) <= self.delivery_radius_m


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    name: str
    parent_id: int | None
    sort: int


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    category_id: int
    kind: ProductKind
    name: str
    description: str
    tags: tuple[str, ...]
    image_urls: tuple[str, ...]
    channels: frozenset[Channel]
    listed: bool
    sort: int


@dataclass(frozen=True, slots=True)
class ComboComponent:
    sku_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Sku:
    id: int
    product_id: int
    name: str
    specs: Mapping[str, str]
    price_fen: int
    tracked: bool
    sort: int
    components: tuple[ComboComponent, ...] = ()


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateCategory:
    name: str
    parent_id: int | None = None
    sort: int = 0


@dataclass(frozen=True, slots=True)
class UpdateCategory:
    category_id: int
    name: str | Unset = UNSET
    parent_id: int | Unset | None = UNSET
    sort: int | Unset = UNSET


@dataclass(frozen=True, slots=True)
class NewSku:
    name: str
    price_fen: int
    specs: Mapping[str, str] = field(default_factory=dict)
    tracked: bool | None = None
    components: tuple[ComboComponent, ...] = ()


@dataclass(frozen=True, slots=True)
class CreateProduct:
    category_id: int
    kind: ProductKind
    name: str
    channels: frozenset[Channel]
    skus: tuple[NewSku, ...]
    description: str = ""
    tags: tuple[str, ...] = ()
    image_urls: tuple[str, ...] = ()
    listed: bool = True
    sort: int = 0


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    product_id: int
    category_id: int | Unset = UNSET
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    tags: tuple[str, ...] | Unset = UNSET
    image_urls: tuple[str, ...] | Unset = UNSET
    channels: frozenset[Channel] | Unset = UNSET
    sort: int | Unset = UNSET


@dataclass(frozen=True, slots=True)
class SetProductListed:
    product_id: int
    listed: bool


@dataclass(frozen=True, slots=True)
class CreateSku:
    product_id: int
    sku: NewSku


@dataclass(frozen=True, slots=True)
class UpdateSku:
    sku_id: int
    name: str | Unset = UNSET
    specs: Mapping[str, str] | Unset = UNSET
    price_fen: int | Unset = UNSET
    components: tuple[ComboComponent, ...] | Unset = UNSET


@dataclass(frozen=True, slots=True)
class SetStorePrice:
    store_id: int
    sku_id: int
    price_fen: int | None  # None removes the override: the base price applies again


# --- rules ----------------------------------------------------------------------------

_URL = re.compile(r"^https://[^\s]+$")


def clean_name(value: str, field: Sequence[str] = ("name",)) -> str:
    name = value.strip()
    if not name:
        raise DomainError(ErrorCode.REQUIRED, field=field)
    if len(name) > NAME_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=NAME_MAX)
    return name


def clean_description(value: str) -> str:
    text = value.strip()
    if len(text) > DESCRIPTION_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["description"], max=DESCRIPTION_MAX)
    return text


def clean_tags(values: Iterable[str]) -> tuple[str, ...]:
    tags: list[str] = []
    for raw in values:
        tag = raw.strip()
        if not tag:
            raise DomainError(ErrorCode.REQUIRED, field=["tags"])
        if len(tag) > TAG_MAX:
            raise DomainError(ErrorCode.TOO_LONG, field=["tags"], max=TAG_MAX)
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["tags"], min=0, max=TAGS_MAX)
    return tuple(tags)


def clean_image_urls(values: Iterable[str]) -> tuple[str, ...]:
    urls = tuple(v.strip() for v in values)
    if len(urls) > IMAGES_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["imageUrls"], min=0, max=IMAGES_MAX)
    # The mini-program loads images over https only; the path names the address at fault.
    for n, url in enumerate(urls):
        if len(url) > URL_MAX or not _URL.match(url):
            raise DomainError(ErrorCode.INVALID_URL, field=["imageUrls", str(n)])
    return urls


def check_price(fen: int, field: Sequence[str] = ("priceFen",)) -> int:
    if fen < 0:
        raise DomainError(ErrorCode.NEGATIVE_PRICE, field=field)
    if fen > PRICE_MAX_FEN:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=field, min=0, max=PRICE_MAX_FEN)
    return fen


def check_channels(channels: frozenset[Channel]) -> frozenset[Channel]:
    if not channels:
        raise DomainError(ErrorCode.CHANNEL_REQUIRED, field=["channels"])
    return channels


def clean_specs(specs: Mapping[str, str], field: Sequence[str] = ("specs",)) -> dict[str, str]:
    if len(specs) > SPEC_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=field, min=0, max=SPEC_MAX)
    cleaned: dict[str, str] = {}
    for key, value in specs.items():
        k, v = key.strip(), value.strip()
        if not k or not v:
            raise DomainError(ErrorCode.REQUIRED, field=field)
        if len(k) > TAG_MAX or len(v) > TAG_MAX:
            raise DomainError(ErrorCode.TOO_LONG, field=field, max=TAG_MAX)
        cleaned[k] = v
    return cleaned


def sku_is_tracked(kind: ProductKind, requested: bool | None) -> bool:
    """Retail pre-made dishes are counted by default; dishes and combos are made to order."""
    if requested is not None:
        return requested
    return kind is ProductKind.RETAIL


def check_combo_components(
    kind: ProductKind,
    components: Sequence[ComboComponent],
    component_skus: Mapping[int, tuple[Sku, ProductKind]],
    field: Sequence[str] = ("components",),
) -> tuple[ComboComponent, ...]:
    """A combo is made of at least one SKU of other, non-combo products; others have none.

    ``component_skus`` maps each referenced SKU id that exists to its SKU and product kind.
    """
    if kind is not ProductKind.COMBO:
        if components:
            raise DomainError(ErrorCode.INVALID_COMBO_COMPONENT, field=field)
        return ()
    if not components:
        raise DomainError(ErrorCode.COMBO_NEEDS_COMPONENTS, field=field)
    if len(components) > COMBO_COMPONENTS_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=field, min=1, max=COMBO_COMPONENTS_MAX)
    merged: dict[int, int] = {}
    for item in components:
        found = component_skus.get(item.sku_id)
        if found is None or found[1] is ProductKind.COMBO:
            raise DomainError(ErrorCode.INVALID_COMBO_COMPONENT, field=field)
        if not 1 <= item.quantity <= 99:
            raise DomainError(ErrorCode.OUT_OF_RANGE, field=[*field, "quantity"], min=1, max=99)
        merged[item.sku_id] = merged.get(item.sku_id, 0) + item.quantity
    return tuple(ComboComponent(sku_id, qty) for sku_id, qty in merged.items())


def check_no_category_cycle(
    category_id: int, new_parent_id: int | None, parents: Mapping[int, int | None]
) -> None:
    """Moving a category under itself or one of its descendants would make a loop."""
    node = new_parent_id
    seen: set[int] = set()
    while node is not None and node not in seen:
        if node == category_id:
            raise DomainError(ErrorCode.CATEGORY_CYCLE, field=["parentId"])
        seen.add(node)
        node = parents.get(node)


def in_a_cart(sku: Sku | None, product: Product | None) -> bool:
    """Whether a SKU can go into a cart: it and its product exist and the product is listed
    (an unlisted one is a draft or retired, as if it did not exist)."""
    return sku is not None and product is not None and product.listed


def store_price(sku: Sku, override_fen: int | None) -> int:
    """What a SKU costs at one store: the store's override, else the chain's base price."""
    return sku.price_fen if override_fen is None else override_fen


def stores_by_distance(stores: Iterable[Store], near: GeoPoint) -> list[tuple[Store, int]]:
    """Stores with their distance from ``near``, nearest first, ties by id."""
    ranked = [(store, store.distance_to(near)) for store in stores]
    ranked.sort(key=lambda pair: (pair[1], pair[0].id))
    return ranked


def menu_sections(
    categories: Iterable[Category], products: Iterable[Product]
) -> list[tuple[Category, list[Product]]]:
    """Products grouped under their categories, in the order a menu page shows them.

    Categories sort by their parent's position first, so subcategories stay together;
    categories with nothing to sell are left out.
    """
    by_id = {c.id: c for c in categories}
    grouped: dict[int, list[Product]] = {}
    for product in products:
        if product.category_id in by_id:
            grouped.setdefault(product.category_id, []).append(product)

    def position(category: Category) -> tuple[int, int, int, int]:
        parent = by_id.get(category.parent_id) if category.parent_id is not None else None
        if parent is None:
            return (category.sort, category.id, -1, 0)
        return (parent.sort, parent.id, category.sort, category.id)

    ordered = sorted((by_id[cid] for cid in grouped), key=position)
    return [(c, grouped[c.id]) for c in ordered]
