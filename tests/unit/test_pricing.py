"""Pricing rules without I/O: coupon savings and refusals, ranking, tier benefits, totals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.pricing import (
    Cart,
    CartLine,
    CouponKind,
    CouponScope,
    CouponTerms,
    Inapplicable,
    Saving,
    Shopper,
    check_terms,
    coupon_saving,
    delivery_fee_after_tier,
    order_total,
    rank_coupons,
    tier_saving,
)
from dinegraph.domain.tiers import Tier

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
BASE = CouponTerms(
    kind=CouponKind.NO_THRESHOLD,
    amount_off_fen=500,
    valid_from=NOW - timedelta(days=1),
    valid_until=NOW + timedelta(days=1),
)
FREE_DELIVERY = replace(BASE, kind=CouponKind.FREE_DELIVERY, amount_off_fen=0)
SILVER = Shopper(Tier.SILVER, is_new_member=False)
# 60.00 of product 10 (category 100) and 15.00 of product 20 (category 200), delivered for 6.00.
CART = Cart(
    1, Channel.DELIVERY, (CartLine(1, 10, 100, 3_000, 2), CartLine(2, 20, 200, 1_500, 1)), 600
)

lines = st.builds(
    CartLine,
    sku_id=st.integers(1, 99),
    product_id=st.integers(1, 6),
    category_id=st.integers(1, 3),
    unit_price_fen=st.integers(0, 5_000),
    quantity=st.integers(1, 5),
)
carts = st.builds(
    Cart,
    store_id=st.integers(1, 3),
    channel=st.sampled_from(Channel),
    lines=st.lists(lines, min_size=1, max_size=8).map(tuple),
    delivery_fee_fen=st.integers(0, 1_000),
)
shoppers = st.builds(Shopper, tier=st.sampled_from(Tier), is_new_member=st.booleans())
scopes = st.builds(
    CouponScope,
    store_ids=st.frozensets(st.integers(1, 3), max_size=2),
    category_ids=st.frozensets(st.integers(1, 3), max_size=2),
    product_ids=st.frozensets(st.integers(1, 6), max_size=3),
    channels=st.frozensets(st.sampled_from(Channel), max_size=2),
)
line_scopes = st.builds(
    CouponScope,
    category_ids=st.frozensets(st.integers(1, 3), max_size=2),
    product_ids=st.frozensets(st.integers(1, 6), max_size=3),
)
# Mostly open terms, so that plenty of generated coupons apply.
any_terms = st.builds(
    CouponTerms,
    kind=st.sampled_from(CouponKind),
    valid_from=st.just(BASE.valid_from),
    valid_until=st.just(BASE.valid_until),
    amount_off_fen=st.integers(0, 30_000),
    threshold_fen=st.just(0) | st.integers(0, 30_000),
    percent_off=st.integers(1, 99),
    cap_fen=st.none() | st.integers(0, 5_000),
    scope=st.just(CouponScope()) | line_scopes | scopes,
    min_tier=st.just(Tier.NORMAL) | st.sampled_from(Tier),
    new_members_only=st.just(False) | st.booleans(),
)


def eligible(scope: CouponScope, cart: Cart) -> list[CartLine]:
    named = scope.product_ids or scope.category_ids
    return [
        line
        for line in cart.lines
        if not named
        or line.product_id in scope.product_ids
        or line.category_id in scope.category_ids
    ]


def eligible_fen(scope: CouponScope, cart: Cart) -> int:
    return sum(line.unit_price_fen * line.quantity for line in eligible(scope, cart))


@given(any_terms, carts, shoppers)
def test_a_saving_is_never_negative_nor_more_than_what_it_discounts(
    terms: CouponTerms, cart: Cart, shopper: Shopper
) -> None:
    result = coupon_saving(terms, cart, shopper, NOW)
    if isinstance(result, Saving):
        delivery = terms.kind is CouponKind.FREE_DELIVERY
        ceiling = cart.delivery_fee_fen if delivery else eligible_fen(terms.scope, cart)
        assert 0 <= result.fen <= ceiling
        assert result.on_delivery is delivery


@given(carts, line_scopes, st.integers(1, 5_000), st.integers(0, 20_000))
def test_threshold_coupon_takes_its_amount_once_the_eligible_lines_reach_the_threshold(
    cart: Cart, scope: CouponScope, amount: int, threshold: int
) -> None:
    terms = replace(
        BASE, kind=CouponKind.THRESHOLD, amount_off_fen=amount, threshold_fen=threshold, scope=scope
    )
    result = coupon_saving(terms, cart, SILVER, NOW)
    base = eligible_fen(scope, cart)
    if not eligible(scope, cart):
        assert result is Inapplicable.OUT_OF_SCOPE
    elif base < threshold:
        assert result is Inapplicable.BELOW_THRESHOLD
    else:
        assert result == Saving(min(amount, base), on_delivery=False)


@given(carts, line_scopes, st.integers(1, 99), st.none() | st.integers(0, 5_000))
def test_percent_coupon_takes_the_floored_share_of_eligible_lines_up_to_its_cap(
    cart: Cart, scope: CouponScope, percent: int, cap: int | None
) -> None:
    terms = replace(BASE, kind=CouponKind.PERCENT, percent_off=percent, cap_fen=cap, scope=scope)
    result = coupon_saving(terms, cart, SILVER, NOW)
    if eligible(scope, cart):
        share = eligible_fen(scope, cart) * percent // 100
        assert result == Saving(share if cap is None else min(share, cap), on_delivery=False)


def test_percent_coupon_rounds_down_to_whole_fen() -> None:
    terms = replace(BASE, kind=CouponKind.PERCENT, percent_off=33)
    cart = replace(CART, lines=(CartLine(1, 10, 100, 1_001, 1),))
    assert coupon_saving(terms, cart, SILVER, NOW) == Saving(330, on_delivery=False)


def test_percent_coupon_never_saves_more_than_its_cap() -> None:
    terms = replace(BASE, kind=CouponKind.PERCENT, percent_off=50, cap_fen=1_000)
    assert coupon_saving(terms, CART, SILVER, NOW) == Saving(1_000, on_delivery=False)


@given(carts, st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(1, 20_000))
def test_out_of_scope_lines_do_not_count_toward_the_threshold(
    cart: Cart, prices: list[int], threshold: int
) -> None:
    scope = CouponScope(product_ids=frozenset({99}))
    in_scope = tuple(CartLine(99, 99, 9, price * 100, 1) for price in prices)
    terms = replace(
        BASE, kind=CouponKind.THRESHOLD, amount_off_fen=1, threshold_fen=threshold + 1, scope=scope
    )
    mixed, alone = replace(cart, lines=(*cart.lines, *in_scope)), replace(cart, lines=in_scope)
    assert coupon_saving(terms, mixed, SILVER, NOW) == coupon_saving(terms, alone, SILVER, NOW)


def test_a_spend_threshold_ignores_dishes_the_coupon_does_not_cover() -> None:
    scope = CouponScope(product_ids=frozenset({20}))
    terms = replace(
        BASE, kind=CouponKind.THRESHOLD, amount_off_fen=300, threshold_fen=2_000, scope=scope
    )
    assert CART.subtotal_fen >= 2_000
    assert coupon_saving(terms, CART, SILVER, NOW) is Inapplicable.BELOW_THRESHOLD


def test_a_coupon_is_usable_from_its_first_instant_until_just_before_its_end() -> None:
    assert isinstance(coupon_saving(replace(BASE, valid_from=NOW), CART, SILVER, NOW), Saving)
    assert coupon_saving(replace(BASE, valid_until=NOW), CART, SILVER, NOW) is Inapplicable.EXPIRED


def test_free_delivery_takes_off_the_fee_the_shopper_would_pay() -> None:
    gold = Shopper(Tier.GOLD, is_new_member=False)
    assert coupon_saving(FREE_DELIVERY, CART, SILVER, NOW) == Saving(600, on_delivery=True)
    assert coupon_saving(FREE_DELIVERY, CART, gold, NOW) is Inapplicable.NO_DELIVERY_FEE


def scoped(scope: CouponScope) -> CouponTerms:
    return replace(BASE, scope=scope)


@pytest.mark.parametrize(
    ("terms", "cart", "reason"),
    [
        (replace(BASE, valid_from=NOW + timedelta(seconds=1)), CART, "NOT_STARTED"),
        (replace(BASE, valid_until=NOW - timedelta(days=1)), CART, "EXPIRED"),
        (replace(BASE, min_tier=Tier.GOLD), CART, "TIER_TOO_LOW"),
        (replace(BASE, new_members_only=True), CART, "NEW_MEMBERS_ONLY"),
        (scoped(CouponScope(store_ids=frozenset({2}))), CART, "OUT_OF_SCOPE"),
        (scoped(CouponScope(channels=frozenset({Channel.DINE_IN}))), CART, "OUT_OF_SCOPE"),
        (scoped(CouponScope(category_ids=frozenset({3}))), CART, "OUT_OF_SCOPE"),
        (replace(BASE, kind=CouponKind.THRESHOLD, threshold_fen=10_000), CART, "BELOW_THRESHOLD"),
        (FREE_DELIVERY, replace(CART, delivery_fee_fen=0), "NO_DELIVERY_FEE"),
    ],
)
def test_each_refusal_names_its_reason(terms: CouponTerms, cart: Cart, reason: str) -> None:
    assert coupon_saving(terms, cart, SILVER, NOW) is Inapplicable(reason)


def test_the_first_failing_check_is_the_reason_given() -> None:
    nothing_fits = replace(
        BASE,
        kind=CouponKind.FREE_DELIVERY,
        threshold_fen=99_999,
        valid_until=NOW,
        min_tier=Tier.BLACK_DIAMOND,
        new_members_only=True,
        scope=CouponScope(store_ids=frozenset({2})),
    )
    steps: list[tuple[dict[str, Any], Inapplicable]] = [
        ({"valid_until": BASE.valid_until}, Inapplicable.TIER_TOO_LOW),
        ({"min_tier": Tier.NORMAL}, Inapplicable.NEW_MEMBERS_ONLY),
        ({"new_members_only": False}, Inapplicable.OUT_OF_SCOPE),
        ({"scope": CouponScope()}, Inapplicable.BELOW_THRESHOLD),
        ({"threshold_fen": 0}, Inapplicable.NO_DELIVERY_FEE),
    ]
    cart = replace(CART, delivery_fee_fen=0)
    assert coupon_saving(nothing_fits, cart, SILVER, NOW) is Inapplicable.EXPIRED
    for fix, reason in steps:
        nothing_fits = replace(nothing_fits, **fix)
        assert coupon_saving(nothing_fits, cart, SILVER, NOW) is reason


@given(st.lists(any_terms, max_size=8), carts, shoppers)
def test_ranking_puts_the_biggest_saving_first_and_keeps_ties_in_order(
    candidates: list[CouponTerms], cart: Cart, shopper: Shopper
) -> None:
    usable, refused = rank_coupons(enumerate(candidates), cart, shopper, NOW)
    order = [(-saving.fen, key) for key, saving in usable]
    assert order == sorted(order)
    assert sorted(key for key, _ in [*usable, *refused]) == list(range(len(candidates)))
    for key, reason in refused:
        assert coupon_saving(candidates[key], cart, shopper, NOW) is reason


@pytest.mark.parametrize(
    ("tier", "saving", "fee"),
    [
        (Tier.NORMAL, 0, 600),
        (Tier.SILVER, 39, 600),
        (Tier.GOLD, 99, 0),
        (Tier.BLACK_DIAMOND, 159, 0),
    ],
)
def test_tier_discount_rounds_down_and_gold_and_up_deliver_free(
    tier: Tier, saving: int, fee: int
) -> None:
    assert tier_saving(tier, 1_999) == saving
    assert delivery_fee_after_tier(tier, 600) == fee


money = st.integers(0, 100_000)


@given(money, money, money, money, money)
def test_order_total_is_never_negative(
    subtotal: int, goods_off: int, delivery: int, delivery_off: int, packaging: int
) -> None:
    total = order_total(
        subtotal_fen=subtotal,
        goods_discount_fen=goods_off,
        delivery_fee_fen=delivery,
        delivery_discount_fen=delivery_off,
        packaging_fee_fen=packaging,
    )
    assert total >= 0
    if goods_off <= subtotal and delivery_off <= delivery:
        assert total == subtotal - goods_off - delivery_off + delivery + packaging


def test_a_discount_cannot_eat_into_another_charge() -> None:
    total = order_total(
        subtotal_fen=1_000,
        goods_discount_fen=1_500,
        delivery_fee_fen=500,
        delivery_discount_fen=800,
        packaging_fee_fen=100,
    )
    assert total == 100


INVALID = ErrorCode.INVALID_INPUT


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"amount_off_fen": -1}, INVALID, "amountOffFen"),
        ({"amount_off_fen": 0}, INVALID, "amountOffFen"),
        ({"threshold_fen": 5}, INVALID, "thresholdFen"),
        ({"kind": CouponKind.THRESHOLD, "threshold_fen": 500}, INVALID, "thresholdFen"),
        ({"kind": CouponKind.PERCENT, "cap_fen": -1}, INVALID, "capFen"),
        ({"kind": CouponKind.PERCENT, "percent_off": 0}, ErrorCode.OUT_OF_RANGE, "percentOff"),
        ({"kind": CouponKind.PERCENT, "percent_off": 100}, ErrorCode.OUT_OF_RANGE, "percentOff"),
        ({"valid_until": BASE.valid_from}, INVALID, "validUntil"),
    ],
)
def test_terms_that_cannot_be_honoured_are_refused(
    changes: dict[str, Any], code: ErrorCode, field: str
) -> None:
    with pytest.raises(DomainError) as err:
        check_terms(replace(BASE, **changes))
    assert (err.value.code, err.value.field) == (code, [field])


def test_sensible_terms_pass_the_check() -> None:
    check_terms(BASE)
    check_terms(replace(BASE, kind=CouponKind.THRESHOLD, threshold_fen=501))
    check_terms(replace(BASE, kind=CouponKind.PERCENT, percent_off=88, cap_fen=2_000))
    check_terms(replace(FREE_DELIVERY, threshold_fen=3_000))
