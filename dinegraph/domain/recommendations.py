"""猜你喜欢: the recommendation model's words and its build, pure (no I/O).

Built in the background from orders and behaviour events (``build_model``): item-to-item
neighbours from implicit feedback (cosine over members' weighted histories, plus how often
two dishes share one order) and popularity per store and meal period. Served per request
from those precomputed tables by ``domain.recommendation_blend``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum

import numpy as np
from scipy import sparse

from dinegraph.domain.behaviour import check_device_id
from dinegraph.domain.catalog import Category, Channel, Product, Store, stores_by_distance
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint

MAX_FIRST = 50
"""The most recommendations one request may ask for, and the most cart items it may name."""


class Scene(StrEnum):
    HOME = "HOME"
    PRODUCT = "PRODUCT"
    CART = "CART"
    ORDER_DONE = "ORDER_DONE"


class Weather(StrEnum):
    CLEAR = "CLEAR"
    CLOUDY = "CLOUDY"
    RAIN = "RAIN"
    SNOW = "SNOW"
    HOT = "HOT"
    COLD = "COLD"


class MealPeriod(StrEnum):
    BREAKFAST = "BREAKFAST"
    LUNCH = "LUNCH"
    AFTERNOON = "AFTERNOON"
    DINNER = "DINNER"
    LATE_NIGHT = "LATE_NIGHT"


class ReasonKind(StrEnum):
    BOUGHT_TOGETHER = "BOUGHT_TOGETHER"  # 常与{name}一起购买
    ALSO_LIKED = "ALSO_LIKED"  # 喜欢{name}的人也喜欢
    TASTE = "TASTE"  # 你常点{tag}
    ORDER_AGAIN = "ORDER_AGAIN"  # 你点过的{name}
    RAINY_DAY = "RAINY_DAY"  # 雨天热汤
    COLD_DAY = "COLD_DAY"
    HOT_DAY = "HOT_DAY"
    POPULAR_NOW = "POPULAR_NOW"  # {period}人气
    POPULAR = "POPULAR"  # 本店人气


@dataclass(frozen=True, slots=True)
class Reason:
    kind: ReasonKind
    subject: str = ""  # the dish, tag or meal period the reason names


@dataclass(frozen=True, slots=True)
class Asked:
    """A recommendations request, checked: where the member is, and the device if anonymous."""

    near: GeoPoint | None
    device: str | None


def check_ask(
    *,
    scene: Scene,
    first: int,
    lat: float | None,
    lng: float | None,
    device_id: str | None,
    cart_size: int,
    has_product: bool,
) -> Asked:
    """Malformed input is a coded error, before anything is read."""
    if not 1 <= first <= MAX_FIRST:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["first"], min=1, max=MAX_FIRST)
    if (lat is None) != (lng is None):
        raise DomainError(ErrorCode.INVALID_COORDINATES, field=["context"])
    near = GeoPoint.checked(lat, lng, "context") if lat is not None and lng is not None else None
    device = check_device_id(device_id, ["deviceId"])
    if cart_size > MAX_FIRST:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["cart"], min=0, max=MAX_FIRST)
    if scene is Scene.PRODUCT and not has_product:
        raise DomainError(ErrorCode.REQUIRED, field=["productId"])
    return Asked(near, device)


def serves(store: Store, channel: Channel, near: GeoPoint | None) -> bool:
    """Whether the store can offer its dishes there: for delivery, only if it delivers there."""
    return not (channel is Channel.DELIVERY and near is not None and not store.delivers_to(near))


def nearest_serving(stores: Iterable[Store], channel: Channel, near: GeoPoint) -> Store | None:
    """Where to recommend from when no store is named: the nearest open store serving there."""
    ranked = stores_by_distance((s for s in stores if s.is_open and serves(s, channel, near)), near)
    return ranked[0][0] if ranked else None


def meal_period(at: time) -> MealPeriod:
    """The meal a store's local time falls in (早茶 before 10:30, 午市 to 14:00, ...)."""
    if time(5, 0) <= at < time(10, 30):
        return MealPeriod.BREAKFAST
    if at < time(5, 0) or at >= time(21, 0):
        return MealPeriod.LATE_NIGHT
    if at < time(14, 0):
        return MealPeriod.LUNCH
    if at < time(17, 0):
        return MealPeriod.AFTERNOON
    return MealPeriod.DINNER


# Tags that say how a dish is marketed, not how it tastes: no member "often orders 招牌".
MARKETING_TAGS = frozenset(
    {"招牌", "人气", "限定", "新品", "超值", "堂食", "预制菜", "双人", "家庭", "宴请", "礼盒"}
)
# What the weather makes welcome, matched against a product's tags and category names.
WARMING = frozenset({"汤品炖盅", "滋补炖盅", "老火靓汤", "滋补", "即热", "汤"})
COOLING = frozenset({"饮品甜点", "茶饮果汁", "糖水甜品", "饮品", "甜品", "凉菜", "清润"})


def weather_reason(weather: Weather | None, features: frozenset[str]) -> Reason | None:
    """Why this weather suits a product (rain or cold → hot soup, heat → drinks), if it does."""
    if weather in (Weather.RAIN, Weather.SNOW) and features & WARMING:
        return Reason(ReasonKind.RAINY_DAY)
    if weather is Weather.COLD and features & WARMING:
        return Reason(ReasonKind.COLD_DAY)
    if weather is Weather.HOT and features & COOLING:
        return Reason(ReasonKind.HOT_DAY)
    return None


def product_features(product: Product, categories: Mapping[int, Category]) -> frozenset[str]:
    """A product's taste features: its tags and the names of its category and parent."""
    names = set(product.tags)
    category = categories.get(product.category_id)
    while category is not None and len(names) < 32:
        names.add(category.name)
        category = categories.get(category.parent_id) if category.parent_id else None
    return frozenset(names)


def taste_features(features: frozenset[str]) -> frozenset[str]:
    return features - MARKETING_TAGS


# --- history -----------------------------------------------------------------------------


class Signal(StrEnum):
    """What a member did with a product, weighted for implicit feedback."""

    ORDER = "ORDER"
    VIEW_PRODUCT = "VIEW_PRODUCT"
    FAVOURITE = "FAVOURITE"
    ADD_TO_CART = "ADD_TO_CART"


SIGNAL_WEIGHT: Mapping[Signal, float] = {
    Signal.ORDER: 1.0,
    Signal.FAVOURITE: 0.8,
    Signal.ADD_TO_CART: 0.5,
    Signal.VIEW_PRODUCT: 0.15,
}


@dataclass(frozen=True, slots=True)
class Basket:
    """One order: who, where, when (store-local meal period) and which products."""

    member: str  # "m:<id>" or "d:<device>"
    store_id: int
    period: MealPeriod
    product_ids: tuple[int, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class Interaction:
    """One behaviour event about a product (a view, favourite, add to cart)."""

    member: str
    product_id: int
    signal: Signal
    at: datetime


@dataclass(frozen=True, slots=True)
class Neighbour:
    product_id: int
    score: float
    together: bool  # often in the same order, not only liked by the same members


@dataclass(frozen=True, slots=True)
class Model:
    """What a build precomputes: top-K neighbours per product, popularity per store (0: the
    chain) and meal period (None: all day), as ranked (product, score) lists."""

    neighbours: Mapping[int, tuple[Neighbour, ...]]
    popularity: Mapping[tuple[int, MealPeriod | None], tuple[tuple[int, float], ...]]


NEIGHBOURS_PER_PRODUCT = 30
POPULAR_PER_KEY = 60
SHRINK = 5.0  # damps similarities resting on a few shared members


def build_model(
    baskets: Sequence[Basket],
    interactions: Iterable[Interaction] = (),
    *,
    k: int = NEIGHBOURS_PER_PRODUCT,
    popular: int = POPULAR_PER_KEY,
) -> Model:
    """Item-kNN with implicit feedback, and popularity, from orders and behaviour events."""
    members: dict[str, int] = {}
    products: dict[int, int] = {}
    weights: dict[tuple[int, int], float] = defaultdict(float)

    def note(member: str, product_id: int, weight: float) -> None:
        row = members.setdefault(member, len(members))
        col = products.setdefault(product_id, len(products))
        weights[(row, col)] += weight

    for basket in baskets:
        for product_id in set(basket.product_ids):
            note(basket.member, product_id, SIGNAL_WEIGHT[Signal.ORDER])
    for event in interactions:
        note(event.member, event.product_id, SIGNAL_WEIGHT[event.signal])
    neighbours: dict[int, tuple[Neighbour, ...]] = {}
    if weights:
        ids = np.array(sorted(products, key=products.__getitem__), dtype=np.int64)
        by_member = _normalised_columns(
            [(r, c, math.log1p(w)) for (r, c), w in weights.items()], len(members), len(products)
        )
        basket_cells = [
            (n, products[p], 1.0)
            for n, basket in enumerate(baskets)
            for p in set(basket.product_ids)
            if p in products
        ]
        by_basket = _normalised_columns(basket_cells, len(baskets), len(products))
        liked = (by_member.T @ by_member).toarray()
        bought = (by_basket.T @ by_basket).toarray()
        support = _co_counts(basket_cells, len(baskets), len(products))
        scores = liked + bought * (support / (support + SHRINK))
        np.fill_diagonal(scores, 0.0)
        together = support >= 2
        for col, product_id in enumerate(ids):
            row = scores[col]
            top = np.argsort(-row, kind="stable")[:k]
            neighbours[int(product_id)] = tuple(
                Neighbour(int(ids[j]), round(float(row[j]), 6), bool(together[col, j]))
                for j in top
                if row[j] > 0
            )
    return Model(neighbours=neighbours, popularity=_popularity(baskets, popular))


def _normalised_columns(
    cells: Sequence[tuple[int, int, float]], rows: int, cols: int
) -> sparse.csr_matrix:
    """A rows × cols matrix whose columns have unit length (so Xᵀ·X is cosine similarity)."""
    if not cells:
        return sparse.csr_matrix((max(rows, 1), cols))
    r, c, v = zip(*cells, strict=True)
    matrix = sparse.csr_matrix((np.array(v), (np.array(r), np.array(c))), shape=(rows, cols))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(matrix @ sparse.diags(1.0 / norms))


def _co_counts(
    cells: Sequence[tuple[int, int, float]], rows: int, cols: int
) -> np.ndarray[tuple[int, int], np.dtype[np.float64]]:
    """How many orders hold both products, for every pair."""
    if not cells:
        return np.zeros((cols, cols))
    r, c, _ = zip(*cells, strict=True)
    binary = sparse.csr_matrix((np.ones(len(r)), (np.array(r), np.array(c))), shape=(rows, cols))
    counts: np.ndarray[tuple[int, int], np.dtype[np.float64]] = (binary.T @ binary).toarray()
    return counts


def _popularity(
    baskets: Iterable[Basket], top: int
) -> dict[tuple[int, MealPeriod | None], tuple[tuple[int, float], ...]]:
    counts: dict[tuple[int, MealPeriod | None], Counter[int]] = defaultdict(Counter)
    for basket in baskets:
        for product_id in set(basket.product_ids):
            keys: tuple[tuple[int, MealPeriod | None], ...] = (
                (basket.store_id, basket.period),
                (basket.store_id, None),
                (0, basket.period),
                (0, None),
            )
            for key in keys:
                counts[key][product_id] += 1
    ranked: dict[tuple[int, MealPeriod | None], tuple[tuple[int, float], ...]] = {}
    for key, counter in counts.items():
        most = counter.most_common(top)
        best = most[0][1] if most else 1
        ranked[key] = tuple((p, round(n / best, 6)) for p, n in most)
    return ranked
