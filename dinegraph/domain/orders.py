"""Orders: the order and its lines, the status lifecycle, and who may move it.

Everything here is pure: the services load what a rule needs and hand it in. The checkout
(``checkout``), its fees (``fees``), its pricing (``quotes``) and refunds (``refunds``) have
modules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint

IDEMPOTENCY_KEY_MAX = 64
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


class OrderSource(StrEnum):
    """Where an order was taken: the mini-program, or a partner's till or platform."""

    MINI_PROGRAM = "MINI_PROGRAM"
    POS = "POS"
    MEITUAN = "MEITUAN"
    ELEME = "ELEME"
    DOUYIN = "DOUYIN"

    @property
    def platform(self) -> bool:
        """A takeaway platform: its customer has accepted and paid before the store hears."""
        return self not in (OrderSource.MINI_PROGRAM, OrderSource.POS)


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
        # A partner's delivery order leaves with the partner's rider, not with ours.
        allowed = order.channel is Channel.DELIVERY and order.source is OrderSource.MINI_PROGRAM
    if not allowed and order.source is not OrderSource.MINI_PROGRAM:
        # Handed over at the counter or to the platform's rider, a partner's order is done.
        allowed = mover is not Mover.CUSTOMER and (current, target) == (S.READY, S.COMPLETED)
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
    note: str = ""  # a partner's note for this line (不要香菜)

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    member_id: int | None  # None: sold through a partner (POS, a takeaway platform)
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
    source: OrderSource = OrderSource.MINI_PROGRAM
    external_id: str | None = None  # the partner's order id; with the source, unique
    table_no: str | None = None
    pickup_at: datetime | None = None  # when the customer or the platform's rider comes
    cancel_reason: str | None = None  # a platform's, when it cancelled the order

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
    member_id: int | None
    status: str
    version: int


def order_changed(order: Order) -> OrderChanged:
    """What followers of the order (its member, its store's board) are told of a change."""
    return OrderChanged(
        order_id=order.id,
        store_id=order.store_id,
        member_id=order.member_id,
        status=order.status.value,
        version=order.version,
    )


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


def spec_text(specs: Mapping[str, str]) -> str:
    return " / ".join(f"{k}:{v}" for k, v in specs.items())
