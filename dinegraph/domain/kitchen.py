"""Kitchen stations and their tickets (分单): which station makes what, and how an accepted
order is split into one ticket per station.

A store defines its stations (热炒, 凉菜, 饮品, 面点...) and maps categories or products to
them; a product's own mapping wins over its category's, and anything unmapped goes to the
store's default station. A combo is not made anywhere as such: each of its components goes
to its own station, named with the combo it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dinegraph.domain.catalog import UNSET, Channel, ComboComponent, Unset
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import Order, OrderSource, order_number

STATION_NAME_MAX = 20
STATIONS_MAX = 30  # per store
SORT_MAX = 9_999
ROUTES_MAX = 100  # categories and products mapped in one request
PRINT_BATCH_MAX = 50  # orders printed in one request
DEFAULT_STATION_NAME = "厨房"  # the ticket's station when the store defined none


@dataclass(frozen=True, slots=True)
class KitchenStation:
    id: int
    store_id: int
    name: str
    sort: int
    is_default: bool


@dataclass(frozen=True, slots=True)
class StationRoute:
    """Category or product (exactly one) → station, at one store."""

    station_id: int
    category_id: int | None = None
    product_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketDish:
    """What splitting needs of an ordered SKU (or a combo's component)."""

    sku_id: int
    product_id: int
    category_id: int
    name: str  # the product's name, with the SKU's when it has one
    specs: Mapping[str, str] = field(default_factory=dict)
    components: tuple[ComboComponent, ...] = ()


@dataclass(frozen=True, slots=True)
class TicketItem:
    name: str
    quantity: int
    specs: Mapping[str, str] = field(default_factory=dict)
    combo: str | None = None  # the combo this item is part of
    note: str = ""  # the line's own note, as a till or platform sent it (不要香菜)


@dataclass(frozen=True, slots=True)
class NewTicket:
    """One station's part of an accepted order, as it is printed and shown."""

    store_id: int
    order_id: int
    station_id: int | None
    station_name: str
    order_number: str
    channel: Channel
    source: OrderSource  # the mini-program, the store's till or a takeaway platform
    table_no: str | None  # dine-in
    pickup_code: str | None
    note: str
    placed_at: datetime
    accepted_at: datetime
    items: tuple[TicketItem, ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    ticket: NewTicket
    printed_at: datetime | None
    print_count: int
    version: int

    @property
    def reprints(self) -> int:
        return max(self.print_count - 1, 0)


@dataclass(frozen=True, slots=True)
class TicketChanged:
    """A ticket was made (its order accepted) or printed; versions grow with each change."""

    ticket_id: int
    store_id: int
    station_id: int | None
    version: int


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateStation:
    store_id: int
    name: str
    sort: int | None = None  # None: after the others
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class UpdateStation:
    station_id: int
    name: str | Unset = UNSET
    sort: int | Unset = UNSET
    is_default: bool | Unset = UNSET


@dataclass(frozen=True, slots=True)
class RemoveStation:
    station_id: int


@dataclass(frozen=True, slots=True)
class ReorderStations:
    store_id: int
    station_ids: tuple[int, ...]  # every station of the store, in the order wanted


@dataclass(frozen=True, slots=True)
class RouteToStation:
    """Send these categories and products to a station; ``station_id`` None unmaps them."""

    store_id: int
    station_id: int | None
    category_ids: tuple[int, ...] = ()
    product_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PrintTickets:
    store_id: int
    order_ids: tuple[int, ...]
    station_id: int | None
    now: datetime


# --- rules ----------------------------------------------------------------------------


def clean_station_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise DomainError(ErrorCode.REQUIRED, field=["name"])
    if len(name) > STATION_NAME_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["name"], max=STATION_NAME_MAX)
    return name


def check_sort(sort: int) -> int:
    if not 0 <= sort <= SORT_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["sort"], min=0, max=SORT_MAX)
    return sort


def check_unique_name(name: str, stations: Iterable[KitchenStation], except_id: int = 0) -> None:
    if any(s.name == name and s.id != except_id for s in stations):
        raise DomainError(ErrorCode.DUPLICATE, field=["name"])


def check_order_ids(order_ids: Sequence[int]) -> tuple[int, ...]:
    if not order_ids:
        raise DomainError(ErrorCode.REQUIRED, field=["orderIds"])
    if len(order_ids) > PRINT_BATCH_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["orderIds"], min=1, max=PRINT_BATCH_MAX)
    return tuple(dict.fromkeys(order_ids))


def ordered(stations: Iterable[KitchenStation]) -> list[KitchenStation]:
    return sorted(stations, key=lambda s: (s.sort, s.id))


def station_for(
    dish: TicketDish | None,
    stations: Mapping[int, KitchenStation],
    routes: Sequence[StationRoute],
) -> KitchenStation | None:
    """The product's station, else its category's, else the store's default (None: none)."""
    if dish is not None:
        by_product = {r.product_id: r.station_id for r in routes if r.product_id is not None}
        by_category = {r.category_id: r.station_id for r in routes if r.category_id is not None}
        for station_id in (by_product.get(dish.product_id), by_category.get(dish.category_id)):
            if station_id is not None and station_id in stations:
                return stations[station_id]
    return next((s for s in stations.values() if s.is_default), None)


def split_order(
    order: Order,
    dishes: Mapping[int, TicketDish],
    stations: Sequence[KitchenStation],
    routes: Sequence[StationRoute],
    accepted_at: datetime,
) -> list[NewTicket]:
    """One ticket per station that has something of the order to make, in station order.

    A combo line becomes its components (each × the combo's quantity), each at its own
    station, with the line's note; refunded units are left out. Lines of SKUs no longer
    known go to the default.
    """
    by_id = {s.id: s for s in stations}
    items: dict[int | None, list[TicketItem]] = {}

    def put(dish: TicketDish | None, item: TicketItem) -> None:
        station = station_for(dish, by_id, routes)
        items.setdefault(station.id if station else None, []).append(item)

    for line in order.lines:
        quantity = line.quantity - line.refunded_quantity
        if quantity <= 0:
            continue
        dish = dishes.get(line.sku_id)
        if dish is not None and dish.components:
            for part in dish.components:
                component = dishes.get(part.sku_id)
                name = component.name if component else f"#{part.sku_id}"
                specs = component.specs if component else {}
                item = TicketItem(name, quantity * part.quantity, specs, line.name, line.note)
                put(component, item)
        else:
            put(dish, TicketItem(line.name, quantity, line.specs, note=line.note))
    rank: dict[int | None, int] = {s.id: n for n, s in enumerate(ordered(stations))}
    tickets = []
    for station_id in sorted(
        items, key=lambda k: rank.get(k, len(rank)) if k is not None else len(rank)
    ):
        station = by_id.get(station_id) if station_id is not None else None
        tickets.append(
            NewTicket(
                store_id=order.store_id,
                order_id=order.id,
                station_id=station_id,
                station_name=station.name if station else DEFAULT_STATION_NAME,
                order_number=order_number(order.id, order.placed_at),
                channel=order.channel,
                source=order.source,
                table_no=order.table_no,
                pickup_code=order.pickup_code,
                note=order.note,
                placed_at=order.placed_at,
                accepted_at=accepted_at,
                items=tuple(items[station_id]),
            )
        )
    return tickets


def short_number(ticket: NewTicket) -> str:
    """What the pass calls out: the table, else the pickup code, else the order's last digits."""
    if ticket.table_no:
        return f"桌{ticket.table_no}"
    return ticket.pickup_code or ticket.order_number[-4:]


class KitchenRepository(Protocol):
    """Stations, their routes and tickets, on a unit of work's (or a reader's) connection."""

    async def lock_store(self, store_id: int) -> bool:
        """Hold the store's station set-up until commit (writers of one store queue: names
        stay unique and one station the default); False when there is no such store."""

    async def stations(self, store_id: int) -> list[KitchenStation]: ...

    async def get_station(self, station_id: int) -> KitchenStation | None: ...

    async def add_station(
        self, *, store_id: int, name: str, sort: int, is_default: bool
    ) -> KitchenStation: ...

    async def save_station(self, station: KitchenStation) -> None: ...

    async def clear_default(self, store_id: int) -> None: ...

    async def remove_station(self, station_id: int) -> None:
        """The station and its routes; tickets it had keep its name."""

    async def routes(self, store_id: int) -> list[StationRoute]: ...

    async def set_routes(
        self,
        store_id: int,
        station_id: int | None,
        category_ids: Sequence[int],
        product_ids: Sequence[int],
    ) -> None: ...

    async def existing(
        self, category_ids: Sequence[int], product_ids: Sequence[int]
    ) -> tuple[set[int], set[int]]:
        """Which of these categories and products exist."""

    async def dishes(self, sku_ids: Iterable[int]) -> dict[int, TicketDish]:
        """The SKUs and, for combos, their components' SKUs too."""

    async def add_tickets(self, tickets: Sequence[NewTicket]) -> list[Ticket]: ...

    async def tickets_of_orders(
        self, store_id: int, order_ids: Sequence[int], station_id: int | None
    ) -> list[Ticket]: ...

    async def mark_printed(self, ticket_ids: Sequence[int], at: datetime) -> list[Ticket]: ...

    async def get_tickets(self, ticket_ids: Sequence[int]) -> list[Ticket]: ...

    async def open_tickets(self, store_id: int, station_id: int | None, limit: int) -> list[Ticket]:
        """Tickets of the store's orders still in the kitchen (accepted, preparing), oldest
        first."""
