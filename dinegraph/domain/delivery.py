"""Deliveries: the trip of an order from its store to the customer, and its courier.

Pure rules: which statuses follow which, when a courier's reported position is believable,
and how long is left (ETA). The services load what a rule needs and hand it in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.domain.identity import (
    MemberViewer,
    PartnerViewer,
    StaffRole,
    StaffViewer,
    Viewer,
    can_read_order,
)
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.providers import Provider as Provider  # re-exported: part of deliveries
from dinegraph.domain.text import clean_text

NAME_MAX = 30
FUTURE_SKEW = timedelta(seconds=60)  # a partner's clock may run this far ahead of ours
FARTHEST_FROM_STORE_M = 50_000  # a courier this far from the store is a bad fix, not a trip
PICKUP_SECONDS = 300  # an estimate of the time at the store, before the courier sets off


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # created, waiting for a courier
    ASSIGNED = "ASSIGNED"
    ARRIVED_AT_STORE = "ARRIVED_AT_STORE"
    PICKED_UP = "PICKED_UP"
    DELIVERING = "DELIVERING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


D = DeliveryStatus
_NEXT: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    D.PENDING: frozenset({D.ASSIGNED, D.FAILED}),
    D.ASSIGNED: frozenset({D.ARRIVED_AT_STORE, D.PICKED_UP, D.FAILED}),
    D.ARRIVED_AT_STORE: frozenset({D.PICKED_UP, D.FAILED}),
    D.PICKED_UP: frozenset({D.DELIVERING, D.DELIVERED, D.FAILED}),
    D.DELIVERING: frozenset({D.DELIVERED, D.FAILED}),
}
FINAL = frozenset({D.DELIVERED, D.FAILED})
IN_PROGRESS = frozenset(DeliveryStatus) - FINAL


def check_delivery_move(current: DeliveryStatus, target: DeliveryStatus) -> None:
    """PENDING → ASSIGNED → (ARRIVED_AT_STORE →) PICKED_UP → DELIVERING → DELIVERED, or FAILED."""
    if target not in _NEXT.get(current, frozenset()):
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, field=["status"], current=current, target=target
        )


def order_follows(status: DeliveryStatus) -> OrderStatus | None:
    """The order's status once its delivery reaches ``status`` (None: the order stays)."""
    if status in (D.PICKED_UP, D.DELIVERING):
        return OrderStatus.DELIVERING
    if status is D.DELIVERED:
        return OrderStatus.DELIVERED
    return None


@dataclass(frozen=True, slots=True)
class Courier:
    name: str
    phone: str


class CallOff(StrEnum):
    """Why a platform's order is called off: each platform is told in its own words."""

    REFUNDED = "REFUNDED"  # the order was refunded: nobody needs the trip
    NO_RIDER = "NO_RIDER"  # no rider took it in time: the next platform carries it


@dataclass(frozen=True, slots=True)
class CourierContact:
    """How a customer reaches the courier: the platform's privacy number (虚拟号/隐私号),
    which forwards to the rider and hides both phones, never the rider's own."""

    number: str
    extension: str | None = None  # dialled after the number, when the platform binds one
    expires_at: datetime | None = None  # when the platform says the binding ends


# A courier is reached while they carry the order: from taking it until it is handed over.
CONTACTABLE = frozenset(
    {
        DeliveryStatus.ASSIGNED,
        DeliveryStatus.ARRIVED_AT_STORE,
        DeliveryStatus.PICKED_UP,
        DeliveryStatus.DELIVERING,
    }
)
_EXTENSION_MARKS = (",", "，", "-", "转", "#", "_")


def privacy_contact(text: str, expires_at: datetime | None = None) -> CourierContact | None:
    """A platform's privacy number as it writes it (``13800138000``, ``13800138000,1234``,
    ``13800138000转1234``...) as a contact; None when there is no number in it."""
    text = text.strip()
    for mark in _EXTENSION_MARKS:
        number, found, extension = text.partition(mark)
        if found:
            break
    else:
        number, extension = text, ""
    number, extension = number.strip(), extension.strip()
    if not number or not all(c.isdigit() or c in "+ " for c in number):
        return None
    if extension and not extension.isdigit():
        return None
    return CourierContact(number.replace(" ", ""), extension or None, expires_at)


def can_contact_courier(viewer: Viewer, delivery: Delivery) -> bool:
    """The order's member, and the staff of its store (head office included)."""
    if isinstance(viewer, MemberViewer):
        return viewer.member_id == delivery.member_id
    if isinstance(viewer, StaffViewer):
        return viewer.manages(delivery.store_id) or viewer.role is StaffRole.OPERATOR
    return False


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    order_id: int
    store_id: int
    member_id: int
    provider: Provider
    status: DeliveryStatus
    courier: Courier | None
    rider_id: int | None  # OWN_RIDER: the store's rider carrying it
    position: GeoPoint | None
    position_at: datetime | None
    received_at: datetime | None  # when the last position arrived (rate limit)
    destination: GeoPoint
    origin: GeoPoint  # the store
    eta_seconds: int | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    """A delivery's public state after a change: pushed as it is, with no read per push."""

    delivery_id: int
    order_id: int
    store_id: int
    provider: str
    status: str
    lat: float | None
    lng: float | None
    eta_seconds: int | None
    courier_name: str | None
    courier_phone: str | None
    version: int


def changed(delivery: Delivery) -> DeliveryChanged:
    pos = delivery.position
    courier = delivery.courier
    return DeliveryChanged(
        delivery_id=delivery.id,
        order_id=delivery.order_id,
        store_id=delivery.store_id,
        provider=delivery.provider.value,
        status=delivery.status.value,
        lat=pos.lat if pos else None,
        lng=pos.lng if pos else None,
        eta_seconds=delivery.eta_seconds,
        courier_name=courier.name if courier else None,
        courier_phone=courier.phone if courier else None,
        version=delivery.version,
    )


# --- positions ------------------------------------------------------------------------


class PositionVerdict(StrEnum):
    ACCEPTED = "ACCEPTED"
    STALE = "STALE"  # older than the last one: kept in history, the courier stays put


def check_position(
    delivery: Delivery,
    point: GeoPoint,
    recorded_at: datetime,
    *,
    now: datetime,
    max_speed_kmh: float,
    min_interval: timedelta,
) -> PositionVerdict:
    """Whether a courier's reported position may move the courier on the map.

    Refused with a code: a delivery that is over, a time ahead of ours, a point far from the
    store, a report sooner than ``min_interval`` after the last one (rate limit), and a jump
    faster than ``max_speed_kmh`` from the last position. A report older than the last is
    STALE: it never moves the courier backwards.
    """
    if delivery.status in FINAL:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, field=["deliveryId"], current=delivery.status
        )
    if recorded_at > now + FUTURE_SKEW:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["recordedAt"])
    if distance_m(delivery.origin, point) > FARTHEST_FROM_STORE_M:
        raise DomainError(ErrorCode.IMPLAUSIBLE_POSITION, field=["lat"])
    last, last_at = delivery.position, delivery.position_at
    if last is None or last_at is None:
        return PositionVerdict.ACCEPTED
    if recorded_at <= last_at:
        return PositionVerdict.STALE
    if delivery.received_at is not None and now - delivery.received_at < min_interval:
        raise DomainError(ErrorCode.RATE_LIMITED, field=["deliveryId"])
    seconds = (recorded_at - last_at).total_seconds()
    metres = distance_m(last, point)
    # A GPS fix wobbles by tens of metres: allow that much at any speed.
    if metres > 100 and metres / seconds * 3.6 > max_speed_kmh:
        raise DomainError(ErrorCode.IMPLAUSIBLE_POSITION, field=["lat"])
    return PositionVerdict.ACCEPTED


def eta_seconds(
    status: DeliveryStatus,
    *,
    position: GeoPoint | None,
    origin: GeoPoint,
    destination: GeoPoint,
    speed_kmh: float,
) -> int | None:
    """Seconds until delivered: the remaining road (straight line × 1.3) at the provider's
    speed, plus the pickup still to come. None once the trip is over."""
    if status in FINAL:
        return None
    metres_per_second = speed_kmh / 3.6
    road = 1.3  # streets are longer than the straight line
    here = position or origin
    if status in (D.PENDING, D.ASSIGNED, D.ARRIVED_AT_STORE):
        to_store = distance_m(here, origin) if status is not D.ARRIVED_AT_STORE else 0
        trip = distance_m(origin, destination)
        return math.ceil((to_store + trip) * road / metres_per_second) + PICKUP_SECONDS
    return math.ceil(distance_m(here, destination) * road / metres_per_second)


def parse_speeds(raw: str) -> dict[Provider, float]:
    """``OWN_RIDER:15,DADA:18``: each provider's average speed in km/h."""
    speeds: dict[Provider, float] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, value = part.split(":")
        speed = float(value)
        if not 1 <= speed <= 120:
            raise ValueError(f"a courier speed of {speed} km/h is not believable")
        speeds[Provider(name.strip())] = speed
    return speeds


def speed_of(speeds: Mapping[Provider, float], provider: Provider) -> float:
    return speeds.get(provider, 15.0)


def clean_courier(name: str, phone: str, at: Sequence[str] = ("courier",)) -> Courier:
    """A courier's (or rider's) name and mobile number; ``at`` is where the input holds them."""
    from dinegraph.domain.members import check_phone

    name = clean_text(name, [*at, "name"], max_length=NAME_MAX)
    try:
        return Courier(name, check_phone(phone, "phone"))
    except DomainError as error:
        raise DomainError(error.code, [*at, "phone"], **error.params) from error


def can_read_delivery(viewer: Viewer, delivery: Delivery) -> bool:
    """The order's member, the staff of its store and head office, and the carrying partner."""
    if isinstance(viewer, MemberViewer):
        return viewer.member_id == delivery.member_id
    if isinstance(viewer, StaffViewer):
        return viewer.manages(delivery.store_id) or viewer.role is StaffRole.OPERATOR
    if isinstance(viewer, PartnerViewer):
        return carries(viewer, delivery)
    return False


def can_follow_courier(
    viewer: Viewer, member_id: int | None, store_id: int, delivery: Delivery | None
) -> bool:
    """An order's courier is followed by whoever reads the order, and by the platform
    carrying its delivery."""
    if can_read_order(viewer, member_id, store_id):
        return True
    return isinstance(viewer, PartnerViewer) and delivery is not None and carries(viewer, delivery)


def carries(viewer: PartnerViewer, delivery: Delivery) -> bool:
    return viewer.partner == delivery.provider.value and viewer.covers(delivery.store_id)


def sees_courier_phone(viewer: Viewer) -> bool:
    """The store and the platform see the courier's own number; customers see none of it
    (not even masked): they call through the platform's privacy number (contactCourier)."""
    return isinstance(viewer, StaffViewer | PartnerViewer)


def sees_dropoff(viewer: Viewer, delivery: Delivery) -> bool:
    """The customer's address goes to the store's staff and the carrying platform only."""
    if isinstance(viewer, StaffViewer):
        return viewer.manages(delivery.store_id)
    return isinstance(viewer, PartnerViewer) and carries(viewer, delivery)
