"""Order rules without I/O: the lifecycle, fees, checkout pricing and refund plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.catalog import Channel, Product, ProductKind, Sku, Store
from dinegraph.domain.checkout import Checkout, LineRequest, check_checkout, checkout_fingerprint
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import FeeRules, parse_bands
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.orders import (
    KITCHEN_QUEUE,
    DeliveryAddress,
    Mover,
    Order,
    OrderLine,
    OrderStatus,
    check_move,
    load_change,
)
from dinegraph.domain.pricing import CouponKind, CouponTerms, Shopper
from dinegraph.domain.quotes import (
    Candidates,
    CatalogItem,
    CouponOffer,
    CouponProblem,
    LineProblem,
    quote,
)
from dinegraph.domain.refunds import RefundLine, plan_refund, points_to_reverse
from dinegraph.domain.routing import CannotServe, RoutingWeights
from dinegraph.domain.stock import StockView
from dinegraph.domain.tiers import Tier

S = OrderStatus
NOW = datetime(2026, 6, 1, 4, tzinfo=UTC)  # 12:00 in Shanghai
FEES = FeeRules(
    bands=((3000, 400), (5000, 600)),
    free_delivery_from_fen=6000,
    packaging_fen_per_unit=100,
    packaging_cap_fen=300,
)
HERE = GeoPoint(31.0, 121.0)
ADDRESS = DeliveryAddress(GeoPoint(31.009, 121.0), "1-101", "王", "13800138000")  # ~1 km north


def order(status: S = S.PAID, channel: Channel = Channel.DELIVERY, **changes: object) -> Order:
    base = Order(
        id=7,
        member_id=1,
        store_id=1,
        channel=channel,
        status=status,
        idempotency_key="k",
        fingerprint="f",
        subtotal_fen=5000,
        tier_discount_fen=0,
        coupon_discount_fen=400,
        delivery_fee_fen=400,
        delivery_discount_fen=0,
        packaging_fee_fen=300,
        total_fen=5300,
        refunded_fen=0,
        coupon_id=3,
        address=None,
        distance_m=None,
        note="",
        pickup_code=None,
        placed_at=NOW,
        pay_by=NOW + timedelta(minutes=15),
        paid_at=NOW,
        completed_at=None,
        version=2,
        lines=(
            OrderLine(1, 11, 101, "饭", {}, 1000, 2),
            OrderLine(2, 12, 102, "汤", {}, 3000, 1),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- the lifecycle --------------------------------------------------------------------

HAPPY_DELIVERY = [S.PAID, S.ACCEPTED, S.PREPARING, S.READY, S.DELIVERING, S.DELIVERED, S.COMPLETED]


def test_staff_walk_a_delivery_order_through_its_life() -> None:
    current = S.PAID
    for target in HAPPY_DELIVERY[1:]:
        check_move(order(current), target, Mover.STAFF)
        current = target


@pytest.mark.parametrize(
    ("current", "target", "mover"),
    [
        (S.PENDING_PAYMENT, S.PAID, Mover.STAFF),  # only a payment pays
        (S.PENDING_PAYMENT, S.PAID, Mover.CUSTOMER),
        (S.PAID, S.READY, Mover.STAFF),  # no skipping
        (S.ACCEPTED, S.CANCELLED, Mover.CUSTOMER),  # too late for the customer
        (S.ACCEPTED, S.CANCELLED, Mover.STAFF),  # after acceptance: a refund
        (S.COMPLETED, S.REFUNDED, Mover.STAFF),  # a refund, not a status change
        (S.CANCELLED, S.PAID, Mover.SYSTEM),
        (S.READY, S.PICKED_UP, Mover.STAFF),  # a delivery order is delivered
    ],
)
def test_wrong_moves_are_invalid_transitions(current: S, target: S, mover: Mover) -> None:
    with pytest.raises(DomainError) as raised:
        check_move(order(current), target, mover)
    assert raised.value.code is ErrorCode.INVALID_TRANSITION


def test_pickup_orders_are_picked_up_not_delivered() -> None:
    check_move(order(S.READY, Channel.PICKUP), S.PICKED_UP, Mover.STAFF)
    with pytest.raises(DomainError):
        check_move(order(S.READY, Channel.PICKUP), S.DELIVERING, Mover.STAFF)


def test_customers_cancel_only_before_acceptance() -> None:
    check_move(order(S.PENDING_PAYMENT), S.CANCELLED, Mover.CUSTOMER)
    check_move(order(S.PAID), S.CANCELLED, Mover.CUSTOMER)


@given(st.sampled_from(list(S)), st.sampled_from(list(S)))
def test_the_kitchen_queue_moves_by_one_at_most(before: S, after: S) -> None:
    change = load_change(before, after)
    assert change in (-1, 0, 1)
    assert change == (after in KITCHEN_QUEUE) - (before in KITCHEN_QUEUE)


# --- fees -----------------------------------------------------------------------------


def test_delivery_fee_by_band_and_packaging_capped() -> None:
    assert [FEES.delivery_fee(m) for m in (0, 3000, 3001, 5000, 9000)] == [400, 400, 600, 600, 600]
    assert FEES.packaging_fee(Channel.DELIVERY, 2) == 200
    assert FEES.packaging_fee(Channel.PICKUP, 9) == 300
    assert FEES.packaging_fee(Channel.DINE_IN, 9) == 0


def test_bands_are_parsed_sorted_and_checked() -> None:
    assert parse_bands("5000:600, 3000:400") == ((3000, 400), (5000, 600))
    for bad in ("3000", "x:1", "0:100", "3000:-1"):
        with pytest.raises(ValueError):
            parse_bands(bad)


# --- checkout -------------------------------------------------------------------------


def store(store_id: int, lat: float = 31.0) -> Store:
    return Store(
        store_id, f"S{store_id}", "店", "路", GeoPoint(lat, 121.0), 5000, time(0), time(0), True
    )


def item(sku_id: int, price: int, channels: frozenset[Channel] = frozenset(Channel)) -> CatalogItem:
    sku = Sku(sku_id, 100 + sku_id, "", {}, price, True, 0)
    product = Product(100 + sku_id, 9, ProductKind.RETAIL, "菜", "", (), (), channels, True, 0)
    return CatalogItem(sku, product, price)


def candidates(levels: dict[tuple[int, int], int], stores: list[Store] | None = None) -> Candidates:
    stores = stores or [store(1)]
    items = {(s.id, sku): item(sku, 1000 * sku) for s in stores for sku in (1, 2)}
    stock = {key: StockView(level, level == 0, 1) for key, level in levels.items()}
    return Candidates(stores, items, stock, {})


def priced(checkout: Checkout, cands: Candidates, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "at": time(12),
        "shopper": Shopper(Tier.NORMAL, False),
        "coupon": None,
        "fees": FEES,
        "weights": RoutingWeights(),
        "nearby_m": 10_000,
        "now": NOW,
        **kw,
    }
    return quote(checkout, cands, **args)  # type: ignore[arg-type]


def test_a_delivery_checkout_is_routed_and_priced() -> None:
    checkout = Checkout(Channel.DELIVERY, (LineRequest(1, 2), LineRequest(2, 1)), address=ADDRESS)
    q = priced(checkout, candidates({(1, 1): 5, (1, 2): 5}))
    assert q.store is not None and q.store.id == 1
    assert q.totals.subtotal_fen == 4000
    assert q.totals.delivery_fee_fen == 400 and q.totals.packaging_fee_fen == 300
    assert q.totals.total_fen == 4700
    assert q.placeable


def test_lines_that_cannot_be_ordered_are_left_out_with_a_reason() -> None:
    checkout = Checkout(
        Channel.PICKUP, (LineRequest(1, 9), LineRequest(2, 1), LineRequest(99, 1)), store_id=1
    )
    q = priced(checkout, candidates({(1, 1): 3, (1, 2): 0}))
    assert [line.problem for line in q.lines] == [
        LineProblem.OUT_OF_STOCK,
        LineProblem.OUT_OF_STOCK,
        LineProblem.NOT_FOUND,
    ]
    assert q.totals.subtotal_fen == 0 and not q.placeable


def test_a_pinned_store_outside_its_radius_says_so() -> None:
    far = replace(ADDRESS, location=GeoPoint(31.2, 121.0))
    checkout = Checkout(Channel.DELIVERY, (LineRequest(1, 1),), store_id=1, address=far)
    q = priced(checkout, candidates({(1, 1): 3}))
    assert q.store_problem is CannotServe.OUT_OF_RANGE and not q.placeable


def test_a_free_delivery_coupon_has_nothing_to_save_above_the_threshold() -> None:
    terms = CouponTerms(
        kind=CouponKind.FREE_DELIVERY, valid_from=NOW - timedelta(1), valid_until=NOW + timedelta(1)
    )
    checkout = Checkout(Channel.DELIVERY, (LineRequest(2, 3),), address=ADDRESS, coupon_id=5)
    q = priced(checkout, candidates({(1, 2): 9}), coupon=CouponOffer(5, terms))
    assert q.totals.delivery_discount_fen == 400  # waived by the ¥60 threshold first
    assert q.coupon_problem is CouponProblem.NO_DELIVERY_FEE


@given(
    quantities=st.lists(st.integers(1, 20), min_size=1, max_size=2),
    tier=st.sampled_from(list(Tier)),
    off=st.integers(0, 20_000),
    metres=st.integers(0, 4000),
)
def test_totals_are_lines_minus_discounts_plus_fees_and_never_negative(
    quantities: list[int], tier: Tier, off: int, metres: int
) -> None:
    terms = CouponTerms(
        kind=CouponKind.NO_THRESHOLD,
        amount_off_fen=max(off, 1),
        valid_from=NOW - timedelta(1),
        valid_until=NOW + timedelta(1),
    )
    address = replace(ADDRESS, location=GeoPoint(31.0 + metres / 111_195, 121.0))
    lines = tuple(LineRequest(n + 1, q) for n, q in enumerate(quantities))
    checkout = Checkout(Channel.DELIVERY, lines, address=address, coupon_id=5)
    q = priced(
        checkout,
        candidates({(1, 1): 99, (1, 2): 99}),
        shopper=Shopper(tier, False),
        coupon=CouponOffer(5, terms),
    )
    t = q.totals
    assert t.total_fen >= 0
    assert t.tier_discount_fen + t.coupon_discount_fen <= t.subtotal_fen
    assert t.total_fen == (
        t.subtotal_fen
        - t.tier_discount_fen
        - t.coupon_discount_fen
        + t.delivery_fee_fen
        - t.delivery_discount_fen
        + t.packaging_fee_fen
    )


def test_checkout_input_is_checked_before_anything_is_read() -> None:
    cases = [
        (Checkout(Channel.DELIVERY, ()), ["lines"]),
        (Checkout(Channel.DELIVERY, (LineRequest(1, 1),)), ["address"]),
        (Checkout(Channel.PICKUP, (LineRequest(1, 1),)), ["storeId"]),
        (Checkout(Channel.PICKUP, (LineRequest(1, 0),), store_id=1), ["lines", "0", "quantity"]),
        (
            Checkout(Channel.PICKUP, (LineRequest(1, 1), LineRequest(1, 2)), store_id=1),
            ["lines", "1", "skuId"],
        ),
    ]
    for checkout, field in cases:
        with pytest.raises(DomainError) as raised:
            check_checkout(checkout)
        assert raised.value.field == field


def test_the_fingerprint_sees_every_part_of_the_payload() -> None:
    base = Checkout(Channel.PICKUP, (LineRequest(1, 1),), store_id=1)
    variants = [
        replace(base, lines=(LineRequest(1, 2),)),
        replace(base, store_id=2),
        replace(base, coupon_id=3),
        replace(base, note="少辣"),
        replace(base, channel=Channel.DINE_IN),
    ]
    prints = {checkout_fingerprint(c) for c in [base, *variants]}
    assert len(prints) == 6
    assert checkout_fingerprint(base) == checkout_fingerprint(replace(base))


# --- refunds --------------------------------------------------------------------------


def test_a_full_refund_returns_everything_and_the_coupon_before_preparation() -> None:
    plan = plan_refund(order(S.ACCEPTED), None, coupon_still_valid=True)
    assert plan.amount_fen == 5300 and plan.full and plan.return_stock and plan.restore_coupon
    late = plan_refund(order(S.PREPARING), None, coupon_still_valid=True)
    assert late.full and not late.return_stock and not late.restore_coupon


def test_refunds_are_refused_for_unpaid_or_closed_orders() -> None:
    for status in (S.PENDING_PAYMENT, S.CANCELLED, S.REFUNDED):
        with pytest.raises(DomainError) as raised:
            plan_refund(order(status), None, coupon_still_valid=True)
        assert raised.value.code is ErrorCode.INVALID_TRANSITION


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(1, 2)), min_size=1, max_size=6))
def test_partial_refunds_never_add_up_to_more_than_was_paid(
    steps: list[tuple[int, int]],
) -> None:
    current = order(S.PAID)
    for line_no, quantity in steps:
        try:
            plan = plan_refund(current, [RefundLine(line_no, quantity)], coupon_still_valid=False)
        except DomainError as error:
            assert error.code in (ErrorCode.OUT_OF_RANGE, ErrorCode.INVALID_TRANSITION)
            continue
        lines = tuple(
            replace(line, refunded_quantity=line.refunded_quantity + quantity)
            if line.line_no == line_no
            else line
            for line in current.lines
        )
        status = S.REFUNDED if plan.full else current.status
        current = replace(
            current,
            refunded_fen=current.refunded_fen + plan.amount_fen,
            lines=lines,
            status=status,
        )
        assert 0 <= current.refunded_fen <= current.total_fen
        assert plan.full == (current.refunded_fen == current.total_fen)


def test_points_are_taken_back_in_proportion() -> None:
    assert points_to_reverse(200, 10_000, 20_000) == 100
    assert points_to_reverse(200, 1, 20_000) == 1  # rounded up: never keep points unpaid for
    assert points_to_reverse(0, 5000, 20_000) == 0
    assert points_to_reverse(200, 30_000, 20_000) == 200
