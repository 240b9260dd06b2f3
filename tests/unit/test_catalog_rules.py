"""Rules of the product centre, without any I/O."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
    check_combo_components,
    check_no_category_cycle,
    clean_tags,
    menu_sections,
    sku_is_tracked,
    store_price,
    stores_by_distance,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.domain.money import display_fen
from dinegraph.domain.stock import stock_view


def _store(
    id: int, lat: float, lng: float, opens: time = time(10), closes: time = time(22)
) -> Store:
    return Store(id, f"S{id}", f"店{id}", "深圳", GeoPoint(lat, lng), 3000, opens, closes, True)


def _sku(id: int, *, tracked: bool = False, price: int = 1000) -> Sku:
    return Sku(id, 1, "标准", {}, price, tracked, 0)


def _product(id: int, category: int) -> Product:
    return Product(
        id,
        category,
        ProductKind.DISH,
        f"菜{id}",
        "",
        (),
        (),
        frozenset({Channel.DELIVERY}),
        True,
        0,
    )


def test_distance_between_futian_and_nanshan_is_about_ten_kilometres() -> None:
    assert 10_000 < distance_m(GeoPoint(22.5367, 114.0553), GeoPoint(22.5405, 113.953)) < 11_000


coords = st.tuples(st.floats(22.4, 22.8), st.floats(113.8, 114.4))


@given(st.lists(coords, min_size=1, max_size=30), coords)
def test_stores_come_nearest_first_with_ties_by_id(
    points: list[tuple[float, float]], near: tuple[float, float]
) -> None:
    stores = [_store(i + 1, lat, lng) for i, (lat, lng) in enumerate(points)]
    ranked = stores_by_distance(stores, GeoPoint(*near))
    keys = [(d, s.id) for s, d in ranked]
    assert keys == sorted(keys)
    assert sorted(s.id for s, _ in ranked) == [s.id for s in stores]


def test_a_store_delivers_within_its_radius_only() -> None:
    store = _store(1, 22.5367, 114.0553)
    assert store.delivers_to(GeoPoint(22.54, 114.06))
    assert not store.delivers_to(GeoPoint(22.5405, 113.953))


@pytest.mark.parametrize(
    ("opens", "closes", "at", "expected"),
    [
        (time(10), time(22), time(9, 59), False),
        (time(10), time(22), time(10), True),
        (time(10), time(22), time(22), False),
        (time(11), time(2), time(23, 30), True),
        (time(11), time(2), time(1, 59), True),
        (time(11), time(2), time(2, 0), False),
        (time(11), time(2), time(10, 0), False),
        (time(0), time(0), time(3, 0), True),  # 24小时营业
        (time(6), time(6), time(5, 59), True),
    ],
)
def test_opening_hours_may_run_past_midnight(
    opens: time, closes: time, at: time, expected: bool
) -> None:
    assert _store(1, 22.5, 114.0, opens, closes).in_hours(at) is expected


def test_geo_points_out_of_range_are_refused() -> None:
    with pytest.raises(DomainError) as err:
        GeoPoint.checked(91, 114)
    assert err.value.code is ErrorCode.INVALID_COORDINATES
    with pytest.raises(DomainError):
        GeoPoint.checked(float("nan"), 114)


def test_moving_a_category_into_its_subtree_is_a_cycle() -> None:
    parents = {1: None, 2: 1, 3: 2, 4: None}
    with pytest.raises(DomainError) as err:
        check_no_category_cycle(1, 3, parents)
    assert err.value.code is ErrorCode.CATEGORY_CYCLE
    with pytest.raises(DomainError):
        check_no_category_cycle(2, 2, parents)
    check_no_category_cycle(3, 4, parents)
    check_no_category_cycle(3, None, parents)


def test_combo_components_merge_repeats_and_refuse_combos_and_unknown_skus() -> None:
    known = {
        10: (_sku(10), ProductKind.DISH),
        11: (_sku(11), ProductKind.COMBO),
    }
    merged = check_combo_components(
        ProductKind.COMBO, [ComboComponent(10, 1), ComboComponent(10, 2)], known
    )
    assert merged == (ComboComponent(10, 3),)
    for bad in ([ComboComponent(11, 1)], [ComboComponent(99, 1)]):
        with pytest.raises(DomainError) as err:
            check_combo_components(ProductKind.COMBO, bad, known)
        assert err.value.code is ErrorCode.INVALID_COMBO_COMPONENT
    with pytest.raises(DomainError) as err:
        check_combo_components(ProductKind.COMBO, [], known)
    assert err.value.code is ErrorCode.COMBO_NEEDS_COMPONENTS
    with pytest.raises(DomainError):
        check_combo_components(ProductKind.DISH, [ComboComponent(10, 1)], known)
    with pytest.raises(DomainError) as err:
        check_combo_components(ProductKind.COMBO, [ComboComponent(10, 0)], known)
    assert err.value.field == ["components", "quantity"]


def test_tags_are_trimmed_deduplicated_and_bounded() -> None:
    assert clean_tags([" 辣 ", "辣", "新品"]) == ("辣", "新品")
    with pytest.raises(DomainError):
        clean_tags([str(i) for i in range(11)])
    with pytest.raises(DomainError):
        clean_tags(["一二三四五六七八九十一二三"])


def test_retail_skus_are_tracked_unless_said_otherwise() -> None:
    assert sku_is_tracked(ProductKind.RETAIL, None) is True
    assert sku_is_tracked(ProductKind.DISH, None) is False
    assert sku_is_tracked(ProductKind.DISH, True) is True


def test_store_price_overrides_the_base_price() -> None:
    assert store_price(_sku(1, price=5800), None) == 5800
    assert store_price(_sku(1, price=5800), 6000) == 6000
    assert store_price(_sku(1, price=5800), 0) == 0


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (5800, "¥58.00"), (123456, "¥1234.56"), (-250, "-¥2.50")],
)
def test_money_displays_like_a_price_tag(fen: int, text: str) -> None:
    assert display_fen(fen) == text


def test_stock_view_of_tracked_and_made_to_order_skus() -> None:
    assert stock_view(_sku(1, tracked=True), 7, False, 3).available == 7
    assert stock_view(_sku(1, tracked=True), 0, False, 3).sold_out is True
    assert stock_view(_sku(1, tracked=True), None, False, 0).available == 0
    assert stock_view(_sku(1, tracked=True), 5, True, 3).sold_out is True
    dish = stock_view(_sku(1), None, True, 2)
    assert (dish.available, dish.sold_out) == (None, True)


def test_menu_sections_keep_subcategories_under_their_parent_and_skip_empty_ones() -> None:
    categories = [
        Category(1, "热菜", None, 20),
        Category(2, "汤", None, 10),
        Category(3, "湘菜", 1, 2),
        Category(4, "粤菜", 1, 1),
        Category(5, "空", None, 5),
    ]
    products = [_product(1, 3), _product(2, 4), _product(3, 2), _product(4, 4), _product(5, 99)]
    sections = menu_sections(categories, products)
    assert [(c.name, [p.id for p in ps]) for c, ps in sections] == [
        ("汤", [3]),
        ("粤菜", [2, 4]),
        ("湘菜", [1]),
    ]
