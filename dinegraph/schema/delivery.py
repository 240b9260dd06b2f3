"""GraphQL types, mutations and feeds of deliveries and their couriers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context, FeedSlot
from dinegraph.domain import delivery as domain
from dinegraph.domain.reads import PositionRow
from dinegraph.resolvers import delivery as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.common import DeliveryAddress, GeoPoint, page_info
from dinegraph.schema.errors import live, raise_for_query

Info = strawberry.Info[Context, None]

strawberry.enum(domain.DeliveryStatus, name="DeliveryStatus")


@strawberry.type(description="Who carries the order.")
class CourierInfo:
    name: str
    phone: str | None = strawberry.field(
        description="The courier's own number: for the store's staff and the carrying "
        "platform. Customers get null: they call through contactCourier."
    )


def _courier(info: Info, name: str | None, phone: str | None) -> CourierInfo | None:
    if name is None:
        return None
    shown = phone if domain.sees_courier_phone(info.context.viewer) else None
    return CourierInfo(name=name, phone=shown)


def _point(lat: float | None, lng: float | None) -> GeoPoint | None:
    return GeoPoint(lat=lat, lng=lng) if lat is not None and lng is not None else None


@strawberry.type(description="One reported courier position, for replaying a trip.")
class TrackPoint:
    position: GeoPoint
    recorded_at: datetime

    @classmethod
    def of(cls, row: PositionRow) -> TrackPoint:
        return cls(position=GeoPoint(lat=row.lat, lng=row.lng), recorded_at=row.recorded_at)


@strawberry.type
class TrackPointEdge:
    cursor: str
    node: TrackPoint


@strawberry.type
class TrackConnection:
    edges: list[TrackPointEdge]
    page_info: relay.PageInfo


@strawberry.type(name="Delivery", description="The trip of an order from its store.")
class DeliveryNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.DeliveryStatus
    provider: domain.Provider
    eta_seconds: int | None = strawberry.field(description="Until delivered; null once over.")
    position_at: datetime | None = strawberry.field(description="When the courier was there.")
    updated_at: datetime
    version: int
    delivery: strawberry.Private[domain.Delivery]

    @classmethod
    def of(cls, d: domain.Delivery) -> DeliveryNode:
        return cls(
            id=d.id,
            status=d.status,
            provider=d.provider,
            eta_seconds=d.eta_seconds,
            position_at=d.position_at,
            updated_at=d.updated_at,
            version=d.version,
            delivery=d,
        )

    @strawberry.field(description="The courier's latest position.")
    def position(self) -> GeoPoint | None:
        p = self.delivery.position
        return _point(p.lat, p.lng) if p else None

    @strawberry.field
    def courier(self, info: Info) -> CourierInfo | None:
        c = self.delivery.courier
        return _courier(info, c.name if c else None, c.phone if c else None)

    @strawberry.field(
        description="Where it goes: for the store's staff and the carrying partner only."
    )
    async def dropoff(self, info: Info) -> DeliveryAddress | None:
        if not domain.sees_dropoff(info.context.viewer, self.delivery):
            return None
        order = await info.context.loaders.order.load(self.delivery.order_id)
        a = order.address if order else None
        if a is None:
            return None
        return DeliveryAddress(
            location=GeoPoint(lat=a.location.lat, lng=a.location.lng),
            detail=a.detail,
            contact_name=a.contact_name,
            contact_phone=a.contact_phone,
        )

    @strawberry.field(description="The trip so far, in recording order.")
    async def track(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> TrackConnection:
        with raise_for_query(info):
            page = await resolve.track(info.context, self.delivery, first=first, after=after)
        return TrackConnection(
            edges=[TrackPointEdge(cursor=c, node=TrackPoint.of(r)) for c, r in page.items],
            page_info=page_info(page),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[DeliveryNode | None]:
        ids = node_row_ids(node_ids)
        found = await resolve.visible_deliveries(info.context, ids)
        return [cls.of(d) if d else None for d in found]


@strawberry.type(description="The latest state of an order's courier, as it changes.")
class CourierUpdate:
    status: domain.DeliveryStatus | None = strawberry.field(
        description="Null until the order is dispatched."
    )
    eta_seconds: int | None
    version: int = strawberry.field(description="Grows with every change of the delivery.")
    event: strawberry.Private[domain.DeliveryChanged | None]

    @classmethod
    def of(cls, event: domain.DeliveryChanged | None) -> CourierUpdate:
        if event is None:
            return cls(status=None, eta_seconds=None, version=0, event=None)
        return cls(
            status=domain.DeliveryStatus(event.status),
            eta_seconds=event.eta_seconds,
            version=event.version,
            event=event,
        )

    @strawberry.field
    def delivery_id(self) -> strawberry.ID | None:
        if self.event is None:
            return None
        return strawberry.ID(str(relay.GlobalID("Delivery", str(self.event.delivery_id))))

    @strawberry.field
    def order_id(self) -> strawberry.ID | None:
        if self.event is None:
            return None
        return strawberry.ID(str(relay.GlobalID("Order", str(self.event.order_id))))

    @strawberry.field
    def provider(self) -> domain.Provider | None:
        return domain.Provider(self.event.provider) if self.event else None

    @strawberry.field
    def position(self) -> GeoPoint | None:
        return _point(self.event.lat, self.event.lng) if self.event else None

    @strawberry.field
    def courier(self, info: Info) -> CourierInfo | None:
        e = self.event
        return _courier(info, e.courier_name, e.courier_phone) if e else None


# --- reads and feeds ------------------------------------------------------------------


async def delivery(info: Info, id: strawberry.ID) -> DeliveryNode | None:
    with raise_for_query(info):
        delivery_id = decode_id(id, "Delivery", ["id"])
    (found,) = await resolve.visible_deliveries(info.context, [delivery_id])
    return DeliveryNode.of(found) if found else None


async def deliveries_in_progress(info: Info, store_id: strawberry.ID) -> list[DeliveryNode]:
    with raise_for_query(info):
        found = await resolve.in_progress(info.context, decode_id(store_id, "Store", ["storeId"]))
    return [DeliveryNode.of(d) for d in found]


def _on_the_map(event: domain.DeliveryChanged) -> FeedSlot:
    """A delivery stays on the store's map while it is on its way."""
    return FeedSlot(event.delivery_id, domain.DeliveryStatus(event.status) in domain.IN_PROGRESS)


@strawberry.type
class DeliverySubscription:
    @strawberry.subscription(
        description="An order's courier (its member, its store's staff, the carrying partner): "
        "the latest status, position and ETA, then every update."
    )
    async def courier_updates(
        self, info: Info, order_id: strawberry.ID
    ) -> AsyncGenerator[CourierUpdate, None]:
        def feed() -> AsyncIterator[domain.DeliveryChanged | None]:
            return resolve.courier_feed(info.context, decode_id(order_id, "Order", ["orderId"]))

        async for update in live(info, feed, CourierUpdate.of):
            yield update

    @strawberry.subscription(
        description="A store's live delivery map (its staff): deliveries on their way now, "
        "then every change."
    )
    async def store_delivery_feed(
        self, info: Info, store_id: strawberry.ID
    ) -> AsyncGenerator[CourierUpdate, None]:
        def feed() -> AsyncIterator[domain.DeliveryChanged]:
            store = decode_id(store_id, "Store", ["storeId"])
            return resolve.store_delivery_feed(info.context, store)

        async for update in live(
            info, feed, CourierUpdate.of, may_start_empty=True, slot=_on_the_map
        ):
            yield update
