"""Dispatch: a delivery order that is ready (or accepted) gets a delivery and a courier.

The store's own riders are assigned in the same transaction (the nearest idle one); a
platform is called after commit, through its port, and names its courier then or later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dinegraph.domain.catalog import Channel, Store
from dinegraph.domain.delivery import (
    FINAL,
    Courier,
    Delivery,
    DeliveryStatus,
    Provider,
    changed,
    eta_seconds,
    speed_of,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import Order, OrderStatus
from dinegraph.domain.ports import DeliveryPlatform, DispatchRequest, UnitOfWork

log = logging.getLogger("dinegraph.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """The chain's delivery settings and platform adapters, chosen once by the wiring."""

    dispatch_on: OrderStatus  # READY, or ACCEPTED to call the courier while cooking
    speeds: Mapping[Provider, float]  # km/h, for the ETA
    max_speed_kmh: float  # a faster jump between two positions is a bad fix
    min_report_interval: timedelta  # per delivery
    platforms: Mapping[Provider, DeliveryPlatform]


def should_dispatch(order: Order, target: OrderStatus, policy: DeliveryPolicy) -> bool:
    return order.channel is Channel.DELIVERY and target is policy.dispatch_on


async def open_delivery(
    uow: UnitOfWork, order: Order, store: Store, policy: DeliveryPolicy, now: datetime
) -> Delivery:
    """A delivery for the order, in the caller's transaction. Own riders are assigned now."""
    if order.address is None:  # pragma: no cover - delivery orders always have one
        raise DomainError(ErrorCode.REQUIRED, field=["address"])
    current = await uow.deliveries.latest_for_order(order.id)
    if current is not None and current.status is not DeliveryStatus.FAILED:
        return current  # one trip at a time; a failed one may be dispatched again
    provider = Provider(store.delivery_provider)
    draft = Delivery(
        id=0,
        order_id=order.id,
        store_id=order.store_id,
        member_id=order.member_id,
        provider=provider,
        status=DeliveryStatus.PENDING,
        courier=None,
        rider_id=None,
        position=None,
        position_at=None,
        received_at=None,
        destination=order.address.location,
        origin=store.location,
        eta_seconds=None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    if provider is Provider.OWN_RIDER:
        rider = await uow.deliveries.nearest_idle_rider(store.id, store.location)
        if rider is not None:
            draft = replace(
                draft, status=DeliveryStatus.ASSIGNED, rider_id=rider[0], courier=rider[1]
            )
    draft = replace(draft, eta_seconds=eta_of(draft, policy))
    delivery = await uow.deliveries.add(draft)
    uow.record(changed(delivery))
    return delivery


def eta_of(delivery: Delivery, policy: DeliveryPolicy) -> int | None:
    return eta_seconds(
        delivery.status,
        position=delivery.position,
        origin=delivery.origin,
        destination=delivery.destination,
        speed_kmh=speed_of(policy.speeds, delivery.provider),
    )


def dispatch_request(delivery: Delivery, order: Order, store: Store) -> DispatchRequest:
    assert order.address is not None
    return DispatchRequest(
        delivery_id=delivery.id,
        order_id=order.id,
        store_name=store.name,
        pickup=store.location,
        dropoff=order.address.location,
        address=order.address.detail,
        contact_name=order.address.contact_name,
        contact_phone=order.address.contact_phone,
    )


async def call_platform(
    delivery: Delivery,
    request: DispatchRequest,
    *,
    uow: UnitOfWork,
    policy: DeliveryPolicy,
    now: datetime,
) -> Delivery:
    """After the delivery is committed: ask its platform for a courier, and record who.

    A platform that fails leaves the delivery PENDING; staff dispatch it again.
    """
    platform = policy.platforms.get(delivery.provider)
    if platform is None or delivery.status is not DeliveryStatus.PENDING:
        return delivery
    try:
        courier = await platform.dispatch(request)
    except Exception:
        log.exception("dispatch of delivery %s to %s failed", delivery.id, delivery.provider)
        return delivery
    if courier is None:
        return delivery
    return await assign(delivery.id, courier, None, uow=uow, policy=policy, now=now)


async def assign(
    delivery_id: int,
    courier: Courier,
    rider_id: int | None,
    *,
    uow: UnitOfWork,
    policy: DeliveryPolicy,
    now: datetime,
) -> Delivery:
    """A platform's courier takes a PENDING delivery."""
    async with uow:
        delivery = await uow.deliveries.get(delivery_id)
        if delivery is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["deliveryId"])
        moved = await assign_in(uow, delivery, courier, rider_id, policy=policy, now=now)
        await uow.commit()
    return moved


async def assign_in(
    uow: UnitOfWork,
    delivery: Delivery,
    courier: Courier,
    rider_id: int | None,
    *,
    policy: DeliveryPolicy,
    now: datetime,
) -> Delivery:
    """The assignment, inside the caller's unit of work."""
    if delivery.status is not DeliveryStatus.PENDING:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["deliveryId"])
    moved = replace(
        delivery,
        status=DeliveryStatus.ASSIGNED,
        courier=courier,
        rider_id=rider_id,
        version=delivery.version + 1,
        updated_at=now,
    )
    moved = replace(moved, eta_seconds=eta_of(moved, policy))
    if not await uow.deliveries.save(moved, expected_version=delivery.version):
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["deliveryId"])
    uow.record(changed(moved))
    return moved


async def stop_delivery(
    uow: UnitOfWork, order_id: int, policy: DeliveryPolicy, now: datetime
) -> Delivery | None:
    """The order was refunded in full: its trip under way, if any, ends as FAILED and its
    rider is free again. Inside the caller's unit of work."""
    delivery = await uow.deliveries.latest_for_order(order_id)
    if delivery is None or delivery.status in FINAL:
        return None
    stopped = replace(
        delivery,
        status=DeliveryStatus.FAILED,
        eta_seconds=None,
        version=delivery.version + 1,
        updated_at=now,
    )
    if not await uow.deliveries.save(stopped, expected_version=delivery.version):
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
    if stopped.rider_id is not None:
        await uow.deliveries.release_rider(stopped.rider_id, stopped.position)
    uow.record(changed(stopped))
    return stopped


async def tell_platform_stopped(delivery: Delivery, policy: DeliveryPolicy) -> None:
    """After commit: the platform calls its courier off."""
    platform = policy.platforms.get(delivery.provider)
    if platform is None:
        return
    try:
        await platform.cancel(delivery.id)
    except Exception:
        log.exception("telling %s that delivery %s is off failed", delivery.provider, delivery.id)
