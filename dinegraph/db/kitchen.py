"""Kitchen stations, their routes and tickets (``domain.kitchen``'s repository)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import (
    categories,
    combo_components,
    kitchen_stations,
    kitchen_tickets,
    orders,
    products,
    skus,
    station_routes,
    stores,
)
from dinegraph.domain.catalog import Channel, ComboComponent
from dinegraph.domain.kitchen import (
    KitchenStation,
    NewTicket,
    StationRoute,
    Ticket,
    TicketDish,
    TicketItem,
)
from dinegraph.domain.orders import KITCHEN_QUEUE, OrderSource

_DISHES = (
    sa.select(
        skus.c.id,
        skus.c.name,
        skus.c.specs,
        skus.c.product_id,
        products.c.name.label("product_name"),
        products.c.category_id,
        combo_components.c.component_sku_id,
        combo_components.c.quantity,
    )
    .select_from(skus)
    .join(products, products.c.id == skus.c.product_id)
    .outerjoin(combo_components, combo_components.c.combo_sku_id == skus.c.id)
    .where(skus.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(skus.c.id, combo_components.c.component_sku_id)
)


def _station(row: Any) -> KitchenStation:
    return KitchenStation(row.id, row.store_id, row.name, row.sort, bool(row.is_default))


def _dish_name(product: str, sku: str) -> str:
    return product if not sku or sku == product else f"{product}（{sku}）"


def _items_json(items: Iterable[TicketItem]) -> list[dict[str, object]]:
    return [
        {
            "name": i.name,
            "quantity": i.quantity,
            "specs": dict(i.specs),
            "combo": i.combo,
            **({"note": i.note} if i.note else {}),
        }
        for i in items
    ]


def _ticket(row: Any) -> Ticket:
    items = tuple(
        TicketItem(
            i["name"],
            int(i["quantity"]),
            dict(i.get("specs") or {}),
            i.get("combo"),
            str(i.get("note") or ""),
        )
        for i in row.items
    )
    return Ticket(
        id=row.id,
        ticket=NewTicket(
            store_id=row.store_id,
            order_id=row.order_id,
            station_id=row.station_id,
            station_name=row.station_name,
            order_number=row.order_number,
            channel=Channel(row.channel),
            source=OrderSource(row.source),
            table_no=row.table_no,
            pickup_code=row.pickup_code,
            note=row.note,
            placed_at=row.placed_at,
            accepted_at=row.accepted_at,
            items=items,
        ),
        printed_at=row.printed_at,
        print_count=row.print_count,
        version=row.version,
    )


class SqlKitchenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_store(self, store_id: int) -> bool:
        # FOR UPDATE on PostgreSQL; SQLite's write transactions are serial already.
        query = sa.select(stores.c.id).where(stores.c.id == store_id).with_for_update()
        return (await self._conn.scalar(query)) is not None

    async def stations(self, store_id: int) -> list[KitchenStation]:
        rows = await self._conn.execute(
            sa.select(kitchen_stations)
            .where(kitchen_stations.c.store_id == store_id)
            .order_by(kitchen_stations.c.sort, kitchen_stations.c.id)
        )
        return [_station(r) for r in rows]

    async def get_station(self, station_id: int) -> KitchenStation | None:
        query = sa.select(kitchen_stations).where(kitchen_stations.c.id == station_id)
        row = (await self._conn.execute(query)).first()
        return _station(row) if row else None

    async def add_station(
        self, *, store_id: int, name: str, sort: int, is_default: bool
    ) -> KitchenStation:
        new_id = await self._conn.scalar(
            kitchen_stations.insert()
            .values(store_id=store_id, name=name, sort=sort, is_default=is_default)
            .returning(kitchen_stations.c.id)
        )
        assert new_id is not None
        return KitchenStation(int(new_id), store_id, name, sort, is_default)

    async def save_station(self, station: KitchenStation) -> None:
        await self._conn.execute(
            kitchen_stations.update()
            .where(kitchen_stations.c.id == station.id)
            .values(name=station.name, sort=station.sort, is_default=station.is_default)
        )

    async def clear_default(self, store_id: int) -> None:
        await self._conn.execute(
            kitchen_stations.update()
            .where(kitchen_stations.c.store_id == store_id, kitchen_stations.c.is_default)
            .values(is_default=False)
        )

    async def remove_station(self, station_id: int) -> None:
        await self._conn.execute(
            station_routes.delete().where(station_routes.c.station_id == station_id)
        )
        await self._conn.execute(
            kitchen_stations.delete().where(kitchen_stations.c.id == station_id)
        )

    async def routes(self, store_id: int) -> list[StationRoute]:
        rows = await self._conn.execute(
            sa.select(station_routes)
            .where(station_routes.c.store_id == store_id)
            .order_by(station_routes.c.id)
        )
        return [StationRoute(r.station_id, r.category_id, r.product_id) for r in rows]

    async def set_routes(
        self,
        store_id: int,
        station_id: int | None,
        category_ids: Sequence[int],
        product_ids: Sequence[int],
    ) -> None:
        here = station_routes.c.store_id == store_id
        if category_ids:
            await self._conn.execute(
                station_routes.delete().where(here, station_routes.c.category_id.in_(category_ids))
            )
        if product_ids:
            await self._conn.execute(
                station_routes.delete().where(here, station_routes.c.product_id.in_(product_ids))
            )
        if station_id is None:
            return
        rows = [
            {"store_id": store_id, "station_id": station_id, "category_id": c, "product_id": None}
            for c in category_ids
        ] + [
            {"store_id": store_id, "station_id": station_id, "category_id": None, "product_id": p}
            for p in product_ids
        ]
        await self._conn.execute(station_routes.insert(), rows)

    async def existing(
        self, category_ids: Sequence[int], product_ids: Sequence[int]
    ) -> tuple[set[int], set[int]]:
        found_categories: set[int] = set()
        found_products: set[int] = set()
        if category_ids:
            found_categories = set(
                await self._conn.scalars(
                    sa.select(categories.c.id).where(categories.c.id.in_(category_ids))
                )
            )
        if product_ids:
            found_products = set(
                await self._conn.scalars(
                    sa.select(products.c.id).where(products.c.id.in_(product_ids))
                )
            )
        return found_categories, found_products

    async def dishes(self, sku_ids: Iterable[int]) -> dict[int, TicketDish]:
        found: dict[int, TicketDish] = {}
        wanted = sorted(set(sku_ids))
        for _ in range(2):  # the SKUs, then the components of the combos among them
            if not wanted:
                break
            parts: dict[int, list[ComboComponent]] = {}
            rows = (await self._conn.execute(_DISHES, {"ids": wanted})).all()
            for r in rows:
                listed = parts.setdefault(r.id, [])
                if r.component_sku_id is not None:
                    listed.append(ComboComponent(r.component_sku_id, r.quantity))
            for r in rows:
                if r.id not in found:
                    found[r.id] = TicketDish(
                        sku_id=r.id,
                        product_id=r.product_id,
                        category_id=r.category_id,
                        name=_dish_name(r.product_name, r.name),
                        specs=dict(r.specs or {}),
                        components=tuple(parts[r.id]),
                    )
            wanted = sorted({c.sku_id for d in found.values() for c in d.components} - set(found))
        return found

    async def add_tickets(self, tickets: Sequence[NewTicket]) -> list[Ticket]:
        made: list[Ticket] = []
        for t in tickets:
            new_id = await self._conn.scalar(
                kitchen_tickets.insert()
                .values(
                    store_id=t.store_id,
                    order_id=t.order_id,
                    station_id=t.station_id,
                    station_name=t.station_name,
                    order_number=t.order_number,
                    channel=t.channel.value,
                    source=t.source.value,
                    table_no=t.table_no,
                    pickup_code=t.pickup_code,
                    note=t.note,
                    items=_items_json(t.items),
                    placed_at=t.placed_at,
                    accepted_at=t.accepted_at,
                    printed_at=None,
                    print_count=0,
                    version=1,
                )
                .returning(kitchen_tickets.c.id)
            )
            assert new_id is not None
            made.append(Ticket(int(new_id), t, None, 0, 1))
        return made

    async def tickets_of_orders(
        self, store_id: int, order_ids: Sequence[int], station_id: int | None
    ) -> list[Ticket]:
        query = sa.select(kitchen_tickets).where(
            kitchen_tickets.c.store_id == store_id, kitchen_tickets.c.order_id.in_(order_ids)
        )
        if station_id is not None:
            query = query.where(kitchen_tickets.c.station_id == station_id)
        rows = await self._conn.execute(query.order_by(kitchen_tickets.c.id))
        return [_ticket(r) for r in rows]

    async def mark_printed(self, ticket_ids: Sequence[int], at: datetime) -> list[Ticket]:
        await self._conn.execute(
            kitchen_tickets.update()
            .where(kitchen_tickets.c.id.in_(ticket_ids))
            .values(
                printed_at=at,
                print_count=kitchen_tickets.c.print_count + 1,
                version=kitchen_tickets.c.version + 1,
            )
        )
        return await self.get_tickets(ticket_ids)

    async def get_tickets(self, ticket_ids: Sequence[int]) -> list[Ticket]:
        if not ticket_ids:
            return []
        rows = await self._conn.execute(
            sa.select(kitchen_tickets)
            .where(kitchen_tickets.c.id.in_(ticket_ids))
            .order_by(kitchen_tickets.c.id)
        )
        return [_ticket(r) for r in rows]

    async def open_tickets(self, store_id: int, station_id: int | None, limit: int) -> list[Ticket]:
        query = (
            sa.select(kitchen_tickets)
            .join(orders, orders.c.id == kitchen_tickets.c.order_id)
            .where(
                kitchen_tickets.c.store_id == store_id,
                orders.c.status.in_([s.value for s in KITCHEN_QUEUE]),
            )
        )
        if station_id is not None:
            query = query.where(kitchen_tickets.c.station_id == station_id)
        rows = await self._conn.execute(query.order_by(kitchen_tickets.c.id).limit(limit))
        return [_ticket(r) for r in rows]
