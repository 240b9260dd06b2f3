"""Kitchen stations (分单), their tickets, printing them in batches, and a station's live feed."""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph import printing
from dinegraph.context import Context, FeedSlot
from dinegraph.domain import kitchen as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.orders import OrderSource
from dinegraph.domain.services import kitchen as service
from dinegraph.resolvers import kitchen as resolve
from dinegraph.resolvers.ids import decode_id, encode_id, node_row_ids
from dinegraph.schema.catalog import SpecOption
from dinegraph.schema.common import UserError, keep
from dinegraph.schema.errors import attempt, live, raise_for_query

Info = strawberry.Info[Context, None]

PaperWidth = strawberry.enum(
    printing.PaperWidth,
    name="PaperWidth",
    description="A receipt printer's paper: MM58 prints 32 columns, MM80 48.",
)


@strawberry.type(name="KitchenStation", description="Where a store's kitchen makes some dishes.")
class KitchenStationNode(relay.Node):
    id: relay.NodeID[int]
    name: str
    sort: int
    is_default: bool = strawberry.field(description="Makes whatever no route sends elsewhere.")
    routes: strawberry.Private[list[domain.StationRoute]]

    @classmethod
    def of(
        cls, station: domain.KitchenStation, routes: Iterable[domain.StationRoute] = ()
    ) -> KitchenStationNode:
        return cls(
            id=station.id,
            name=station.name,
            sort=station.sort,
            is_default=station.is_default,
            routes=list(routes),
        )

    @strawberry.field(description="Categories whose products it makes (unless mapped apart).")
    def category_ids(self) -> list[strawberry.ID]:
        return [
            strawberry.ID(encode_id("Category", r.category_id))
            for r in self.routes
            if r.category_id is not None
        ]

    @strawberry.field(description="Products it makes, whatever their category.")
    def product_ids(self) -> list[strawberry.ID]:
        return [
            strawberry.ID(encode_id("Product", r.product_id))
            for r in self.routes
            if r.product_id is not None
        ]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[KitchenStationNode | None]:
        found = await resolve.visible_stations(info.context, node_row_ids(node_ids))
        return [cls.of(s) if s else None for s in found]


@strawberry.type(description="One thing to make: a dish, or a combo's component.")
class TicketItem:
    name: str
    quantity: int
    combo: str | None = strawberry.field(description="The combo it is part of, if any.")
    note: str = strawberry.field(
        description="The line's own note from the till or platform (不要香菜); empty if none."
    )
    item: strawberry.Private[domain.TicketItem]

    @strawberry.field
    def specs(self) -> list[SpecOption]:
        return [SpecOption(name=k, value=v) for k, v in self.item.specs.items()]


@strawberry.type(
    name="StationTicket",
    description="One station's part of an accepted order, as printed and shown in the kitchen.",
)
class StationTicketNode(relay.Node):
    id: relay.NodeID[int]
    station_name: str
    order_number: str
    short_number: str = strawberry.field(description="The table, the pickup code, or the tail.")
    channel: Channel
    source: OrderSource = strawberry.field(
        description="Where the order came from: the mini-program, the till or a platform."
    )
    table_number: str | None
    pickup_code: str | None
    note: str
    print_count: int = strawberry.field(description="Times printed; more than one: reprints.")
    printed_at: datetime | None
    version: int
    ticket: strawberry.Private[domain.Ticket]

    @classmethod
    def of(cls, ticket: domain.Ticket) -> StationTicketNode:
        t = ticket.ticket
        return cls(
            id=ticket.id,
            station_name=t.station_name,
            order_number=t.order_number,
            short_number=domain.short_number(t),
            channel=t.channel,
            source=t.source,
            table_number=t.table_no,
            pickup_code=t.pickup_code,
            note=t.note,
            print_count=ticket.print_count,
            printed_at=ticket.printed_at,
            version=ticket.version,
            ticket=ticket,
        )

    @strawberry.field(description="The station; null once removed (its name stays).")
    def station_id(self) -> strawberry.ID | None:
        sid = self.ticket.ticket.station_id
        return strawberry.ID(encode_id("KitchenStation", sid)) if sid is not None else None

    @strawberry.field
    def order_id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Order", self.ticket.ticket.order_id))

    @strawberry.field(description="When the order was accepted, in the stores' time zone.")
    def accepted_at(self, info: Info) -> datetime:
        return self.ticket.ticket.accepted_at.astimezone(info.context.settings.timezone)

    @strawberry.field(description="When the order was placed, in the stores' time zone.")
    def placed_at(self, info: Info) -> datetime:
        return self.ticket.ticket.placed_at.astimezone(info.context.settings.timezone)

    @strawberry.field
    def reprints(self) -> int:
        return self.ticket.reprints

    @strawberry.field
    def items(self) -> list[TicketItem]:
        return [
            TicketItem(name=i.name, quantity=i.quantity, combo=i.combo, note=i.note, item=i)
            for i in self.ticket.ticket.items
        ]

    @strawberry.field(description="Plain text in the paper's columns (CJK characters take two).")
    def text(self, info: Info, paper: printing.PaperWidth = printing.PaperWidth.MM80) -> str:
        return printing.ticket_text(self.ticket, paper.value, info.context.settings.timezone)

    @strawberry.field(
        description="ESC/POS bytes, base64: initialise, GB18030 text, a bold double-height "
        "header, a cut."
    )
    def escpos(self, info: Info, paper: printing.PaperWidth = printing.PaperWidth.MM80) -> str:
        raw = printing.escpos(self.ticket, paper.value, info.context.settings.timezone)
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[StationTicketNode | None]:
        found = await resolve.visible_tickets(info.context, node_row_ids(node_ids))
        return [cls.of(t) if t else None for t in found]


# --- inputs and payloads ----------------------------------------------------------------


@strawberry.input
class CreateKitchenStationInput:
    store_id: strawberry.ID
    name: str
    sort: int | None = strawberry.field(default=None, description="Default: after the others.")
    is_default: bool = False


@strawberry.input
class UpdateKitchenStationInput:
    station_id: strawberry.ID
    name: str | None = strawberry.UNSET
    sort: int | None = strawberry.UNSET
    is_default: bool | None = strawberry.field(
        default=strawberry.UNSET, description="true makes it the store's default station."
    )


@strawberry.input
class ReorderKitchenStationsInput:
    store_id: strawberry.ID
    station_ids: list[strawberry.ID] = strawberry.field(
        description="Every station of the store, in the order wanted."
    )


@strawberry.input
class RouteToKitchenStationInput:
    store_id: strawberry.ID
    station_id: strawberry.ID | None = strawberry.field(
        description="null: back to the category's station, or the default."
    )
    category_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    product_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.type
class KitchenStationPayload:
    station: KitchenStationNode | None
    errors: list[UserError]


@strawberry.type
class KitchenStationsPayload:
    stations: list[KitchenStationNode] | None
    errors: list[UserError]


@strawberry.type
class PrintTicketsPayload:
    tickets: list[StationTicketNode] | None = strawberry.field(
        description="The batch to print, in the order of orderIds, each marked printed."
    )
    errors: list[UserError]


def _station_id(raw: strawberry.ID, field: str = "stationId") -> int:
    return decode_id(raw, "KitchenStation", [field])


async def _with_routes(info: Info, store_id: int) -> list[KitchenStationNode]:
    return [
        KitchenStationNode.of(s, routes)
        for s, routes in await resolve.store_stations(info.context, store_id)
    ]


@strawberry.type
class KitchenMutation:
    @strawberry.mutation(description="A kitchen station of a store (its first is the default).")
    async def create_kitchen_station(
        self, info: Info, input: CreateKitchenStationInput
    ) -> KitchenStationPayload:
        async def run() -> domain.KitchenStation:
            cmd = domain.CreateStation(
                store_id=decode_id(input.store_id, "Store", ["storeId"]),
                name=input.name,
                sort=input.sort,
                is_default=input.is_default,
            )
            return await info.context.run(service.create_station, cmd)

        station, errors = await attempt(info, run)
        return KitchenStationPayload(
            station=KitchenStationNode.of(station) if station else None, errors=errors
        )

    @strawberry.mutation(description="Rename a station, move it, or make it the default.")
    async def update_kitchen_station(
        self, info: Info, input: UpdateKitchenStationInput
    ) -> KitchenStationPayload:
        async def run() -> domain.KitchenStation:
            cmd = domain.UpdateStation(
                station_id=_station_id(input.station_id),
                name=keep(input.name),
                sort=keep(input.sort),
                is_default=keep(input.is_default),
            )
            return await info.context.run(service.update_station, cmd)

        station, errors = await attempt(info, run)
        return KitchenStationPayload(
            station=KitchenStationNode.of(station) if station else None, errors=errors
        )

    @strawberry.mutation(
        description="Remove a station and its routes; what it made goes to the default."
    )
    async def remove_kitchen_station(
        self, info: Info, station_id: strawberry.ID
    ) -> KitchenStationsPayload:
        async def run() -> list[domain.KitchenStation]:
            cmd = domain.RemoveStation(_station_id(station_id))
            return await info.context.run(service.remove_station, cmd)

        left, errors = await attempt(info, run)
        return KitchenStationsPayload(
            stations=[KitchenStationNode.of(s) for s in left] if left is not None else None,
            errors=errors,
        )

    @strawberry.mutation(description="Put a store's stations in this order.")
    async def reorder_kitchen_stations(
        self, info: Info, input: ReorderKitchenStationsInput
    ) -> KitchenStationsPayload:
        async def run() -> list[KitchenStationNode]:
            store_id = decode_id(input.store_id, "Store", ["storeId"])
            cmd = domain.ReorderStations(
                store_id=store_id,
                station_ids=tuple(
                    _station_id(s, "stationIds")
                    for s in input.station_ids[: domain.STATIONS_MAX + 1]
                ),
            )
            await info.context.run(service.reorder_stations, cmd)
            return await _with_routes(info, store_id)

        stations, errors = await attempt(info, run)
        return KitchenStationsPayload(stations=stations, errors=errors)

    @strawberry.mutation(
        description="Send categories and products to a station at a store (a product's own "
        "station wins over its category's), or back (stationId null)."
    )
    async def route_to_kitchen_station(
        self, info: Info, input: RouteToKitchenStationInput
    ) -> KitchenStationsPayload:
        async def run() -> list[KitchenStationNode]:
            store_id = decode_id(input.store_id, "Store", ["storeId"])
            limit = domain.ROUTES_MAX + 1
            cmd = domain.RouteToStation(
                store_id=store_id,
                station_id=_station_id(input.station_id) if input.station_id else None,
                category_ids=tuple(
                    decode_id(c, "Category", ["categoryIds", str(n)])
                    for n, c in enumerate(input.category_ids[:limit])
                ),
                product_ids=tuple(
                    decode_id(p, "Product", ["productIds", str(n)])
                    for n, p in enumerate(input.product_ids[:limit])
                ),
            )
            await info.context.run(service.route_to_station, cmd)
            return await _with_routes(info, store_id)

        stations, errors = await attempt(info, run)
        return KitchenStationsPayload(stations=stations, errors=errors)

    @strawberry.mutation(
        description="The tickets of these orders (at one station, or all) as a batch to "
        "print; each is marked printed, a second print counting as a reprint."
    )
    async def print_tickets(
        self,
        info: Info,
        store_id: strawberry.ID,
        order_ids: list[strawberry.ID],
        station: strawberry.ID | None = None,
    ) -> PrintTicketsPayload:
        async def run() -> list[domain.Ticket]:
            limit = domain.PRINT_BATCH_MAX + 1
            cmd = domain.PrintTickets(
                store_id=decode_id(store_id, "Store", ["storeId"]),
                order_ids=tuple(
                    decode_id(o, "Order", ["orderIds", str(n)])
                    for n, o in enumerate(order_ids[:limit])
                ),
                station_id=_station_id(station, "station") if station else None,
                now=info.context.now(),
            )
            return await info.context.run(service.print_tickets, cmd)

        tickets, errors = await attempt(info, run)
        return PrintTicketsPayload(
            tickets=[StationTicketNode.of(t) for t in tickets] if tickets is not None else None,
            errors=errors,
        )


@strawberry.type
class KitchenQuery:
    @strawberry.field(description="A store's kitchen stations in order (its staff).")
    async def kitchen_stations(
        self, info: Info, store_id: strawberry.ID
    ) -> list[KitchenStationNode]:
        with raise_for_query(info):
            return await _with_routes(info, decode_id(store_id, "Store", ["storeId"]))


def _by_ticket(ticket: domain.Ticket) -> FeedSlot:
    return FeedSlot(ticket.id)


@strawberry.type
class KitchenSubscription:
    @strawberry.subscription(
        description="A kitchen screen (the store's staff): the tickets still in the kitchen, "
        "of one station or all, then each new ticket and each print of one."
    )
    async def station_ticket_feed(
        self, info: Info, store_id: strawberry.ID, station: strawberry.ID | None = None
    ) -> AsyncGenerator[StationTicketNode, None]:
        def feed() -> AsyncIterator[domain.Ticket]:
            return resolve.station_ticket_feed(
                info.context,
                decode_id(store_id, "Store", ["storeId"]),
                _station_id(station, "station") if station is not None else None,
            )

        async for ticket in live(
            info, feed, StationTicketNode.of, may_start_empty=True, slot=_by_ticket
        ):
            yield ticket
