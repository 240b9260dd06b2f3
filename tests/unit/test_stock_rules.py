"""Stock rules without I/O: sale lines, fingerprints, low-stock alerts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.catalog import Sku
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.stock import (
    MovementLine,
    SaleLine,
    StockLevel,
    fingerprint,
    low_now,
    low_stock_crossed,
    sale_lines,
)

lines = st.lists(
    st.builds(SaleLine, st.integers(1, 50), st.integers(1, 20)), min_size=1, max_size=30
)


@given(lines)
def test_sale_lines_are_merged_sorted_and_negative(raw: list[SaleLine]) -> None:
    merged = sale_lines(raw)
    ids = [line.sku_id for line in merged]
    assert ids == sorted(set(ids))
    totals: dict[int, int] = {}
    for line in raw:
        totals[line.sku_id] = totals.get(line.sku_id, 0) + line.quantity
    assert {line.sku_id: -line.quantity for line in merged} == totals


@given(lines)
def test_fingerprint_ignores_line_order(raw: list[SaleLine]) -> None:
    merged = sale_lines(raw)
    assert fingerprint(merged) == fingerprint(reversed(merged))
    assert fingerprint(merged) != fingerprint([*merged, MovementLine(999, -1)])


@pytest.mark.parametrize("quantity", [0, -1, 10_000])
def test_sale_quantities_must_be_positive_and_bounded(quantity: int) -> None:
    with pytest.raises(DomainError) as err:
        sale_lines([SaleLine(1, 2), SaleLine(2, quantity)])
    assert (err.value.code, err.value.field) == (ErrorCode.OUT_OF_RANGE, ["lines", "1", "quantity"])


def test_an_empty_sale_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        sale_lines([])
    assert err.value.code is ErrorCode.REQUIRED


def _level(available: int, threshold: int = 5) -> StockLevel:
    return StockLevel(1, 2, available, False, threshold, 7)


@pytest.mark.parametrize(
    ("before", "after", "alerts"),
    [(9, 6, False), (6, 5, True), (9, 0, True), (5, 4, False), (3, 2, False), (4, 9, False)],
)
def test_low_stock_alerts_once_when_the_threshold_is_crossed(
    before: int, after: int, alerts: bool
) -> None:
    assert (low_stock_crossed(before, _level(after)) is not None) is alerts


def test_a_fresh_subscriber_hears_of_what_is_low_now() -> None:
    tracked = Sku(2, 1, "盒", {}, 100, True, 0)
    dish = Sku(3, 1, "份", {}, 100, False, 0)
    assert low_now(1, tracked, 5, 5, 3) is not None
    assert low_now(1, tracked, 6, 5, 3) is None
    assert low_now(1, dish, 0, 5, 3) is None
