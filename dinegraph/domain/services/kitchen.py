"""Kitchen stations (set up by the store's staff or head office), the tickets an accepted
order is split into, and printing them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dinegraph.domain.catalog import Unset
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Viewer, require_store_manager
from dinegraph.domain.kitchen import (
    STATIONS_MAX,
    CreateStation,
    KitchenStation,
    PrintTickets,
    RemoveStation,
    ReorderStations,
    RouteToStation,
    Ticket,
    TicketChanged,
    UpdateStation,
    check_order_ids,
    check_sort,
    check_unique_name,
    clean_station_name,
    ordered,
    split_order,
)
from dinegraph.domain.orders import Order
from dinegraph.domain.ports import UnitOfWork


def ticket_changed(ticket: Ticket) -> TicketChanged:
    return TicketChanged(
        ticket_id=ticket.id,
        store_id=ticket.ticket.store_id,
        station_id=ticket.ticket.station_id,
        version=ticket.version,
    )


async def _store_station(
    uow: UnitOfWork, viewer: Viewer, station_id: int, field: str = "stationId", lock: bool = True
) -> KitchenStation:
    """A station the viewer runs, its store's set-up held until commit (``lock``)."""
    station = await uow.kitchen.get_station(station_id)
    if station is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=[field])
    require_store_manager(viewer, station.store_id)
    if lock:
        await uow.kitchen.lock_store(station.store_id)
        station = await uow.kitchen.get_station(station_id)  # as it is, now that we hold it
        if station is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=[field])
    return station


async def create_station(cmd: CreateStation, *, uow: UnitOfWork, viewer: Viewer) -> KitchenStation:
    """A new station; the store's first becomes its default."""
    require_store_manager(viewer, cmd.store_id)
    name = clean_station_name(cmd.name)
    sort = check_sort(cmd.sort) if cmd.sort is not None else None
    async with uow:
        if not await uow.kitchen.lock_store(cmd.store_id):
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        existing = await uow.kitchen.stations(cmd.store_id)
        if len(existing) >= STATIONS_MAX:
            raise DomainError(ErrorCode.OUT_OF_RANGE, field=["storeId"], min=0, max=STATIONS_MAX)
        check_unique_name(name, existing)
        if sort is None:
            sort = min(max((s.sort for s in existing), default=-1) + 1, 9_999)
        is_default = cmd.is_default or not existing
        if is_default:
            await uow.kitchen.clear_default(cmd.store_id)
        station = await uow.kitchen.add_station(
            store_id=cmd.store_id, name=name, sort=sort, is_default=is_default
        )
        uow.wrote("KitchenStation", station.id, cmd.store_id)
        await uow.commit()
    return station


async def update_station(cmd: UpdateStation, *, uow: UnitOfWork, viewer: Viewer) -> KitchenStation:
    """Rename, move, or make the default (a store has one default; it cannot be unset,
    only given to another station)."""
    name = clean_station_name(cmd.name) if not isinstance(cmd.name, Unset) else None
    sort = check_sort(cmd.sort) if not isinstance(cmd.sort, Unset) else None
    if cmd.is_default is False:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["isDefault"])
    async with uow:
        station = await _store_station(uow, viewer, cmd.station_id)
        if name is not None:
            check_unique_name(name, await uow.kitchen.stations(station.store_id), station.id)
            station = replace(station, name=name)
        if sort is not None:
            station = replace(station, sort=sort)
        if cmd.is_default is True and not station.is_default:
            await uow.kitchen.clear_default(station.store_id)
            station = replace(station, is_default=True)
        await uow.kitchen.save_station(station)
        uow.wrote("KitchenStation", station.id, station.store_id)
        await uow.commit()
    return station


async def remove_station(
    cmd: RemoveStation, *, uow: UnitOfWork, viewer: Viewer
) -> list[KitchenStation]:
    """The station goes with its routes (what it made goes to the default); a removed
    default passes to the first remaining station. Returns the store's stations left."""
    async with uow:
        station = await _store_station(uow, viewer, cmd.station_id)
        await uow.kitchen.remove_station(station.id)
        left = ordered(await uow.kitchen.stations(station.store_id))
        if station.is_default and left:
            left[0] = replace(left[0], is_default=True)
            await uow.kitchen.save_station(left[0])
        uow.wrote("KitchenStation", station.id, station.store_id)
        await uow.commit()
    return left


async def reorder_stations(
    cmd: ReorderStations, *, uow: UnitOfWork, viewer: Viewer
) -> list[KitchenStation]:
    """Every station of the store, in the order given (each named once)."""
    require_store_manager(viewer, cmd.store_id)
    async with uow:
        if not await uow.kitchen.lock_store(cmd.store_id):
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        stations = {s.id: s for s in await uow.kitchen.stations(cmd.store_id)}
        if len(set(cmd.station_ids)) != len(cmd.station_ids) or set(cmd.station_ids) != set(
            stations
        ):
            raise DomainError(ErrorCode.INVALID_INPUT, field=["stationIds"])
        moved = [replace(stations[sid], sort=n) for n, sid in enumerate(cmd.station_ids)]
        for station in moved:
            await uow.kitchen.save_station(station)
        uow.wrote("Store", cmd.store_id, cmd.store_id)
        await uow.commit()
    return moved


async def route_to_station(
    cmd: RouteToStation, *, uow: UnitOfWork, viewer: Viewer
) -> list[KitchenStation]:
    """Map categories and products of the chain to one of the store's stations (or unmap)."""
    require_store_manager(viewer, cmd.store_id)
    categories, products = (
        tuple(dict.fromkeys(cmd.category_ids)),
        tuple(dict.fromkeys(cmd.product_ids)),
    )
    if not categories and not products:
        raise DomainError(ErrorCode.REQUIRED, field=["categoryIds"])
    if len(categories) + len(products) > 100:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["categoryIds"], min=1, max=100)
    async with uow:
        if not await uow.kitchen.lock_store(cmd.store_id):
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        if cmd.station_id is not None:
            station = await _store_station(uow, viewer, cmd.station_id, lock=False)
            if station.store_id != cmd.store_id:
                raise DomainError(ErrorCode.NOT_FOUND, field=["stationId"])
        found_categories, found_products = await uow.kitchen.existing(categories, products)
        for n, cid in enumerate(categories):
            if cid not in found_categories:
                raise DomainError(ErrorCode.NOT_FOUND, field=["categoryIds", str(n)])
        for n, pid in enumerate(products):
            if pid not in found_products:
                raise DomainError(ErrorCode.NOT_FOUND, field=["productIds", str(n)])
        await uow.kitchen.set_routes(cmd.store_id, cmd.station_id, categories, products)
        uow.wrote("Store", cmd.store_id, cmd.store_id)
        await uow.commit()
    return ordered(await _stations_after(uow, cmd.store_id))


async def _stations_after(uow: UnitOfWork, store_id: int) -> list[KitchenStation]:
    async with uow.reading() as reader:
        return await reader.kitchen.stations(store_id)


async def issue_tickets(uow: UnitOfWork, order: Order, at: datetime) -> list[Ticket]:
    """Split an order that has just been accepted into its stations' tickets, in the
    accepting unit of work: the feed hears of them with its commit, never before."""
    skus = {line.sku_id for line in order.lines}
    dishes = await uow.kitchen.dishes(skus)
    stations = await uow.kitchen.stations(order.store_id)
    routes = await uow.kitchen.routes(order.store_id)
    drafts = split_order(order, dishes, stations, routes, at)
    tickets = await uow.kitchen.add_tickets(drafts) if drafts else []
    for ticket in tickets:
        uow.record(ticket_changed(ticket))
    return tickets


async def print_tickets(cmd: PrintTickets, *, uow: UnitOfWork, viewer: Viewer) -> list[Ticket]:
    """The tickets of these orders (at one station, or all), marked printed: a second print
    of a ticket counts as a reprint. An order of another store, or not yet accepted, is
    refused by its place in ``orderIds``."""
    require_store_manager(viewer, cmd.store_id)
    order_ids = check_order_ids(cmd.order_ids)
    async with uow:
        if cmd.station_id is not None:
            station = await _store_station(uow, viewer, cmd.station_id, "station", lock=False)
            if station.store_id != cmd.store_id:
                raise DomainError(ErrorCode.NOT_FOUND, field=["station"])
        every = await uow.kitchen.tickets_of_orders(cmd.store_id, order_ids, None)
        has_tickets = {t.ticket.order_id for t in every}
        for n, order_id in enumerate(cmd.order_ids):
            if order_id not in has_tickets:
                raise DomainError(ErrorCode.NOT_FOUND, field=["orderIds", str(n)])
        wanted = [
            t.id for t in every if cmd.station_id is None or t.ticket.station_id == cmd.station_id
        ]
        printed = await uow.kitchen.mark_printed(wanted, cmd.now) if wanted else []
        for ticket in printed:
            uow.record(ticket_changed(ticket))
        uow.wrote("Store", cmd.store_id, cmd.store_id)
        await uow.commit()
    rank = {oid: n for n, oid in enumerate(order_ids)}
    return sorted(printed, key=lambda t: (rank[t.ticket.order_id], t.id))
