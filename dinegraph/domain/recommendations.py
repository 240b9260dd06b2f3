"""猜你喜欢: the recommendation model, pure (no I/O).

Built in the background from orders and behaviour events (``build_model``): item-to-item
neighbours from implicit feedback (cosine over members' weighted histories, plus how often
two dishes share one order) and popularity per store and meal period. Served per request
(``recommend``) from those precomputed tables, blended with the member's tag affinity, the
meal period and the weather, each item carrying the reason that ranked it highest.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum

import numpy as np
from scipy import sparse

from dinegraph.domain.catalog import Category, Product


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


# --- serving -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """A member's (or device's) recent history: weight per product, recency-weighted."""

    products: Mapping[int, float] = field(default_factory=dict)
    last_order: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.products


HALF_LIFE_DAYS = 30.0


def profile_of(
    baskets: Iterable[Basket], interactions: Iterable[Interaction], now: datetime
) -> Profile:
    """The weight of each product in a history, halving every HALF_LIFE_DAYS."""
    weights: dict[int, float] = defaultdict(float)
    latest: Basket | None = None

    def decay(at: datetime) -> float:
        days = max((now - at).total_seconds() / 86400, 0.0)
        return float(0.5 ** (days / HALF_LIFE_DAYS))

    for basket in baskets:
        for product_id in set(basket.product_ids):
            weights[product_id] += SIGNAL_WEIGHT[Signal.ORDER] * decay(basket.at)
        if latest is None or basket.at > latest.at:
            latest = basket
    for event in interactions:
        weights[event.product_id] += SIGNAL_WEIGHT[event.signal] * decay(event.at)
    return Profile(dict(weights), latest.product_ids if latest else ())


@dataclass(frozen=True, slots=True)
class Request:
    scene: Scene
    store_id: int
    period: MealPeriod
    weather: Weather | None = None
    product_id: int | None = None  # PRODUCT: the product on screen
    cart: frozenset[int] = frozenset()  # CART: what is in it already
    first: int = 10


@dataclass(frozen=True, slots=True)
class Recommended:
    product_id: int
    score: float
    reason: Reason


@dataclass(frozen=True, slots=True)
class Blend:
    """How much each signal counts; ``cf_only``/``popularity_only`` are the bench's baselines."""

    cf: float = 1.0
    taste: float = 0.35
    again: float = 0.5
    popular: float = 0.3
    weather: float = 0.25


BLEND = Blend()
CF_ONLY = Blend(cf=1.0, taste=0.0, again=0.0, popular=0.0, weather=0.0)
POPULARITY_ONLY = Blend(cf=0.0, taste=0.0, again=0.0, popular=1.0, weather=0.0)
SEEDS = 20  # history items whose neighbours are looked up


def recommend(
    request: Request,
    model: Model,
    profile: Profile,
    available: Mapping[int, Product],
    features: Mapping[int, frozenset[str]],
    *,
    blend: Blend = BLEND,
) -> list[Recommended]:
    """The ``first`` products to show, best first, each with the reason that ranked it.

    Only products in ``available`` (on sale at the store on the channel now) are ever
    returned. With no history and no neighbours (a new member, a new product) the store's
    popularity in the meal period decides, then the chain's.
    """
    seeds = _seeds(request, profile)
    cf: dict[int, float] = defaultdict(float)
    cf_reason: dict[int, tuple[float, Reason]] = {}
    names = {p.id: p.name for p in available.values()}
    for seed, weight in seeds:
        for n in model.neighbours.get(seed, ()):
            gain = weight * n.score
            cf[n.product_id] += gain
            if n.product_id not in cf_reason or gain > cf_reason[n.product_id][0]:
                kind = ReasonKind.BOUGHT_TOGETHER if n.together else ReasonKind.ALSO_LIKED
                cf_reason[n.product_id] = (gain, Reason(kind, names.get(seed, "")))
    cf_top = max(cf.values(), default=0.0) or 1.0
    affinity = _tag_affinity(profile, features)
    again_top = max(profile.products.values(), default=0.0) or 1.0
    popular = _popular_scores(model, request)
    excluded = set(request.cart)
    if request.product_id is not None:
        excluded.add(request.product_id)
    if request.scene is Scene.ORDER_DONE:
        excluded.update(profile.last_order)
    scored = _Scores(cf, cf_reason, cf_top, affinity, again_top, popular)
    ranked: list[Recommended] = []
    for product_id in available:
        if product_id in excluded:
            continue
        parts = scored.parts(request, profile, blend, product_id, features, names)
        if not parts:
            continue
        total = sum(score for score, _ in parts)
        best = max(parts, key=lambda p: p[0])[1]
        ranked.append(Recommended(product_id, round(total, 6), best))
    ranked.sort(key=lambda r: (-r.score, r.product_id))
    return ranked[: request.first]


@dataclass(frozen=True, slots=True)
class _Scores:
    """The signals of one request, ready to score each candidate product."""

    cf: Mapping[int, float]
    cf_reason: Mapping[int, tuple[float, Reason]]
    cf_top: float
    affinity: Mapping[str, float]
    again_top: float
    popular: Mapping[int, tuple[float, Reason]]

    def parts(
        self,
        request: Request,
        profile: Profile,
        blend: Blend,
        product_id: int,
        features: Mapping[int, frozenset[str]],
        names: Mapping[int, str],
    ) -> list[tuple[float, Reason]]:
        """Each signal's share of a product's score, with the reason it would give."""
        parts: list[tuple[float, Reason]] = []
        if product_id in self.cf:
            parts.append(
                (blend.cf * self.cf[product_id] / self.cf_top, self.cf_reason[product_id][1])
            )
        taste = taste_features(features.get(product_id, frozenset()))
        if self.affinity and taste:
            tag, share = max(
                ((t, self.affinity.get(t, 0.0)) for t in sorted(taste)), key=lambda x: x[1]
            )
            if share > 0:
                parts.append((blend.taste * share, Reason(ReasonKind.TASTE, tag)))
        if request.scene is Scene.HOME and product_id in profile.products:
            share = profile.products[product_id] / self.again_top
            parts.append(
                (blend.again * share, Reason(ReasonKind.ORDER_AGAIN, names.get(product_id, "")))
            )
        if product_id in self.popular:
            score, reason = self.popular[product_id]
            parts.append((blend.popular * score, reason))
        weather = weather_reason(request.weather, features.get(product_id, frozenset()))
        if weather is not None:
            parts.append((blend.weather, weather))
        return [p for p in parts if p[0] > 0]


def _seeds(request: Request, profile: Profile) -> list[tuple[int, float]]:
    """The products whose neighbours count: the one on screen, the cart, the last order,
    then the member's history."""
    if request.scene is Scene.PRODUCT and request.product_id is not None:
        return [(request.product_id, 1.0)]
    if request.scene is Scene.CART and request.cart:
        return [(p, 1.0) for p in sorted(request.cart)]
    if request.scene is Scene.ORDER_DONE and profile.last_order:
        return [(p, 1.0) for p in profile.last_order]
    top = max(profile.products.values(), default=0.0) or 1.0
    ranked = sorted(profile.products.items(), key=lambda kv: (-kv[1], kv[0]))[:SEEDS]
    return [(p, w / top) for p, w in ranked]


def _tag_affinity(profile: Profile, features: Mapping[int, frozenset[str]]) -> dict[str, float]:
    """Share of the member's history carrying each taste tag (1.0: every dish they had)."""
    total = sum(profile.products.values())
    if total <= 0:
        return {}
    tags: dict[str, float] = defaultdict(float)
    for product_id, weight in profile.products.items():
        for tag in taste_features(features.get(product_id, frozenset())):
            tags[tag] += weight
    return {tag: w / total for tag, w in tags.items()}


def _popular_scores(model: Model, request: Request) -> dict[int, tuple[float, Reason]]:
    """Popularity at the store in the meal period, filled in from the store all day, then
    the chain in the period and all day (cold start for a new store or product)."""
    found: dict[int, tuple[float, Reason]] = {}
    keys: list[tuple[tuple[int, MealPeriod | None], Reason, float]] = [
        ((request.store_id, request.period), Reason(ReasonKind.POPULAR_NOW, request.period), 1.0),
        ((request.store_id, None), Reason(ReasonKind.POPULAR), 0.9),
        ((0, request.period), Reason(ReasonKind.POPULAR_NOW, request.period), 0.8),
        ((0, None), Reason(ReasonKind.POPULAR), 0.7),
    ]
    for key, reason, factor in keys:
        for product_id, score in model.popularity.get(key, ()):
            if product_id not in found:
                found[product_id] = (score * factor, reason)
    return found
