"""Dispatch: a delivery order that is ready (or accepted) gets a delivery and a courier.

The store's own riders are assigned in the same transaction (the nearest idle one); a
platform is called after commit, as a call out recorded with the delivery
(``domain.calls``), and names its courier then or later. Calling a courier off is a call
out too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dinegraph.domain.calls import CallRefused, OutboundCall, RetryLater
from dinegraph.domain.carriers import CarrierRule, Quote, ranked
from dinegraph.domain.catalog import Channel, Store
from dinegraph.domain.delivery import (
    FINAL,
    CallOff,
    Courier,
    Delivery,
    DeliveryStatus,
    Provider,
    changed,
    eta_seconds,
    speed_of,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.orders import Order, OrderSource, OrderStatus
from dinegraph.domain.ports import DeliveryPlatform, DispatchRequest, UnitOfWork

log = logging.getLogger("dinegraph.delivery")

DISPATCH_CALL = "delivery.dispatch"  # payload: the DispatchRequest and the provider
CANCEL_CALL = "delivery.cancel"  # payload: the provider, the delivery and why (CallOff)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """The chain's delivery settings and platform adapters, chosen once by the wiring."""

    dispatch_on: OrderStatus  # READY, or ACCEPTED to call the courier while cooking
    speeds: Mapping[Provider, float]  # km/h, for the ETA
    max_speed_kmh: float  # a faster jump between two positions is a bad fix
    min_report_interval: timedelta  # per delivery
    platforms: Mapping[Provider, DeliveryPlatform]


def should_dispatch(order: Order, target: OrderStatus, policy: DeliveryPolicy) -> bool:
    # A partner's delivery order leaves with the partner's rider.
    mine = order.source is OrderSource.MINI_PROGRAM
    return mine and order.channel is Channel.DELIVERY and target is policy.dispatch_on


async def open_delivery(
    uow: UnitOfWork, order: Order, store: Store, policy: DeliveryPolicy, now: datetime
) -> Delivery:
    """A delivery for the order, in the caller's transaction. Own riders are assigned now."""
    if order.address is None:  # pragma: no cover - delivery orders always have one
        raise DomainError(ErrorCode.REQUIRED, field=["address"])
    assert order.member_id is not None  # only the mini-program's orders are dispatched
    current = await uow.deliveries.latest_for_order(order.id)
    if current is not None and current.status is not DeliveryStatus.FAILED:
        return current  # one trip at a time; a failed one may be dispatched again
    provider = Provider(store.delivery_provider)
    candidates = [Provider(p) for p in store.delivery_platforms]
    if provider is not Provider.OWN_RIDER and candidates:
        provider = candidates[0]  # until the quotes choose (call_platform)
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
    if delivery.status is DeliveryStatus.PENDING and provider in policy.platforms:
        request = dispatch_request(delivery, order, store)
        if len(candidates) > 1:
            uow.call(dispatch_call(delivery, request, candidates, CarrierRule(store.carrier_rule)))
        else:
            uow.call(dispatch_call(delivery, request))
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
        store_code=store.code,
        cargo_fen=order.total_fen,
    )


def dispatch_call(
    delivery: Delivery,
    request: DispatchRequest,
    candidates: list[Provider] | None = None,
    rule: CarrierRule = CarrierRule.PREFERRED,
) -> OutboundCall:
    """The platform is asked for a courier; our delivery id is its idempotency key. With
    ``candidates``, the store's platforms are asked for quotes first, and ``rule`` picks."""
    choice: dict[str, Any] = (
        {"candidates": [p.value for p in candidates], "rule": rule.value} if candidates else {}
    )
    return OutboundCall(
        DISPATCH_CALL,
        f"delivery-{delivery.id}",
        {
            "provider": delivery.provider.value,
            "deliveryId": request.delivery_id,
            "orderId": request.order_id,
            "storeName": request.store_name,
            "pickup": [request.pickup.lat, request.pickup.lng],
            "dropoff": [request.dropoff.lat, request.dropoff.lng],
            "address": request.address,
            "contactName": request.contact_name,
            "contactPhone": request.contact_phone,
            "storeCode": request.store_code,
            "cargoFen": request.cargo_fen,
            **choice,
        },
    )


def request_of(payload: Mapping[str, Any]) -> DispatchRequest:
    return DispatchRequest(
        delivery_id=int(payload["deliveryId"]),
        order_id=int(payload["orderId"]),
        store_name=str(payload["storeName"]),
        pickup=GeoPoint(*map(float, payload["pickup"])),
        dropoff=GeoPoint(*map(float, payload["dropoff"])),
        address=str(payload["address"]),
        contact_name=str(payload["contactName"]),
        contact_phone=str(payload["contactPhone"]),
        store_code=str(payload.get("storeCode", "")),
        cargo_fen=int(payload.get("cargoFen", 0)),
    )


async def call_platform(
    call: OutboundCall, *, uow: UnitOfWork, policy: DeliveryPolicy, now: datetime
) -> Delivery | None:
    """The handler of ``delivery.dispatch`` calls: ask the platform for a courier, and
    record who in a unit of work of its own. The delivery as it is then (None: gone).

    A delivery no longer waiting (called off, or given a courier another way) is not sent.
    A platform that fails raises: the call is tried again later. A platform with no courier
    yet names one later through its callbacks.
    """
    request = request_of(call.payload)
    async with uow.reading() as reads:
        delivery = await reads.deliveries.get(request.delivery_id)
    if delivery is None or delivery.status is not DeliveryStatus.PENDING:
        return delivery
    if call.payload.get("candidates"):
        candidates = [Provider(p) for p in call.payload["candidates"]]
        rule = CarrierRule(call.payload.get("rule", CarrierRule.PREFERRED))
        return await dispatch_among(
            delivery, request, candidates, rule, uow=uow, policy=policy, now=now
        )
    platform = policy.platforms.get(Provider(call.payload["provider"]))
    if platform is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["provider"])
    courier = await platform.dispatch(request)
    if courier is None:
        return delivery
    return await assigned(delivery, courier, uow=uow, policy=policy, now=now)


async def assigned(
    delivery: Delivery, courier: Courier, *, uow: UnitOfWork, policy: DeliveryPolicy, now: datetime
) -> Delivery | None:
    """The platform's courier takes the delivery, unless it moved meanwhile."""
    try:
        return await assign(delivery.id, courier, None, uow=uow, policy=policy, now=now)
    except DomainError as error:
        if error.code is not ErrorCode.INVALID_TRANSITION:
            raise
        # Moved meanwhile (a refund called it off): that move recorded its own call out.
        log.warning("delivery %s moved while %s dispatched it", delivery.id, delivery.provider)
        async with uow.reading() as reads:
            return await reads.deliveries.get(delivery.id)


async def ask_quotes(
    request: DispatchRequest, candidates: list[Provider], policy: DeliveryPolicy
) -> list[Quote]:
    """Each platform's quote, in the store's order; one that refuses, fails or is not served
    here is kept with the reason and not tried."""
    quotes: list[Quote] = []
    for provider in candidates:
        platform = policy.platforms.get(provider)
        if platform is None:
            quotes.append(Quote(provider, None, None, "NOT_AVAILABLE"))
            continue
        try:
            quote = await platform.quote(request)
        except (CallRefused, RetryLater) as failed:
            quotes.append(Quote(provider, None, None, failed.reason[:64]))
            continue
        quotes.append(Quote(provider, quote.fee_fen, quote.eta_seconds))
    return quotes


async def dispatch_among(
    delivery: Delivery,
    request: DispatchRequest,
    candidates: list[Provider],
    rule: CarrierRule,
    *,
    uow: UnitOfWork,
    policy: DeliveryPolicy,
    now: datetime,
) -> Delivery | None:
    """Quotes asked and recorded once per delivery (a retried call reads them back), then
    the platforms tried best first: one that refuses the order hands it to the next."""
    async with uow.reading() as reads:
        known = await reads.deliveries.quotes(delivery.id)
    start = 0
    if known:  # a retried call: go on from the platform chosen last
        usable = [(rank, q.provider) for q, rank, _ in known if rank is not None and not q.refused]
        order = [provider for _, provider in sorted(usable)]
        chosen = [q.provider for q, _, was_chosen in known if was_chosen]
        start = order.index(chosen[0]) if chosen and chosen[0] in order else 0
    else:
        quotes = await ask_quotes(request, candidates, policy)
        order = [q.provider for q in ranked(quotes, rule)]
        async with uow:
            await uow.deliveries.add_quotes(delivery.id, quotes, order, now)
            await uow.commit()
    if not order:
        raise CallRefused("NO_PLATFORM_QUOTED")
    refused: CallRefused | None = None
    for provider in order[start:]:
        if provider is not delivery.provider or refused is not None:
            moved = await carried_by(delivery, provider, refused, uow=uow, now=now)
            if moved is None:
                return await _current(uow, delivery.id)
            delivery = moved
        try:
            courier = await policy.platforms[provider].dispatch(request)
        except CallRefused as no:
            log.warning("%s refused delivery %s: %s", provider, delivery.id, no.reason)
            refused = no
            continue
        if courier is None:
            return delivery
        return await assigned(delivery, courier, uow=uow, policy=policy, now=now)
    assert refused is not None
    raise refused


async def carried_by(
    delivery: Delivery,
    provider: Provider,
    refused: CallRefused | None,
    *,
    uow: UnitOfWork,
    now: datetime,
) -> Delivery | None:
    """The waiting delivery goes to ``provider`` (None: it is no longer waiting)."""
    async with uow:
        current = await uow.deliveries.get(delivery.id)
        if current is None or current.status is not DeliveryStatus.PENDING:
            return None
        moved = replace(current, provider=provider, version=current.version + 1, updated_at=now)
        if not await uow.deliveries.save(moved, expected_version=current.version):
            return None
        await uow.deliveries.choose(
            delivery.id,
            provider,
            current.provider if refused is not None else None,
            refused.reason[:64] if refused is not None else None,
        )
        uow.record(changed(moved))
        await uow.commit()
    return moved


async def _current(uow: UnitOfWork, delivery_id: int) -> Delivery | None:
    async with uow.reading() as reads:
        return await reads.deliveries.get(delivery_id)


async def hand_on_unaccepted(
    now: datetime, wait: timedelta, *, uow: UnitOfWork, limit: int = 50
) -> list[Delivery]:
    """Deliveries whose chosen platform found no rider within ``wait`` go to the next
    platform of their ranking: the first is called off and the next asked, both as calls
    out of the same unit. One with no platform left keeps waiting where it is."""
    moved: list[Delivery] = []
    async with uow:
        for delivery_id in await uow.deliveries.unaccepted(now - wait, limit):
            delivery = await uow.deliveries.get(delivery_id)
            if delivery is None or delivery.status is not DeliveryStatus.PENDING:
                continue
            quotes = await uow.deliveries.quotes(delivery_id)
            ranking = sorted(
                (rank, q.provider) for q, rank, _ in quotes if rank is not None and not q.refused
            )
            order = [provider for _, provider in ranking]
            if delivery.provider not in order or order[-1] is delivery.provider:
                continue
            following = order[order.index(delivery.provider) + 1]
            handed = replace(
                delivery, provider=following, version=delivery.version + 1, updated_at=now
            )
            if not await uow.deliveries.save(handed, expected_version=delivery.version):
                continue
            await uow.deliveries.choose(delivery_id, following, delivery.provider, "NO_RIDER")
            uow.call(
                OutboundCall(
                    CANCEL_CALL,
                    f"delivery-{delivery_id}-{delivery.provider.value}",
                    {
                        "provider": delivery.provider.value,
                        "deliveryId": delivery_id,
                        "reason": CallOff.NO_RIDER.value,
                    },
                )
            )
            payload = dict(await _dispatch_payload(uow, handed))
            uow.call(
                OutboundCall(DISPATCH_CALL, f"delivery-{delivery_id}-{following.value}", payload)
            )
            uow.record(changed(handed))
            moved.append(handed)
        await uow.commit()
    return moved


async def _dispatch_payload(uow: UnitOfWork, delivery: Delivery) -> Mapping[str, Any]:
    """The dispatch call of a delivery handed to its next platform (no quotes again)."""
    order = await uow.orders.get(delivery.order_id)
    store = await uow.catalog.get_store(delivery.store_id)
    assert order is not None and store is not None
    return dispatch_call(delivery, dispatch_request(delivery, order, store)).payload


def cancel_call(delivery: Delivery) -> OutboundCall:
    """The platform calls its courier off: the order was refunded."""
    return OutboundCall(
        CANCEL_CALL,
        f"delivery-{delivery.id}",
        {
            "provider": delivery.provider.value,
            "deliveryId": delivery.id,
            "reason": CallOff.REFUNDED.value,
        },
    )


async def call_courier_off(call: OutboundCall, *, policy: DeliveryPolicy) -> None:
    """The handler of ``delivery.cancel`` calls."""
    platform = policy.platforms.get(Provider(call.payload["provider"]))
    if platform is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, field=["provider"])
    # Calls recorded before reasons were kept were all refunds.
    why = CallOff(call.payload.get("reason", CallOff.REFUNDED.value))
    await platform.cancel(int(call.payload["deliveryId"]), why)


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
    if stopped.provider in policy.platforms:
        uow.call(cancel_call(stopped))
    return stopped
