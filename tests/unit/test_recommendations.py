"""The recommendation model without I/O: neighbours, popularity, the blend and its reasons."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from dinegraph.domain.behaviour import Actor
from dinegraph.domain.catalog import Category, Channel, Product, ProductKind, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.recommendation_blend import (
    BLEND,
    CF_ONLY,
    Profile,
    Request,
    _with_reasons,
    profile_of,
    recommend,
)
from dinegraph.domain.recommendations import (
    MAX_FIRST,
    Asked,
    Basket,
    Interaction,
    MealPeriod,
    Model,
    Reason,
    ReasonKind,
    Scene,
    Signal,
    Weather,
    build_model,
    check_ask,
    meal_period,
    nearest_serving,
    product_features,
    serves,
    weather_reason,
)
from dinegraph.domain.services.recommendations import Recommender, recommend_for

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
SOUPS = Category(1, "汤品炖盅", None, 0)
HOT = Category(2, "湘味辣菜", None, 0)
RICE = Category(3, "主食", None, 0)
DRINKS = Category(4, "饮品甜点", None, 0)
CATEGORIES = {c.id: c for c in (SOUPS, HOT, RICE, DRINKS)}


def _product(pid: int, name: str, category: Category, *tags: str) -> Product:
    return Product(
        pid, category.id, ProductKind.DISH, name, "", tags, (), frozenset(Channel), True, 0
    )


RIBS = _product(1, "糖醋排骨", RICE, "酸甜")
FRIED_RICE = _product(2, "扬州炒饭", RICE)
LEMON_TEA = _product(3, "冻柠茶", DRINKS, "饮品")
BEEF = _product(4, "小炒黄牛肉", HOT, "辣")
FISH = _product(5, "剁椒鱼头", HOT, "辣")
SOUP = _product(6, "花胶鸡汤", SOUPS, "滋补")
NEW_DISH = _product(7, "新品", RICE, "新品")
PRODUCTS = {p.id: p for p in (RIBS, FRIED_RICE, LEMON_TEA, BEEF, FISH, SOUP, NEW_DISH)}
FEATURES = {p.id: product_features(p, CATEGORIES) for p in PRODUCTS.values()}


def _basket(member: str, *products: Product, store: int = 1, days_ago: int = 5) -> Basket:
    return Basket(
        member,
        store,
        MealPeriod.LUNCH,
        tuple(p.id for p in products),
        NOW - timedelta(days=days_ago),
    )


HISTORY = [
    *(_basket(f"m:{n}", RIBS, FRIED_RICE, LEMON_TEA) for n in range(10)),
    *(_basket(f"m:{n}", BEEF, FISH) for n in range(10, 16)),
    *(_basket(f"m:{n}", BEEF, FRIED_RICE) for n in range(16, 18)),
    _basket("m:99", SOUP),
]


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (time(8, 0), MealPeriod.BREAKFAST),
        (time(10, 30), MealPeriod.LUNCH),
        (time(13, 59), MealPeriod.LUNCH),
        (time(15, 0), MealPeriod.AFTERNOON),
        (time(18, 30), MealPeriod.DINNER),
        (time(21, 0), MealPeriod.LATE_NIGHT),
        (time(2, 0), MealPeriod.LATE_NIGHT),
    ],
)
def test_the_meal_period_follows_the_stores_local_time(at: time, period: MealPeriod) -> None:
    assert meal_period(at) is period


def test_rain_and_cold_bring_hot_soup_and_heat_brings_drinks() -> None:
    assert weather_reason(Weather.RAIN, FEATURES[SOUP.id]) == Reason(ReasonKind.RAINY_DAY)
    assert weather_reason(Weather.COLD, FEATURES[SOUP.id]) == Reason(ReasonKind.COLD_DAY)
    assert weather_reason(Weather.HOT, FEATURES[LEMON_TEA.id]) == Reason(ReasonKind.HOT_DAY)
    assert weather_reason(Weather.HOT, FEATURES[SOUP.id]) is None
    assert weather_reason(None, FEATURES[SOUP.id]) is None


def test_neighbours_come_from_co_purchases_and_say_so() -> None:
    model = build_model(HISTORY)
    ribs = model.neighbours[RIBS.id]
    assert {n.product_id for n in ribs[:2]} == {FRIED_RICE.id, LEMON_TEA.id}
    assert all(n.together for n in ribs[:2])
    assert BEEF.id not in {n.product_id for n in model.neighbours[LEMON_TEA.id]}
    assert SOUP.id not in {n.product_id for n in ribs}  # never bought with it


def test_popularity_is_kept_per_store_and_meal_period_and_for_the_chain() -> None:
    model = build_model([*HISTORY, _basket("m:50", SOUP, store=2)])
    at_store_1 = dict(model.popularity[(1, MealPeriod.LUNCH)])
    assert max(at_store_1, key=at_store_1.__getitem__) == FRIED_RICE.id
    assert dict(model.popularity[(2, None)]) == {SOUP.id: 1.0}
    assert SOUP.id in dict(model.popularity[(0, MealPeriod.LUNCH)])


def test_a_product_page_shows_what_is_bought_with_it() -> None:
    model = build_model(HISTORY)
    request = Request(Scene.PRODUCT, 1, MealPeriod.LUNCH, product_id=RIBS.id, first=2)
    shown = recommend(request, model, Profile(), PRODUCTS, FEATURES)
    assert {r.product_id for r in shown} == {FRIED_RICE.id, LEMON_TEA.id}
    assert shown[0].reason == Reason(ReasonKind.BOUGHT_TOGETHER, "糖醋排骨")


def test_only_what_the_store_sells_now_is_recommended() -> None:
    model = build_model(HISTORY)
    available = {pid: p for pid, p in PRODUCTS.items() if pid != FRIED_RICE.id}
    request = Request(Scene.PRODUCT, 1, MealPeriod.LUNCH, product_id=RIBS.id, first=10)
    shown = recommend(request, model, Profile(), available, FEATURES)
    assert shown and FRIED_RICE.id not in {r.product_id for r in shown}
    assert {r.product_id for r in shown} <= set(available) - {RIBS.id}


def test_the_cart_scene_leaves_out_what_is_in_the_cart() -> None:
    model = build_model(HISTORY)
    cart = frozenset({RIBS.id, FRIED_RICE.id})
    request = Request(Scene.CART, 1, MealPeriod.LUNCH, cart=cart, first=3)
    shown = recommend(request, model, Profile(), PRODUCTS, FEATURES)
    assert shown[0].product_id == LEMON_TEA.id
    assert not cart & {r.product_id for r in shown}


def test_a_spice_lover_is_told_why() -> None:
    model = build_model(HISTORY)
    profile = profile_of([_basket("m:10", BEEF, days_ago=2)], (), NOW)
    chicken = _product(8, "辣子鸡", HOT, "辣")  # new: nobody has bought it yet
    products = {**PRODUCTS, chicken.id: chicken}
    features = {**FEATURES, chicken.id: product_features(chicken, CATEGORIES)}
    request = Request(Scene.HOME, 1, MealPeriod.LUNCH, first=10)
    shown = recommend(request, model, profile, products, features)
    assert shown[0].product_id == FISH.id
    assert shown[0].reason == Reason(ReasonKind.BOUGHT_TOGETHER, "小炒黄牛肉")
    assert shown[1].reason == Reason(ReasonKind.ORDER_AGAIN, "小炒黄牛肉")
    new = next(r for r in shown if r.product_id == chicken.id)
    assert new.reason.kind is ReasonKind.TASTE and new.reason.subject in {"辣", "湘味辣菜"}
    assert NEW_DISH.id not in {r.product_id for r in shown}  # nothing speaks for it


def test_a_new_member_falls_back_to_the_stores_popular_dishes() -> None:
    model = build_model(HISTORY)
    request = Request(Scene.HOME, 1, MealPeriod.LUNCH, first=3)
    shown = recommend(request, model, Profile(), PRODUCTS, FEATURES)
    assert [r.product_id for r in shown][:1] == [FRIED_RICE.id]
    assert all(r.reason.kind is ReasonKind.POPULAR_NOW for r in shown)
    assert shown[0].reason.subject == MealPeriod.LUNCH


def test_a_new_store_falls_back_to_the_chains_popularity() -> None:
    model = build_model(HISTORY)
    request = Request(Scene.HOME, 42, MealPeriod.LUNCH, first=3)
    shown = recommend(request, model, Profile(), PRODUCTS, FEATURES)
    assert len(shown) == 3 and shown[0].product_id == FRIED_RICE.id


def test_rain_lifts_hot_soup_for_a_visitor() -> None:
    model = build_model(HISTORY)
    dry = Request(Scene.HOME, 1, MealPeriod.LUNCH, first=10)
    wet = Request(Scene.HOME, 1, MealPeriod.LUNCH, weather=Weather.RAIN, first=10)
    before = [r.product_id for r in recommend(dry, model, Profile(), PRODUCTS, FEATURES)]
    after = recommend(wet, model, Profile(), PRODUCTS, FEATURES)
    assert [r.product_id for r in after].index(SOUP.id) < before.index(SOUP.id)
    assert Reason(ReasonKind.RAINY_DAY) in {r.reason for r in after}


def test_a_page_varies_its_reasons_and_names_the_weather_it_was_given() -> None:
    tea = Reason(ReasonKind.BOUGHT_TOGETHER, "港式冻柠茶")
    taste = Reason(ReasonKind.TASTE, "粤菜")
    rain = Reason(ReasonKind.RAINY_DAY)
    ranked = [
        (1, 0.9, [(0.8, tea), (0.1, taste)]),
        (2, 0.8, [(0.7, tea), (0.1, taste)]),
        (3, 0.7, [(0.6, tea), (0.1, taste)]),  # tea said twice already: its taste instead
        (4, 0.6, [(0.5, tea), (0.1, rain)]),  # the page asked about rain
        (5, 0.5, [(0.5, tea)]),  # nothing else speaks for it: tea again
    ]
    shown = _with_reasons(ranked)
    assert [r.product_id for r in shown] == [1, 2, 3, 4, 5]
    assert [r.reason for r in shown] == [tea, tea, taste, rain, tea]
    assert [r.score for r in shown] == [0.9, 0.8, 0.7, 0.6, 0.5]


def test_an_empty_history_and_model_recommend_nothing_rather_than_fail() -> None:
    model = build_model([])
    request = Request(Scene.HOME, 1, MealPeriod.LUNCH, first=5)
    assert recommend(request, model, Profile(), PRODUCTS, FEATURES) == []
    assert recommend(request, model, Profile(), {}, FEATURES, blend=CF_ONLY) == []


def test_events_count_less_than_orders_and_fade_with_time() -> None:
    profile = profile_of(
        [_basket("m:1", RIBS, days_ago=0)],
        [
            Interaction("m:1", BEEF.id, Signal.VIEW_PRODUCT, NOW),
            Interaction("m:1", FISH.id, Signal.FAVOURITE, NOW - timedelta(days=60)),
        ],
        NOW,
    )
    assert profile.products[RIBS.id] == pytest.approx(1.0)
    assert profile.products[BEEF.id] == pytest.approx(0.15)
    assert profile.products[FISH.id] == pytest.approx(0.2)  # 0.8, halved twice
    assert profile.last_order == (RIBS.id,)


def test_order_done_suggests_what_goes_with_the_last_order_but_not_itself() -> None:
    model = build_model(HISTORY)
    profile = profile_of([_basket("m:1", RIBS, FRIED_RICE, days_ago=0)], (), NOW)
    request = Request(Scene.ORDER_DONE, 1, MealPeriod.LUNCH, first=3)
    shown = recommend(request, model, profile, PRODUCTS, FEATURES, blend=BLEND)
    assert shown[0].product_id == LEMON_TEA.id
    assert not {RIBS.id, FRIED_RICE.id} & {r.product_id for r in shown}


def _store(id: int, lat: float, *, is_open: bool = True, radius_m: int = 3000) -> Store:
    return Store(
        id, f"S{id}", f"店{id}", "深圳", GeoPoint(lat, 114.0), radius_m, time(0), time(0), is_open
    )


def test_a_request_is_checked_before_anything_is_read() -> None:
    fine: dict[str, Any] = dict(
        scene=Scene.HOME, first=10, lat=None, lng=None, device_id=None, cart_size=0
    )
    assert check_ask(**fine, has_product=False) == Asked(None, None)
    refusals: list[tuple[dict[str, Any], ErrorCode, list[str]]] = [
        ({"first": 0}, ErrorCode.OUT_OF_RANGE, ["first"]),
        ({"first": MAX_FIRST + 1}, ErrorCode.OUT_OF_RANGE, ["first"]),
        ({"lat": 22.5}, ErrorCode.INVALID_COORDINATES, ["context"]),
        ({"cart_size": MAX_FIRST + 1}, ErrorCode.OUT_OF_RANGE, ["cart"]),
        ({"scene": Scene.PRODUCT}, ErrorCode.REQUIRED, ["productId"]),
        ({"device_id": "not a device id!"}, ErrorCode.INVALID_INPUT, ["deviceId"]),
    ]
    for bad, code, field in refusals:
        with pytest.raises(DomainError) as refused:
            check_ask(**{**fine, **bad}, has_product=False)
        assert (refused.value.code, refused.value.field) == (code, field), bad


def test_without_a_store_named_the_nearest_open_store_serving_there_is_chosen() -> None:
    here = GeoPoint(22.50, 114.0)
    near_closed = _store(1, 22.501, is_open=False)
    near_small = _store(2, 22.505, radius_m=100)  # 550 m away, delivers within 100 m
    farther = _store(3, 22.51)
    stores = [farther, near_small, near_closed]
    assert nearest_serving(stores, Channel.PICKUP, here) == near_small
    assert nearest_serving(stores, Channel.DELIVERY, here) == farther
    assert not serves(near_small, Channel.DELIVERY, here) and serves(
        near_small, Channel.PICKUP, here
    )
    assert nearest_serving([near_closed], Channel.PICKUP, here) is None


class _SlowSource:
    """A fake model store whose reads take a moment, counting the model loads."""

    def __init__(self, model: Model) -> None:
        self.stored = model
        self.loads = 0

    async def current_version(self) -> int | None:
        await asyncio.sleep(0.01)
        return 1

    async def load_model(self, version: int) -> Model:
        self.loads += 1
        await asyncio.sleep(0.01)
        return self.stored

    async def history_of(
        self, actor: Actor, now: datetime
    ) -> tuple[list[Basket], list[Interaction]]:
        return [], []


async def test_requests_arriving_while_the_model_loads_wait_for_it_not_for_nothing() -> None:
    source = _SlowSource(build_model(HISTORY))
    recommender = Recommender()
    models = await asyncio.gather(*(recommender.model(source) for _ in range(5)))
    assert all(m is source.stored for m in models)
    assert source.loads == 1
    request = Request(Scene.HOME, 1, MealPeriod.LUNCH, first=3)
    starting = Recommender()
    shown = await asyncio.gather(
        *(
            recommend_for(
                request,
                actor=None,
                source=source,
                recommender=starting,
                available=PRODUCTS,
                categories=CATEGORIES,
                now=NOW,
            )
            for _ in range(3)
        )
    )
    assert all(len(s) == 3 for s in shown)  # a new server's first visitors see popularity
