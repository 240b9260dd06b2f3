"""Routing to the best store, property-tested."""

from __future__ import annotations

from datetime import time

from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.catalog import Store
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.routing import (
    CannotServe,
    NoStoreCanServe,
    Routed,
    RoutingWeights,
    route_order,
    why_not,
)
from dinegraph.domain.stock import StockView

NOON = time(12, 0)
HOME = GeoPoint(22.54, 114.05)


def _store(id: int, lat: float, lng: float, *, radius: int = 5000, open_: bool = True) -> Store:
    return Store(
        id, f"S{id}", f"店{id}", "深圳", GeoPoint(lat, lng), radius, time(10), time(22), open_
    )


stores_st = st.lists(
    st.builds(
        _store,
        st.integers(1, 10_000),
        st.floats(22.50, 22.58),
        st.floats(114.00, 114.10),
        radius=st.integers(500, 8000),
        open_=st.booleans(),
    ),
    min_size=1,
    max_size=15,
    unique_by=lambda s: s.id,
)


@given(
    stores_st,
    st.dictionaries(st.integers(1, 10_000), st.integers(0, 30)),
    st.dictionaries(st.integers(1, 10_000), st.integers(0, 3)),
)
def test_the_chosen_store_serves_and_none_scores_lower(
    stores: list[Store], pending: dict[int, int], levels: dict[int, int]
) -> None:
    stock = {(s.id, 1): StockView(levels.get(s.id, 5), False, 1) for s in stores}
    weights = RoutingWeights()
    result = route_order(
        stores, address=HOME, at=NOON, lines={1: 2}, stock=stock, pending=pending, weights=weights
    )
    serving = [
        s for s in stores if why_not(s, address=HOME, at=NOON, lines={1: 2}, stock=stock) is None
    ]
    if not serving:
        assert isinstance(result, NoStoreCanServe)
        assert set(result.reasons) == {s.id for s in stores}
        return
    assert isinstance(result, Routed)
    assert result.store in serving

    def score(s: Store) -> tuple[float, int]:
        return (s.distance_to(HOME) + pending.get(s.id, 0) * 300.0, s.id)

    assert score(result.store) == min(score(s) for s in serving)


def test_load_can_outweigh_distance() -> None:
    near, far = _store(1, 22.541, 114.051), _store(2, 22.545, 114.055)
    busy = route_order(
        [near, far],
        address=HOME,
        at=NOON,
        lines={},
        stock={},
        pending={1: 10},
        weights=RoutingWeights(),
    )
    assert isinstance(busy, Routed) and busy.store.id == 2


def test_each_store_that_cannot_serve_says_why() -> None:
    stores = [
        _store(1, 22.54, 114.05, open_=False),
        _store(2, 23.5, 114.05),
        _store(3, 22.54, 114.05),
        _store(4, 22.54, 114.05),
    ]
    stock = {(3, 7): StockView(1, False, 1), (4, 8): StockView(None, True, 1)}
    result = route_order(
        stores,
        address=HOME,
        at=NOON,
        lines={7: 2, 8: 1},
        stock=stock,
        pending={},
        weights=RoutingWeights(),
    )
    assert isinstance(result, NoStoreCanServe)
    assert result.reasons == {
        1: CannotServe.CLOSED,
        2: CannotServe.OUT_OF_RANGE,
        3: CannotServe.OUT_OF_STOCK,
        4: CannotServe.SOLD_OUT,
    }


def test_outside_opening_hours_is_a_reason() -> None:
    late = route_order(
        [_store(1, 22.54, 114.05)],
        address=HOME,
        at=time(23, 30),
        lines={},
        stock={},
        pending={},
        weights=RoutingWeights(),
    )
    assert isinstance(late, NoStoreCanServe)
    assert late.reasons == {1: CannotServe.OUTSIDE_HOURS}


def test_ties_go_to_the_lower_id() -> None:
    twins = [_store(9, 22.55, 114.06), _store(3, 22.55, 114.06)]
    result = route_order(
        twins, address=HOME, at=NOON, lines={}, stock={}, pending={}, weights=RoutingWeights()
    )
    assert isinstance(result, Routed) and result.store.id == 3
