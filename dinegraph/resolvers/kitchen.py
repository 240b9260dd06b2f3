"""Reads of kitchen stations and tickets, and the live ticket feed of a station."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import require_store_manager, works_at
from dinegraph.domain.kitchen import KitchenStation, StationRoute, Ticket, TicketChanged, ordered
from dinegraph.events.codec import store_tickets_topic

if TYPE_CHECKING:
    from dinegraph.context import Context


async def store_stations(
    ctx: Context, store_id: int
) -> list[tuple[KitchenStation, list[StationRoute]]]:
    """A store's stations in their order, each with the categories and products it makes."""
    require_store_manager(ctx.viewer, store_id)
    async with ctx.reader() as reader:
        stations = await reader.kitchen.stations(store_id)
        routes = await reader.kitchen.routes(store_id)
    return [(s, [r for r in routes if r.station_id == s.id]) for s in ordered(stations)]


async def visible_stations(ctx: Context, ids: Sequence[int]) -> list[KitchenStation | None]:
    async with ctx.reader() as reader:
        found = [await reader.kitchen.get_station(i) for i in ids]
    return [s if s is not None and works_at(ctx.viewer, s.store_id) else None for s in found]


async def visible_tickets(ctx: Context, ids: Sequence[int]) -> list[Ticket | None]:
    async with ctx.reader() as reader:
        found = {t.id: t for t in await reader.kitchen.get_tickets(list(ids))}
    return [
        t if (t := found.get(i)) is not None and works_at(ctx.viewer, t.ticket.store_id) else None
        for i in ids
    ]


async def order_tickets(ctx: Context, store_id: int, order_id: int) -> list[Ticket]:
    """An order's tickets, for the staff of its store (none for anyone else)."""
    if not works_at(ctx.viewer, store_id):
        return []
    async with ctx.reader() as reader:
        return await reader.kitchen.tickets_of_orders(store_id, [order_id], None)


async def station_ticket_feed(
    ctx: Context, store_id: int, station_id: int | None
) -> AsyncIterator[Ticket]:
    """The store's staff: the tickets still in the kitchen now (of one station, or all),
    oldest first, then each new ticket and each print of one."""
    require_store_manager(ctx.viewer, store_id)
    if await ctx.loaders.store.load(store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    if station_id is not None:
        (station,) = await visible_stations(ctx, [station_id])
        if station is None or station.store_id != store_id:
            raise DomainError(ErrorCode.NOT_FOUND, field=["station"])
    topics = [store_tickets_topic(store_id)]
    box = await ctx.broker.hub.join(topics)  # before the snapshot: nothing slips between
    try:
        seen: dict[int, int] = {}
        async with ctx.reader() as reader:
            snapshot = await reader.kitchen.open_tickets(
                store_id, station_id, ctx.settings.max_page_size
            )
        for ticket in snapshot:
            seen[ticket.id] = ticket.version
            yield ticket
        while True:
            events = [
                e
                for e in await box.take()
                if isinstance(e, TicketChanged)
                and (station_id is None or e.station_id == station_id)
                and e.version > seen.get(e.ticket_id, 0)
            ]
            if not events:
                continue
            async with ctx.reader() as reader:
                fresh = await reader.kitchen.get_tickets([e.ticket_id for e in events])
            for ticket in fresh:
                if ticket.version <= seen.get(ticket.id, 0):
                    continue
                seen[ticket.id] = ticket.version
                yield ticket
    finally:
        await ctx.broker.hub.leave(topics, box)
