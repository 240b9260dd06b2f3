"""Pricing: what a coupon or a member tier takes off a cart, and what is left to pay."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.tiers import BENEFITS, Tier, tier_rank

K = TypeVar("K")

MAX_LINE_QUANTITY = 999
PERCENT_MIN = 1
PERCENT_MAX = 99
COUPON_AMOUNT_MAX_FEN = 10_000_000  # ¥100,000: as high as any price (catalog.PRICE_MAX_FEN)


class CouponKind(StrEnum):
    THRESHOLD = "THRESHOLD"  # 满减: spend threshold_fen, get amount_off_fen off
    NO_THRESHOLD = "NO_THRESHOLD"  # 无门槛: amount_off_fen off
    PERCENT = "PERCENT"  # 折扣: percent_off % off, at most cap_fen
    FREE_DELIVERY = "FREE_DELIVERY"  # the delivery fee off, from threshold_fen


class Inapplicable(StrEnum):
    """Why a coupon cannot be used on a cart, in the order ``coupon_saving`` checks."""

    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    TIER_TOO_LOW = "TIER_TOO_LOW"
    NEW_MEMBERS_ONLY = "NEW_MEMBERS_ONLY"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    NO_DELIVERY_FEE = "NO_DELIVERY_FEE"


@dataclass(frozen=True, slots=True)
class CartLine:
    sku_id: int
    product_id: int
    category_id: int
    unit_price_fen: int
    quantity: int

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True, slots=True)
class Cart:
    store_id: int
    channel: Channel
    lines: tuple[CartLine, ...]
    delivery_fee_fen: int = 0  # before any tier or coupon waives it

    @property
    def subtotal_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True, slots=True)
class CouponScope:
    """Where a coupon may be used; each empty set places no restriction."""

    store_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()
    product_ids: frozenset[int] = frozenset()
    channels: frozenset[Channel] = frozenset()

    def covers_cart(self, cart: Cart) -> bool:
        """Store and channel restrict the whole cart, not single lines."""
        store_ok = not self.store_ids or cart.store_id in self.store_ids
        return store_ok and (not self.channels or cart.channel in self.channels)

    def covers_line(self, line: CartLine) -> bool:
        """A line counts when its product or its own category is named, or nothing is."""
        if not self.product_ids and not self.category_ids:
            return True
        return line.product_id in self.product_ids or line.category_id in self.category_ids

    def eligible_subtotal_fen(self, cart: Cart) -> int:
        return sum(line.amount_fen for line in cart.lines if self.covers_line(line))


@dataclass(frozen=True, slots=True, kw_only=True)
class CouponTerms:
    """What a coupon takes off, and when, where and for whom; valid_from <= now < valid_until."""

    kind: CouponKind
    valid_from: datetime
    valid_until: datetime
    amount_off_fen: int = 0
    threshold_fen: int = 0  # reached by the eligible lines alone
    percent_off: int = 0
    cap_fen: int | None = None
    scope: CouponScope = field(default_factory=CouponScope)
    min_tier: Tier = Tier.NORMAL
    new_members_only: bool = False


@dataclass(frozen=True, slots=True)
class Shopper:
    tier: Tier
    is_new_member: bool


@dataclass(frozen=True, slots=True)
class Saving:
    fen: int
    on_delivery: bool  # off the delivery fee rather than off the dishes


def coupon_saving(
    terms: CouponTerms, cart: Cart, shopper: Shopper, now: datetime
) -> Saving | Inapplicable:
    """What ``terms`` would save on ``cart`` at ``now``, or the first reason it cannot be used.

    Checked in this order, the first failure wins: the time window (NOT_STARTED, EXPIRED),
    TIER_TOO_LOW, NEW_MEMBERS_ONLY, OUT_OF_SCOPE (store or channel, then no eligible line),
    BELOW_THRESHOLD (on the eligible lines' subtotal), then NO_DELIVERY_FEE. A saving lies
    in [0, eligible subtotal] for goods coupons and in [0, delivery fee] for free delivery.
    """
    if now < terms.valid_from:
        return Inapplicable.NOT_STARTED
    if now >= terms.valid_until:
        return Inapplicable.EXPIRED
    if tier_rank(shopper.tier) < tier_rank(terms.min_tier):
        return Inapplicable.TIER_TOO_LOW
    if terms.new_members_only and not shopper.is_new_member:
        return Inapplicable.NEW_MEMBERS_ONLY
    scope = terms.scope
    if not scope.covers_cart(cart) or not any(scope.covers_line(line) for line in cart.lines):
        return Inapplicable.OUT_OF_SCOPE
    eligible = scope.eligible_subtotal_fen(cart)
    if eligible < terms.threshold_fen:
        return Inapplicable.BELOW_THRESHOLD
    if terms.kind is CouponKind.FREE_DELIVERY:
        # A tier that already waives delivery leaves the coupon nothing to save.
        fee = delivery_fee_after_tier(shopper.tier, cart.delivery_fee_fen)
        if fee <= 0:
            return Inapplicable.NO_DELIVERY_FEE
        return Saving(fee, on_delivery=True)
    if terms.kind is CouponKind.PERCENT:
        off = eligible * terms.percent_off // 100
        if terms.cap_fen is not None:
            off = min(off, terms.cap_fen)
    else:
        off = terms.amount_off_fen
    return Saving(max(0, min(off, eligible)), on_delivery=False)


def rank_coupons(
    candidates: Iterable[tuple[K, CouponTerms]], cart: Cart, shopper: Shopper, now: datetime
) -> tuple[list[tuple[K, Saving]], list[tuple[K, Inapplicable]]]:
    """Usable coupons by saving, biggest first (ties keep their order), and the rest with why."""
    usable: list[tuple[K, Saving]] = []
    refused: list[tuple[K, Inapplicable]] = []
    for key, terms in candidates:
        result = coupon_saving(terms, cart, shopper, now)
        if isinstance(result, Saving):
            usable.append((key, result))
        else:
            refused.append((key, result))
    usable.sort(key=lambda pair: -pair[1].fen)  # list.sort is stable
    return usable, refused


def tier_saving(tier: Tier, subtotal_fen: int) -> int:
    """The member discount off the dishes, rounded down to whole fen."""
    return max(0, subtotal_fen * BENEFITS[tier].discount_percent // 100)


def delivery_fee_after_tier(tier: Tier, fee_fen: int) -> int:
    return 0 if BENEFITS[tier].free_delivery else fee_fen


def order_total(
    *,
    subtotal_fen: int,
    goods_discount_fen: int,
    delivery_fee_fen: int,
    delivery_discount_fen: int,
    packaging_fee_fen: int,
) -> int:
    """total = lines − discounts + fees, never negative.

    Goods discounts are held to [0, subtotal] and the delivery discount to [0, delivery fee],
    so no discount can eat into another charge; amounts given are expected to be >= 0.
    """
    goods_off = min(max(goods_discount_fen, 0), subtotal_fen)
    delivery_off = min(max(delivery_discount_fen, 0), delivery_fee_fen)
    return subtotal_fen - goods_off + delivery_fee_fen - delivery_off + packaging_fee_fen


def check_terms(terms: CouponTerms) -> None:
    """Refuse coupon terms that cannot be honoured as written, naming the field at fault."""
    amounts: list[tuple[str, int | None]] = [
        ("amountOffFen", terms.amount_off_fen),
        ("thresholdFen", terms.threshold_fen),
        ("capFen", terms.cap_fen),
    ]
    for name, fen in amounts:
        if fen is not None and fen < 0:
            raise DomainError(ErrorCode.INVALID_INPUT, field=[name])
        if fen is not None and fen > COUPON_AMOUNT_MAX_FEN:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE, field=[name], min=0, max=COUPON_AMOUNT_MAX_FEN
            )
    kind = terms.kind
    if kind is CouponKind.PERCENT and not PERCENT_MIN <= terms.percent_off <= PERCENT_MAX:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE, field=["percentOff"], min=PERCENT_MIN, max=PERCENT_MAX
        )
    if kind in (CouponKind.THRESHOLD, CouponKind.NO_THRESHOLD) and terms.amount_off_fen == 0:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["amountOffFen"])
    if kind is CouponKind.THRESHOLD and terms.threshold_fen <= terms.amount_off_fen:
        # 满100减100 would hand the dishes out free.
        raise DomainError(ErrorCode.INVALID_INPUT, field=["thresholdFen"])
    if kind is CouponKind.NO_THRESHOLD and terms.threshold_fen != 0:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["thresholdFen"])
    if terms.valid_until <= terms.valid_from:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["validUntil"])


def check_line_quantity(quantity: int, field: list[str]) -> int:
    """A cart line orders at least one and at most MAX_LINE_QUANTITY units."""
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=field, min=1, max=MAX_LINE_QUANTITY)
    return quantity
