"""猜你喜欢 per request, pure (no I/O): the precomputed model blended with the member's
history (neighbours of what they had, their taste tags, dishes they order again), the
store's popularity in the meal period and the weather, over what the store sells now; each
product carries the reason that counted most, varied across a page (``_with_reasons``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dinegraph.domain.catalog import Product
from dinegraph.domain.recommendations import (
    SIGNAL_WEIGHT,
    Basket,
    Interaction,
    MealPeriod,
    Model,
    Reason,
    ReasonKind,
    Scene,
    Signal,
    Weather,
    taste_features,
    weather_reason,
)


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
    ranked: list[tuple[int, float, list[tuple[float, Reason]]]] = []
    for product_id in available:
        if product_id in excluded:
            continue
        parts = scored.parts(request, profile, blend, product_id, features, names)
        if not parts:
            continue
        ranked.append((product_id, round(sum(score for score, _ in parts), 6), parts))
    ranked.sort(key=lambda r: (-r[1], r[0]))
    return _with_reasons(ranked[: request.first])


WEATHER_REASONS = frozenset({ReasonKind.RAINY_DAY, ReasonKind.COLD_DAY, ReasonKind.HOT_DAY})
REASON_REPEATS = 2  # how often one reason is shown on a page while a product has another


def _with_reasons(
    ranked: Iterable[tuple[int, float, list[tuple[float, Reason]]]],
) -> list[Recommended]:
    """Each product's reason, in page order: the weather the page was given when it speaks for
    the product (雨天热汤 is what the page asked about), else the strongest signal whose
    wording the page has not shown ``REASON_REPEATS`` times, else the strongest. A page of
    six dishes all "常与港式冻柠茶一起购买" tells the member less than the signals know."""
    shown: Counter[Reason] = Counter()
    chosen: list[Recommended] = []
    for product_id, score, parts in ranked:
        ordered = [reason for _, reason in sorted(parts, key=lambda p: -p[0])]
        weather = [r for r in ordered if r.kind in WEATHER_REASONS]
        fresh = [r for r in ordered if shown[r] < REASON_REPEATS]
        reason = (weather or fresh or ordered)[0]
        shown[reason] += 1
        chosen.append(Recommended(product_id, score, reason))
    return chosen


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
