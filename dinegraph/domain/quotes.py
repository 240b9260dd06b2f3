"""Quotes: a checkout routed to a store and priced there, with the reason for
everything that cannot apply (a line, the coupon, the store)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from enum import StrEnum

from dinegraph.domain.campaigns import Deal
from dinegraph.domain.catalog import Channel, Product, Sku, Store
from dinegraph.domain.checkout import Checkout, LineRequest
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import DeliveryWaiver, FeeRules
from dinegraph.domain.pricing import (
    Cart,
    CartLine,
    CouponTerms,
    Inapplicable,
    Saving,
    Shopper,
    coupon_saving,
    order_total,
    tier_saving,
)
from dinegraph.domain.routing import (
    CannotServe,
    NoStoreCanServe,
    Routed,
    RoutingWeights,
    route_order,
    why_not,
)
from dinegraph.domain.stock import StockView
from dinegraph.domain.tiers import BENEFITS


class LineProblem(StrEnum):
    """Why one line cannot be ordered as asked."""

    NOT_FOUND = "NOT_FOUND"  # no such SKU, or it is not on sale
    NOT_ON_CHANNEL = "NOT_ON_CHANNEL"  # e.g. a dine-in only dish ordered for delivery
    OUT_OF_STOCK = "OUT_OF_STOCK"
    SOLD_OUT = "SOLD_OUT"


class CouponProblem(StrEnum):
    """Why the coupon asked for is left out of the total."""

    NOT_FOUND = "NOT_FOUND"  # no such coupon, or not the viewer's
    NOT_AVAILABLE = "NOT_AVAILABLE"  # locked by another order, used or expired
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    TIER_TOO_LOW = "TIER_TOO_LOW"
    NEW_MEMBERS_ONLY = "NEW_MEMBERS_ONLY"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    NO_DELIVERY_FEE = "NO_DELIVERY_FEE"

    @classmethod
    def of(cls, reason: Inapplicable) -> CouponProblem:
        return cls(reason.value)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A line as the catalog knows it, at the price the chosen store sells it for."""

    sku: Sku
    product: Product
    unit_price_fen: int  # the store's price, or a campaign's


@dataclass(frozen=True, slots=True)
class PricedLine:
    request: LineRequest
    item: CatalogItem | None
    problem: LineProblem | None

    @property
    def amount_fen(self) -> int:
        return self.item.unit_price_fen * self.request.quantity if self.item else 0


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal_fen: int
    tier_discount_fen: int
    coupon_discount_fen: int
    delivery_fee_fen: int
    delivery_discount_fen: int
    delivery_waiver: DeliveryWaiver | None
    packaging_fee_fen: int
    total_fen: int


@dataclass(frozen=True, slots=True)
class Quote:
    """A checkout priced at one store, with the reason for everything that cannot apply."""

    store: Store | None
    distance_m: int | None
    store_problem: CannotServe | None  # the pinned store cannot take the order
    refusals: Mapping[int, CannotServe]  # routing found no store: why not, per nearby store
    lines: tuple[PricedLine, ...]
    totals: Totals
    coupon_id: int | None
    coupon_problem: CouponProblem | None

    @property
    def placeable(self) -> bool:
        return (
            self.store is not None
            and self.store_problem is None
            and not self.refusals
            and all(line.problem is None for line in self.lines)
        )


def line_problem(
    item: CatalogItem | None, quantity: int, channel: Channel, view: StockView | None
) -> LineProblem | None:
    if item is None or not item.product.listed:
        return LineProblem.NOT_FOUND
    if item.product.channels and channel not in item.product.channels:
        return LineProblem.NOT_ON_CHANNEL
    if view is not None and view.available is not None and view.available < quantity:
        return LineProblem.OUT_OF_STOCK
    if view is not None and view.sold_out:
        return LineProblem.SOLD_OUT
    return None


@dataclass(frozen=True, slots=True)
class CouponOffer:
    """The viewer's coupon, as far as it is known: usable now, or why not."""

    coupon_id: int
    terms: CouponTerms | None  # None: not found, or not AVAILABLE
    problem: CouponProblem | None = None


def price(
    lines: Sequence[PricedLine],
    *,
    store_id: int,
    channel: Channel,
    distance_m: int | None,
    shopper: Shopper,
    coupon: CouponOffer | None,
    fees: FeeRules,
    now: datetime,
    deal: Deal | None = None,
) -> tuple[Totals, CouponProblem | None]:
    """The totals of the lines that can be ordered, and why the coupon is left out, if it is.

    The tier discount and the coupon both come off the dishes (the coupon's threshold is
    reached on the undiscounted lines); the delivery fee is waived above a subtotal, for a
    tier or by a free-delivery coupon, in that order; packaging is charged per unit. A
    campaign's price is its whole discount: no tier discount comes on top of a deal.
    """
    cart_lines = tuple(
        CartLine(
            line.item.sku.id,
            line.item.product.id,
            line.item.product.category_id,
            line.item.unit_price_fen,
            line.request.quantity,
        )
        for line in lines
        if line.item is not None and line.problem is None
    )
    subtotal = sum(line.amount_fen for line in cart_lines)
    units = sum(line.quantity for line in cart_lines)
    delivered = channel is Channel.DELIVERY and distance_m is not None
    fee = fees.delivery_fee(distance_m) if delivered and distance_m is not None else 0
    waiver: DeliveryWaiver | None = None
    if fee and fees.free_delivery_from_fen is not None and subtotal >= fees.free_delivery_from_fen:
        waiver = DeliveryWaiver.ABOVE_THRESHOLD
    elif fee and BENEFITS[shopper.tier].free_delivery:
        waiver = DeliveryWaiver.TIER
    tier_off = tier_saving(shopper.tier, subtotal) if deal is None else 0
    coupon_off, problem = 0, None
    if coupon is not None:
        if coupon.terms is None:
            problem = coupon.problem or CouponProblem.NOT_FOUND
        else:
            # A fee already waived leaves a free-delivery coupon nothing to save.
            cart = Cart(store_id, channel, cart_lines, 0 if waiver is not None else fee)
            saving = coupon_saving(coupon.terms, cart, shopper, now)
            if not isinstance(saving, Saving):
                problem = CouponProblem.of(saving)
            elif saving.on_delivery:
                waiver = DeliveryWaiver.COUPON
            else:
                coupon_off = min(saving.fen, subtotal - tier_off)
    delivery_off = fee if waiver is not None else 0
    packaging = fees.packaging_fee(channel, units)
    total = order_total(
        subtotal_fen=subtotal,
        goods_discount_fen=tier_off + coupon_off,
        delivery_fee_fen=fee,
        delivery_discount_fen=delivery_off,
        packaging_fee_fen=packaging,
    )
    totals = Totals(
        subtotal_fen=subtotal,
        tier_discount_fen=tier_off,
        coupon_discount_fen=coupon_off,
        delivery_fee_fen=fee,
        delivery_discount_fen=delivery_off,
        delivery_waiver=waiver,
        packaging_fee_fen=packaging,
        total_fen=total,
    )
    return totals, problem


def first_problem(quote: Quote) -> DomainError | None:
    """The error that stops placing this quote, naming the input field at fault."""
    if quote.refusals or quote.store is None:
        return DomainError(
            ErrorCode.NO_STORE_CAN_SERVE, field=["address"], stores=len(quote.refusals)
        )
    if quote.store_problem is not None:
        return DomainError(
            ErrorCode.STORE_CANNOT_SERVE, field=["storeId"], reason=quote.store_problem.value
        )
    for n, line in enumerate(quote.lines):
        if line.problem is None:
            continue
        code = {
            LineProblem.NOT_FOUND: ErrorCode.NOT_FOUND,
            LineProblem.NOT_ON_CHANNEL: ErrorCode.NOT_ON_CHANNEL,
            LineProblem.OUT_OF_STOCK: ErrorCode.OUT_OF_STOCK,
            LineProblem.SOLD_OUT: ErrorCode.SOLD_OUT,
        }[line.problem]
        where = "skuId" if line.problem is not LineProblem.OUT_OF_STOCK else "quantity"
        return DomainError(code, field=["lines", str(n), where], available=0)
    if quote.coupon_problem is not None:
        return DomainError(
            ErrorCode.COUPON_NOT_APPLICABLE,
            field=["couponId"],
            reason=quote.coupon_problem.value,
        )
    return None


@dataclass(frozen=True, slots=True)
class Candidates:
    """What routing and pricing need to know, read in one go."""

    stores: Sequence[Store]
    items: Mapping[tuple[int, int], CatalogItem]  # (store, sku) → item at that store's price
    stock: Mapping[tuple[int, int], StockView]  # (store, sku) → level, where one exists
    pending: Mapping[int, int]  # store → orders in its kitchen queue


def quote(
    checkout: Checkout,
    candidates: Candidates,
    *,
    at: time,
    shopper: Shopper,
    coupon: CouponOffer | None,
    fees: FeeRules,
    weights: RoutingWeights,
    nearby_m: int,
    now: datetime,
    deal: Deal | None = None,
) -> Quote:
    """Route (unless a store is pinned), then price the checkout at the store.

    A ``deal`` prices its SKU at the campaign's price; its units come from the campaign's
    quota, already held from the store's stock, so the shelf's level is not asked.
    """
    wanted = {line.sku_id: line.quantity for line in checkout.lines}
    refusals: dict[int, CannotServe] = {}
    store: Store | None = None
    store_problem: CannotServe | None = None
    distance: int | None = None
    if checkout.store_id is not None:
        store = next((s for s in candidates.stores if s.id == checkout.store_id), None)
        if store is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        address = checkout.address.location if checkout.address else None
        store_problem = why_not(store, address=address, at=at, lines={}, stock={})
        distance = store.distance_to(address) if address else None
    else:
        assert checkout.address is not None  # check_checkout: delivery needs an address
        # Catalog problems (an unknown SKU, the wrong channel) are the same at every store:
        # they show on the lines, whichever store routing picks.
        routed = route_order(
            candidates.stores,
            address=checkout.address.location,
            at=at,
            lines=wanted,
            stock=candidates.stock,
            pending=candidates.pending,
            weights=weights,
        )
        if isinstance(routed, Routed):
            store, distance = routed.store, routed.distance_m
        else:
            assert isinstance(routed, NoStoreCanServe)
            here = checkout.address.location
            refusals = {
                sid: why
                for sid, why in routed.reasons.items()
                if _store(candidates.stores, sid).distance_to(here) <= nearby_m
            }
    priced: list[PricedLine] = []
    for line in checkout.lines:
        item = (
            candidates.items.get((store.id, line.sku_id))
            if store
            else _any_item(candidates.items, line.sku_id)
        )
        view = candidates.stock.get((store.id, line.sku_id)) if store else None
        if deal is not None and line.sku_id == deal.sku_id:
            if item is not None:
                item = replace(item, unit_price_fen=deal.unit_price_fen)
            if view is not None and view.available is not None:
                view = None  # a tracked SKU: the quota holds its units
        problem = line_problem(item, line.quantity, checkout.channel, view)
        priced.append(PricedLine(line, item, problem))
    totals, coupon_problem = price(
        priced,
        store_id=store.id if store else 0,
        channel=checkout.channel,
        distance_m=distance,
        shopper=shopper,
        coupon=coupon,
        fees=fees,
        now=now,
        deal=deal,
    )
    return Quote(
        store=store,
        distance_m=distance,
        store_problem=store_problem,
        refusals=refusals,
        lines=tuple(priced),
        totals=totals,
        coupon_id=coupon.coupon_id if coupon else None,
        coupon_problem=coupon_problem,
    )


def _store(stores: Iterable[Store], store_id: int) -> Store:
    return next(s for s in stores if s.id == store_id)


def _any_item(items: Mapping[tuple[int, int], CatalogItem], sku_id: int) -> CatalogItem | None:
    return next((item for (_, sku), item in items.items() if sku == sku_id), None)
