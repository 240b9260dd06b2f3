"""Delivery mutations: dispatching, couriers' positions and statuses, and stores'
delivery settings."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import delivery as domain
from dinegraph.domain.carriers import CarrierRule
from dinegraph.domain.services import delivery as service
from dinegraph.domain.services.position_batch import PositionReport
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import UserError
from dinegraph.schema.delivery import DeliveryNode
from dinegraph.schema.errors import attempt

Info = strawberry.Info[Context, None]


@strawberry.input
class ReportCourierPositionInput:
    delivery_id: strawberry.ID
    lat: float
    lng: float
    recorded_at: datetime = strawberry.field(description="When the courier's device took it.")


@strawberry.type
class ReportCourierPositionPayload:
    delivery: DeliveryNode | None
    accepted: bool = strawberry.field(
        description="False for a report older than the last: kept, but the courier stays put."
    )
    errors: list[UserError]


@strawberry.input
class CourierInput:
    name: str
    phone: str


@strawberry.input
class ReportDeliveryStatusInput:
    delivery_id: strawberry.ID
    status: domain.DeliveryStatus
    courier: CourierInput | None = None
    at: datetime | None = None


@strawberry.type
class DeliveryPayload:
    delivery: DeliveryNode | None
    errors: list[UserError]


@strawberry.input
class DispatchDeliveryInput:
    order_id: strawberry.ID
    rider_id: strawberry.ID | None = strawberry.field(
        default=None, description="OWN_RIDER: send this rider rather than the nearest idle one."
    )


@strawberry.type(
    name="CourierContact",
    description="The number to call the courier on: the platform's privacy number, which "
    "forwards to the rider and shows neither phone. Dial number, then extension if any.",
)
class CourierContactInfo:
    number: str
    extension: str | None = strawberry.field(description="Dialled after the number.")
    expires_at: datetime | None = strawberry.field(
        description="When the platform says the number stops reaching this rider."
    )


@strawberry.type
class ContactCourierPayload:
    contact: CourierContactInfo | None
    delivery: DeliveryNode | None
    errors: list[UserError]


@strawberry.type
class DeliveryMutation:
    @strawberry.mutation(
        description="The order's member (or its store's staff) asks how to call the courier "
        "now: the platform's privacy number, never the rider's own. NOT_AVAILABLE before a "
        "courier takes it, once it is over, for the store's own riders (call the store) and "
        "platforms without privacy numbers; PROVIDER_UNAVAILABLE: the platform did not "
        "answer, try again."
    )
    async def contact_courier(
        self, info: Info, delivery_id: strawberry.ID
    ) -> ContactCourierPayload:
        ctx = info.context

        async def run() -> tuple[domain.Delivery, domain.CourierContact]:
            cmd = service.ContactCourier(
                delivery_id=decode_id(delivery_id, "Delivery", ["deliveryId"]),
                policy=ctx.services.orders.delivery,
            )
            return await ctx.run(service.contact_courier, cmd)

        found, errors = await attempt(info, run)
        if found is None:
            return ContactCourierPayload(contact=None, delivery=None, errors=errors)
        delivery, contact = found
        return ContactCourierPayload(
            contact=CourierContactInfo(
                number=contact.number,
                extension=contact.extension,
                expires_at=contact.expires_at,
            ),
            delivery=DeliveryNode.of(delivery),
            errors=errors,
        )

    @strawberry.mutation(
        description="A delivery platform reports where its courier is (delivery:write key)."
    )
    async def report_courier_position(
        self, info: Info, input: ReportCourierPositionInput
    ) -> ReportCourierPositionPayload:
        ctx = info.context

        async def run() -> tuple[domain.Delivery, domain.PositionVerdict]:
            cmd = service.ReportPosition(
                delivery_id=decode_id(input.delivery_id, "Delivery", ["deliveryId"]),
                lat=input.lat,
                lng=input.lng,
                recorded_at=input.recorded_at,
                now=ctx.now(),
                policy=ctx.services.orders.delivery,
            )
            batcher = ctx.services.positions
            if batcher.enabled:  # written with the reports of the same few ms
                report = PositionReport(cmd, ctx.viewer, ctx.audit)
                return await batcher.report(report, ctx.audited_uow)
            return await ctx.run(service.report_courier_position, cmd)

        result, errors = await attempt(info, run)
        if result is None:
            return ReportCourierPositionPayload(delivery=None, accepted=False, errors=errors)
        delivery, verdict = result
        return ReportCourierPositionPayload(
            delivery=DeliveryNode.of(delivery),
            accepted=verdict is domain.PositionVerdict.ACCEPTED,
            errors=errors,
        )

    @strawberry.mutation(
        description="A delivery platform moves its delivery on; the order follows."
    )
    async def report_delivery_status(
        self, info: Info, input: ReportDeliveryStatusInput
    ) -> DeliveryPayload:
        ctx = info.context

        async def run() -> domain.Delivery:
            now = ctx.now()
            cmd = service.ReportStatus(
                delivery_id=decode_id(input.delivery_id, "Delivery", ["deliveryId"]),
                status=input.status,
                courier=(input.courier.name, input.courier.phone) if input.courier else None,
                at=input.at or now,
                now=now,
                policy=ctx.services.orders.delivery,
            )
            return await ctx.run(service.report_delivery_status, cmd)

        found, errors = await attempt(info, run)
        return DeliveryPayload(delivery=DeliveryNode.of(found) if found else None, errors=errors)

    @strawberry.mutation(
        description="Store staff: dispatch a ready order again (its delivery failed or found "
        "no courier), or send one of the store's riders."
    )
    async def dispatch_delivery(self, info: Info, input: DispatchDeliveryInput) -> DeliveryPayload:
        ctx = info.context

        async def run() -> domain.Delivery:
            cmd = service.DispatchAgain(
                order_id=decode_id(input.order_id, "Order", ["orderId"]),
                rider_id=decode_id(input.rider_id, "Rider", ["riderId"])
                if input.rider_id
                else None,
                now=ctx.now(),
                policy=ctx.services.orders.delivery,
            )
            return await ctx.run(service.dispatch_again, cmd)

        found, errors = await attempt(info, run)
        return DeliveryPayload(delivery=DeliveryNode.of(found) if found else None, errors=errors)


@strawberry.input
class SetDeliveryProviderInput:
    store_id: strawberry.ID
    provider: domain.Provider
    platforms: list[domain.Provider] | None = strawberry.field(
        default=None,
        description="Platforms to ask for quotes at dispatch, in order of preference "
        "(unset: unchanged; empty: provider alone).",
    )
    rule: CarrierRule | None = strawberry.field(
        default=None, description="How one of the platforms is chosen (unset: unchanged)."
    )


@strawberry.type
class DeliveryProviderPayload:
    provider: domain.Provider | None
    errors: list[UserError]


@strawberry.input
class AddRiderInput:
    store_id: strawberry.ID
    name: str
    phone: str


@strawberry.type
class AddRiderPayload:
    rider_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type
class DeliverySettingsMutation:
    @strawberry.mutation(description="Head office: who carries a store's deliveries.")
    async def set_store_delivery_provider(
        self, info: Info, input: SetDeliveryProviderInput
    ) -> DeliveryProviderPayload:
        async def run() -> domain.Provider:
            cmd = service.SetDeliveryProvider(
                store_id=decode_id(input.store_id, "Store", ["storeId"]),
                provider=input.provider,
                available=frozenset(info.context.services.orders.delivery.platforms),
                platforms=tuple(input.platforms) if input.platforms is not None else None,
                rule=input.rule,
            )
            return await info.context.run(service.set_delivery_provider, cmd)

        provider, errors = await attempt(info, run)
        return DeliveryProviderPayload(provider=provider, errors=errors)

    @strawberry.mutation(description="A store manager adds one of the store's own riders.")
    async def add_rider(self, info: Info, input: AddRiderInput) -> AddRiderPayload:
        async def run() -> int:
            cmd = service.AddRider(
                store_id=decode_id(input.store_id, "Store", ["storeId"]),
                name=input.name,
                phone=input.phone,
            )
            return await info.context.run(service.add_rider, cmd)

        rider_id, errors = await attempt(info, run)
        gid = strawberry.ID(str(relay.GlobalID("Rider", str(rider_id)))) if rider_id else None
        return AddRiderPayload(rider_id=gid, errors=errors)
