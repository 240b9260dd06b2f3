"""Orders: the checkout (lines, store, fees, discounts), the lifecycle and refunds.

Everything here is pure: the services load what a rule needs and hand it in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from enum import StrEnum

from dinegraph.domain.campaigns import Deal
from dinegraph.domain.catalog import Channel, Product, Sku, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.pricing import (
    Cart,
    CartLine,
    CouponTerms,
    Inapplicable,
    Saving,
    Shopper,
    check_line_quantity,
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

MAX_ORDER_LINES = 50
IDEMPOTENCY_KEY_MAX = 64
NOTE_MAX = 200
DETAIL_MAX = 200
CONTACT_NAME_MAX = 30


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    GROUPING = "GROUPING"  # a group-buy member's order, paid, until the group is full
    PAID = "PAID"
    ACCEPTED = "ACCEPTED"
    PREPARING = "PREPARING"
    READY = "READY"
    DELIVERING = "DELIVERING"
    DELIVERED = "DELIVERED"
    PICKED_UP = "PICKED_UP"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


S = OrderStatus

# What the kitchen still has to make: these orders are a store's load, which routing weighs.
KITCHEN_QUEUE = frozenset({S.PAID, S.ACCEPTED, S.PREPARING})
# Food not yet started: a refund in these states puts the units back on the shelf.
UNPREPARED = frozenset({S.PENDING_PAYMENT, S.PAID, S.ACCEPTED})
REFUNDABLE = frozenset(
    {S.PAID, S.ACCEPTED, S.PREPARING, S.READY, S.DELIVERING, S.DELIVERED, S.PICKED_UP, S.COMPLETED}
)
FINAL = frozenset({S.COMPLETED, S.CANCELLED, S.REFUNDED})
# What a store's board shows: paid and not finished (a group's orders wait for the group).
OPEN = frozenset(OrderStatus) - FINAL - {S.PENDING_PAYMENT, S.GROUPING}

_STAFF_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PAID: frozenset({S.ACCEPTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PREPARING}),
    S.PREPARING: frozenset({S.READY}),
    S.READY: frozenset({S.DELIVERING, S.PICKED_UP}),
    S.DELIVERING: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset({S.COMPLETED}),
    S.PICKED_UP: frozenset({S.COMPLETED}),
}
_CUSTOMER_CANCELS = frozenset({S.PENDING_PAYMENT, S.PAID})


class Mover(StrEnum):
    """Who asks for a status change: each may make different moves."""

    STAFF = "STAFF"  # staff of the order's store
    CUSTOMER = "CUSTOMER"  # the order's member
    SYSTEM = "SYSTEM"  # payment, the unpaid-order sweep, a delivery platform


def check_move(order: Order, target: OrderStatus, mover: Mover) -> None:
    """Refuse a status change the lifecycle does not allow; nothing changes then.

    PENDING_PAYMENT → PAID → ACCEPTED → PREPARING → READY → (DELIVERING → DELIVERED |
    PICKED_UP) → COMPLETED. Only payment makes an order PAID; the customer may cancel
    before it is ACCEPTED; staff may reject a PAID order; REFUNDED is reached by a refund.
    A group-buy member's paid order waits in GROUPING: the group's success makes it PAID,
    its failure cancels it with a refund (both SYSTEM moves).
    """
    current = order.status
    if mover is Mover.CUSTOMER:
        allowed = target is S.CANCELLED and current in _CUSTOMER_CANCELS
    elif mover is Mover.SYSTEM:
        allowed = (current, target) in {
            (S.PENDING_PAYMENT, S.PAID),
            (S.PENDING_PAYMENT, S.CANCELLED),
            (S.PENDING_PAYMENT, S.GROUPING),
            (S.GROUPING, S.PAID),
            (S.GROUPING, S.CANCELLED),
        } or target in _STAFF_MOVES.get(current, frozenset())
    else:
        allowed = target in _STAFF_MOVES.get(current, frozenset())
    if allowed and target in (S.DELIVERING, S.DELIVERED):
        allowed = order.channel is Channel.DELIVERY
    if allowed and target is S.PICKED_UP:
        allowed = order.channel is not Channel.DELIVERY
    if not allowed:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, field=["status"], current=current, target=target
        )


def load_change(before: OrderStatus, after: OrderStatus) -> int:
    """How a status change moves the store's kitchen queue: +1, -1 or 0."""
    return int(after in KITCHEN_QUEUE) - int(before in KITCHEN_QUEUE)


# --- the order ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryAddress:
    location: GeoPoint
    detail: str
    contact_name: str
    contact_phone: str


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_no: int
    sku_id: int
    product_id: int
    name: str  # product and SKU names as they were when ordered
    specs: Mapping[str, str]
    unit_price_fen: int  # after any campaign price, before discounts
    quantity: int
    refunded_quantity: int = 0

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    member_id: int
    store_id: int
    channel: Channel
    status: OrderStatus
    idempotency_key: str
    fingerprint: str
    subtotal_fen: int
    tier_discount_fen: int
    coupon_discount_fen: int
    delivery_fee_fen: int
    delivery_discount_fen: int
    packaging_fee_fen: int
    total_fen: int
    refunded_fen: int
    coupon_id: int | None
    address: DeliveryAddress | None
    distance_m: int | None
    note: str
    pickup_code: str | None
    placed_at: datetime
    pay_by: datetime
    paid_at: datetime | None
    completed_at: datetime | None
    version: int
    lines: tuple[OrderLine, ...] = ()
    campaign_id: int | None = None  # placed through a group-buy, bargain or flash sale
    group_id: int | None = None
    bargain_id: int | None = None

    @property
    def reference(self) -> str:
        """The key of this order's stock holds, coupon lock, spend and points."""
        return order_reference(self.id)

    @property
    def paid_fen(self) -> int:
        """What the customer has paid and not had back."""
        return self.total_fen - self.refunded_fen if self.paid_at is not None else 0

    @property
    def goods_paid_fen(self) -> int:
        return self.subtotal_fen - self.tier_discount_fen - self.coupon_discount_fen


def order_reference(order_id: int) -> str:
    return f"order:{order_id}"


def order_number(order_id: int, placed_at: datetime) -> str:
    """The number on receipts and tickets: the day, then the id (20261122000123)."""
    return f"{placed_at:%Y%m%d}{order_id:06d}"


def pickup_code(order_id: int) -> str:
    """取餐号: four digits, distinct across any 10,000 consecutive orders of the chain."""
    return f"{order_id % 10_000:04d}"


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order was placed or changed status; versions grow with every change."""

    order_id: int
    store_id: int
    member_id: int
    status: str
    version: int


# --- checkout input -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Checkout:
    """What a customer asks to buy: priced by quoteOrder, placed by placeOrder."""

    channel: Channel
    lines: tuple[LineRequest, ...]
    store_id: int | None = None
    address: DeliveryAddress | None = None
    coupon_id: int | None = None
    note: str = ""


def check_checkout(checkout: Checkout) -> Checkout:
    """Refuse a malformed checkout before anything is read, naming the field."""
    if not checkout.lines:
        raise DomainError(ErrorCode.REQUIRED, field=["lines"])
    if len(checkout.lines) > MAX_ORDER_LINES:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["lines"], min=1, max=MAX_ORDER_LINES)
    seen: set[int] = set()
    for n, line in enumerate(checkout.lines):
        check_line_quantity(line.quantity, field=["lines", str(n), "quantity"])
        if line.sku_id in seen:
            raise DomainError(ErrorCode.DUPLICATE, field=["lines", str(n), "skuId"])
        seen.add(line.sku_id)
    if checkout.channel is Channel.DELIVERY:
        if checkout.address is None:
            raise DomainError(ErrorCode.REQUIRED, field=["address"])
    elif checkout.store_id is None:
        # Pickup, dine-in and retail happen at a store the customer chose.
        raise DomainError(ErrorCode.REQUIRED, field=["storeId"])
    if len(checkout.note) > NOTE_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["note"], max=NOTE_MAX)
    return checkout


def clean_address(
    *, lat: float, lng: float, detail: str, contact_name: str, contact_phone: str
) -> DeliveryAddress:
    from dinegraph.domain.members import check_phone

    location = GeoPoint.checked(lat, lng, "address")
    detail, name = detail.strip(), contact_name.strip()
    for value, key, limit in (
        (detail, "detail", DETAIL_MAX),
        (name, "contactName", CONTACT_NAME_MAX),
    ):
        if not value:
            raise DomainError(ErrorCode.REQUIRED, field=["address", key])
        if len(value) > limit:
            raise DomainError(ErrorCode.TOO_LONG, field=["address", key], max=limit)
    phone = check_phone(contact_phone, "contactPhone")
    return DeliveryAddress(location, detail, name, phone)


def clean_idempotency_key(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise DomainError(ErrorCode.REQUIRED, field=["idempotencyKey"])
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["idempotencyKey"], max=IDEMPOTENCY_KEY_MAX)
    return key


def checkout_fingerprint(checkout: Checkout) -> str:
    """The request's payload, hashed: a replay with another payload reuses its key wrongly."""
    address = checkout.address
    payload = {
        "channel": checkout.channel.value,
        "store": checkout.store_id,
        "address": [
            address.location.lat,
            address.location.lng,
            address.detail,
            address.contact_name,
            address.contact_phone,
        ]
        if address
        else None,
        "lines": [[line.sku_id, line.quantity] for line in checkout.lines],
        "coupon": checkout.coupon_id,
        "note": checkout.note,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


# --- fees -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeRules:
    """Delivery fee by distance band, waived above a subtotal; packaging per unit, capped."""

    bands: tuple[tuple[int, int], ...]  # (up to metres, fee fen), ascending
    free_delivery_from_fen: int | None
    packaging_fen_per_unit: int
    packaging_cap_fen: int

    def delivery_fee(self, distance_m: int) -> int:
        for up_to, fee in self.bands:
            if distance_m <= up_to:
                return fee
        return self.bands[-1][1] if self.bands else 0

    def packaging_fee(self, channel: Channel, units: int) -> int:
        """Takeaway food is packed; dine-in and retail goods are not."""
        if channel not in (Channel.DELIVERY, Channel.PICKUP):
            return 0
        return min(units * self.packaging_fen_per_unit, self.packaging_cap_fen)


def parse_bands(raw: str) -> tuple[tuple[int, int], ...]:
    """``3000:400,5000:600``: up to 3 km ¥4, up to 5 km ¥6 (and beyond, the last band)."""
    bands: list[tuple[int, int]] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        metres, fee = part.split(":")
        bands.append((int(metres), int(fee)))
    bands.sort()
    if any(m <= 0 or f < 0 for m, f in bands):
        raise ValueError("delivery fee bands need positive distances and fees >= 0")
    return tuple(bands)


class DeliveryWaiver(StrEnum):
    """Why the delivery fee was not charged."""

    ABOVE_THRESHOLD = "ABOVE_THRESHOLD"
    TIER = "TIER"
    COUPON = "COUPON"


# --- pricing --------------------------------------------------------------------------


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


# --- refunds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_no: int
    quantity: int


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount_fen: int
    lines: tuple[RefundLine, ...]  # units refunded per line
    full: bool  # nothing is left to refund afterwards
    return_stock: bool  # the food was not started: units go back on the shelf
    restore_coupon: bool


def plan_refund(
    order: Order, lines: Sequence[RefundLine] | None, *, coupon_still_valid: bool
) -> RefundPlan:
    """What a refund gives back: all that is left (``lines`` None) or some units.

    A line's refund is its share of what the dishes cost after discounts, rounded down, so
    partial refunds never add up to more than was paid; the refund that takes the last
    unit also returns the fees. Stock goes back only if the kitchen had not started, and
    the coupon only with a full refund before preparation, while it is still valid.
    """
    if order.status not in REFUNDABLE:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"], current=order.status)
    by_no = {line.line_no: line for line in order.lines}
    wanted: dict[int, int] = {}
    if lines is None:
        wanted = {
            line.line_no: line.quantity - line.refunded_quantity
            for line in order.lines
            if line.quantity > line.refunded_quantity
        }
    else:
        if not lines:
            raise DomainError(ErrorCode.REQUIRED, field=["lines"])
        for n, line in enumerate(lines):
            found = by_no.get(line.line_no)
            if found is None:
                raise DomainError(ErrorCode.NOT_FOUND, field=["lines", str(n), "lineId"])
            left = found.quantity - found.refunded_quantity - wanted.get(line.line_no, 0)
            if not 1 <= line.quantity <= left:
                raise DomainError(
                    ErrorCode.OUT_OF_RANGE,
                    field=["lines", str(n), "quantity"],
                    min=1,
                    max=max(left, 0),
                )
            wanted[line.line_no] = wanted.get(line.line_no, 0) + line.quantity
    units_left = sum(line.quantity - line.refunded_quantity for line in order.lines)
    full = sum(wanted.values()) == units_left
    if not wanted and order.total_fen - order.refunded_fen <= 0:
        raise DomainError(ErrorCode.NOTHING_TO_REFUND, field=["orderId"])
    if full:
        amount = order.total_fen - order.refunded_fen
    else:
        goods = sum(by_no[no].unit_price_fen * qty for no, qty in wanted.items())
        amount = goods * order.goods_paid_fen // order.subtotal_fen if order.subtotal_fen else 0
        amount = min(amount, order.total_fen - order.refunded_fen)
    unprepared = order.status in UNPREPARED
    return RefundPlan(
        amount_fen=amount,
        lines=tuple(RefundLine(no, qty) for no, qty in sorted(wanted.items())),
        full=full,
        return_stock=unprepared,
        restore_coupon=full and unprepared and order.coupon_id is not None and coupon_still_valid,
    )


def points_to_reverse(earned: int, refund_fen: int, paid_fen: int) -> int:
    """The share of an order's earned points that a refund takes back, rounded up."""
    if earned <= 0 or paid_fen <= 0:
        return 0
    return min(earned, -(-earned * refund_fen // paid_fen))


def spec_text(specs: Mapping[str, str]) -> str:
    return " / ".join(f"{k}:{v}" for k, v in specs.items())
