"""What carriers report (positions, statuses) and what store staff do with deliveries.

Partner writes need an API key with scope ``delivery:write`` bound to the platform that
carries the delivery; the order follows its delivery (DELIVERING, then DELIVERED).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dinegraph.domain.calls import CallRefused, RetryLater
from dinegraph.domain.carriers import CarrierRule, check_platforms
from dinegraph.domain.catalog import Channel
from dinegraph.domain.delivery import (
    CONTACTABLE,
    FINAL,
    Courier,
    CourierContact,
    Delivery,
    DeliveryStatus,
    PositionVerdict,
    Provider,
    can_contact_courier,
    changed,
    check_delivery_move,
    check_position,
    clean_courier,
    order_follows,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import (
    PartnerViewer,
    Scope,
    StaffViewer,
    Viewer,
    require_catalog_editor,
    require_store_manager,
)
from dinegraph.domain.orders import Mover, OrderStatus, check_move
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.dispatch import (
    DeliveryPolicy,
    assign_in,
    eta_of,
    open_delivery,
)
from dinegraph.domain.services.orders import move_order

# A delivery order staff may dispatch (again): accepted and not yet handed over.
DISPATCHABLE = frozenset({OrderStatus.ACCEPTED, OrderStatus.PREPARING, OrderStatus.READY})


def require_carrier(viewer: Viewer, delivery: Delivery | None) -> PartnerViewer:
    """The platform carrying ``delivery``, by its API key; nobody else writes its trip."""
    if not isinstance(viewer, PartnerViewer):
        if isinstance(viewer, StaffViewer):
            raise DomainError(ErrorCode.FORBIDDEN)
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    if Scope.DELIVERY_WRITE.value not in viewer.scopes:
        raise DomainError(ErrorCode.FORBIDDEN)
    if delivery is None or not viewer.covers(delivery.store_id):
        raise DomainError(ErrorCode.NOT_FOUND, field=["deliveryId"])
    if viewer.partner != delivery.provider.value:
        raise DomainError(ErrorCode.WRONG_PROVIDER, field=["deliveryId"])
    return viewer


@dataclass(frozen=True, slots=True)
class ReportPosition:
    delivery_id: int
    lat: float
    lng: float
    recorded_at: datetime
    now: datetime
    policy: DeliveryPolicy


def judge_position(
    delivery: Delivery, point: GeoPoint, cmd: ReportPosition
) -> tuple[PositionVerdict, Delivery | None]:
    """The verdict on a reported point (its refusal raised) and the delivery moved there with
    a fresh ETA, or None when the point is STALE: kept in the track, the courier stays put.
    One rule for a report written alone and for one written in a batch."""
    verdict = check_position(
        delivery,
        point,
        cmd.recorded_at,
        now=cmd.now,
        max_speed_kmh=cmd.policy.max_speed_kmh,
        min_interval=cmd.policy.min_report_interval,
    )
    if verdict is PositionVerdict.STALE:
        return verdict, None
    moved = replace(
        delivery,
        position=point,
        position_at=cmd.recorded_at,
        received_at=cmd.now,
        version=delivery.version + 1,
        updated_at=cmd.now,
    )
    return verdict, replace(moved, eta_seconds=eta_of(moved, cmd.policy))


async def report_courier_position(
    cmd: ReportPosition, *, uow: UnitOfWork, viewer: Viewer
) -> tuple[Delivery, PositionVerdict]:
    """Move the courier on the map and refresh the ETA; every report is kept for replay."""
    point = GeoPoint.checked(cmd.lat, cmd.lng, "lat")
    async with uow:
        delivery = await uow.deliveries.get(cmd.delivery_id)
        require_carrier(viewer, delivery)
        assert delivery is not None
        uow.wrote("Delivery", delivery.id, delivery.store_id)
        verdict, moved = judge_position(delivery, point, cmd)
        await uow.deliveries.add_position(delivery.id, point, cmd.recorded_at, cmd.now)
        if moved is None:
            await uow.commit()
            return delivery, verdict
        if not await uow.deliveries.save(moved, expected_version=delivery.version):
            # Another report of this delivery landed at the same moment.
            raise DomainError(ErrorCode.RATE_LIMITED, field=["deliveryId"])
        uow.record(changed(moved))
        await uow.commit()
    return moved, verdict


@dataclass(frozen=True, slots=True)
class ReportStatus:
    delivery_id: int
    status: DeliveryStatus
    courier: tuple[str, str] | None  # (name, phone)
    at: datetime
    now: datetime
    policy: DeliveryPolicy


async def report_delivery_status(cmd: ReportStatus, *, uow: UnitOfWork, viewer: Viewer) -> Delivery:
    """The platform moves its delivery on; the order follows (DELIVERING, DELIVERED)."""
    courier = clean_courier(*cmd.courier) if cmd.courier is not None else None
    async with uow:
        delivery = await uow.deliveries.get(cmd.delivery_id)
        require_carrier(viewer, delivery)
        assert delivery is not None
        uow.wrote("Delivery", delivery.id, delivery.store_id)
        if delivery.status is cmd.status and (courier is None or courier == delivery.courier):
            return delivery  # told twice: nothing new
        check_delivery_move(delivery.status, cmd.status)
        if cmd.status is DeliveryStatus.ASSIGNED and courier is None:
            raise DomainError(ErrorCode.REQUIRED, field=["courier"])
        order_status = order_follows(cmd.status)
        if order_status is not None:
            order = await uow.orders.get(delivery.order_id)
            assert order is not None
            if order.status is not order_status:
                check_move(order, order_status, Mover.SYSTEM)
                await move_order(uow, order, order_status, cmd.now)
        moved = replace(
            delivery,
            status=cmd.status,
            courier=courier or delivery.courier,
            version=delivery.version + 1,
            updated_at=cmd.now,
        )
        moved = replace(moved, eta_seconds=eta_of(moved, cmd.policy))
        if not await uow.deliveries.save(moved, expected_version=delivery.version):
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["deliveryId"])
        if moved.status in FINAL and moved.rider_id is not None:
            await uow.deliveries.release_rider(moved.rider_id, moved.position)
        uow.record(changed(moved))
        await uow.commit()
    return moved


@dataclass(frozen=True, slots=True)
class DispatchAgain:
    order_id: int
    rider_id: int | None  # OWN_RIDER: this rider rather than the nearest idle one
    now: datetime
    policy: DeliveryPolicy


async def dispatch_again(cmd: DispatchAgain, *, uow: UnitOfWork, viewer: Viewer) -> Delivery:
    """Staff of the store: dispatch a ready order whose delivery failed or found no courier,
    or hand a waiting delivery to one of the store's riders."""
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        require_store_manager(viewer, order.store_id)
        uow.wrote("Order", order.id, order.store_id)
        store = await uow.catalog.get_store(order.store_id)
        assert store is not None
        if order.channel is not Channel.DELIVERY or order.status not in DISPATCHABLE:
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
        delivery = await open_delivery(uow, order, store, cmd.policy, cmd.now)
        own = delivery.provider is Provider.OWN_RIDER
        if cmd.rider_id is not None and not own:
            raise DomainError(ErrorCode.WRONG_PROVIDER, field=["riderId"])
        if own and delivery.status is DeliveryStatus.PENDING:
            rider: tuple[int, Courier] | None
            if cmd.rider_id is not None:
                courier = await uow.deliveries.claim_rider(cmd.rider_id, order.store_id)
                rider = (cmd.rider_id, courier) if courier else None
            else:
                rider = await uow.deliveries.nearest_idle_rider(order.store_id, store.location)
            if rider is None:  # everyone is out: it waits for the next rider back
                raise DomainError(ErrorCode.NOT_AVAILABLE, field=["riderId"])
            delivery = await assign_in(
                uow, delivery, rider[1], rider[0], policy=cmd.policy, now=cmd.now
            )
        await uow.commit()
    if own:
        return delivery
    # The platform was called as the unit closed (a call out): the delivery as it is now.
    async with uow.reading() as reads:
        return await reads.deliveries.get(delivery.id) or delivery


async def prune_positions(now: datetime, retention: timedelta, *, uow: UnitOfWork) -> int:
    """Forget courier positions older than ``retention`` (the latest of each trip stays on
    the delivery itself); returns how many went."""
    async with uow:
        gone = await uow.deliveries.prune_positions(now - retention)
        await uow.commit()
    return gone


@dataclass(frozen=True, slots=True)
class SetDeliveryProvider:
    store_id: int
    provider: Provider
    available: frozenset[Provider] | None = None  # the platforms served (None: every one)
    platforms: tuple[Provider, ...] | None = None  # to choose from at dispatch (None: keep)
    rule: CarrierRule | None = None  # how (None: keep)


async def set_delivery_provider(
    cmd: SetDeliveryProvider, *, uow: UnitOfWork, viewer: Viewer
) -> Provider:
    """Head office chooses who carries a store's deliveries from now on (trips under way
    keep their carrier)."""
    require_catalog_editor(viewer)
    served = cmd.available is None or cmd.provider in cmd.available
    if cmd.provider is not Provider.OWN_RIDER and not served:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["provider"])
    platforms = check_platforms(cmd.platforms) if cmd.platforms is not None else None
    if platforms and cmd.available is not None and not set(platforms) <= cmd.available:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["platforms"])
    async with uow:
        if not await uow.deliveries.set_provider(cmd.store_id, cmd.provider, platforms, cmd.rule):
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        await uow.commit()
    return cmd.provider


@dataclass(frozen=True, slots=True)
class AddRider:
    store_id: int
    name: str
    phone: str


async def add_rider(cmd: AddRider, *, uow: UnitOfWork, viewer: Viewer) -> int:
    """A store manager adds one of the store's own riders (OWN_RIDER delivery)."""
    require_store_manager(viewer, cmd.store_id)
    courier = clean_courier(cmd.name, cmd.phone, at=())
    async with uow:
        if await uow.catalog.get_store(cmd.store_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        rider_id = await uow.deliveries.add_rider(cmd.store_id, courier)
        uow.wrote("Rider", rider_id, cmd.store_id)
        await uow.commit()
    return rider_id


@dataclass(frozen=True, slots=True)
class ContactCourier:
    delivery_id: int
    policy: DeliveryPolicy


async def contact_courier(
    cmd: ContactCourier, *, uow: UnitOfWork, viewer: Viewer
) -> tuple[Delivery, CourierContact]:
    """How the order's member (or its store's staff) reaches the courier now: the
    platform's privacy number, asked of the platform at the moment of the call (a binding
    may change with the rider or run out). Never the rider's own number.

    NOT_AVAILABLE: no courier on it yet, the trip is over, the store's own rider (the
    customer calls the store), or the platform offers no privacy number.
    PROVIDER_UNAVAILABLE: the platform did not answer in time; try again.
    """
    async with uow:
        delivery = await uow.deliveries.get(cmd.delivery_id)
    if delivery is None or not can_contact_courier(viewer, delivery):
        raise DomainError(ErrorCode.NOT_FOUND, field=["deliveryId"])
    if delivery.status not in CONTACTABLE or delivery.provider is Provider.OWN_RIDER:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["deliveryId"], status=delivery.status)
    platform = cmd.policy.platforms.get(delivery.provider)
    if platform is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["deliveryId"])
    try:
        contact = await platform.courier_contact(delivery.id)
    except RetryLater as busy:
        raise DomainError(ErrorCode.PROVIDER_UNAVAILABLE, field=["deliveryId"]) from busy
    except CallRefused as refused:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["deliveryId"]) from refused
    if contact is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["deliveryId"])
    return delivery, contact
