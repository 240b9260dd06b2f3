"""The delivery repository: trips, their latest courier position, the positions kept, riders."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.tables import courier_positions, deliveries, delivery_quotes, riders, stores
from dinegraph.domain.carriers import CarrierRule, Quote
from dinegraph.domain.delivery import Courier, Delivery, DeliveryStatus, Provider
from dinegraph.domain.geo import GeoPoint, distance_m
from dinegraph.domain.stamps import STORES


async def stores_by_platform(engine: AsyncEngine) -> dict[str, list[str]]:
    """Each carrier stores may call (their provider, or one of their platforms), with those
    stores as "name (code)": what the start-up check holds against the settings."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                stores.c.name,
                stores.c.code,
                stores.c.delivery_provider,
                stores.c.delivery_platforms,
            ).order_by(stores.c.id)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            carriers = {
                row.delivery_provider,
                *(p for p in (row.delivery_platforms or "").split(",") if p),
            }
            for carrier in sorted(carriers):
                found.setdefault(carrier, []).append(f"{row.name} ({row.code})")
    return found


def delivery_of(row: Any) -> Delivery:
    courier = Courier(row.courier_name, row.courier_phone) if row.courier_name else None
    return Delivery(
        id=row.id,
        order_id=row.order_id,
        store_id=row.store_id,
        member_id=row.member_id,
        provider=Provider(row.provider),
        status=DeliveryStatus(row.status),
        courier=courier,
        rider_id=row.rider_id,
        position=GeoPoint(row.lat, row.lng) if row.lat is not None else None,
        position_at=row.position_at,
        received_at=row.received_at,
        destination=GeoPoint(row.destination_lat, row.destination_lng),
        origin=GeoPoint(row.origin_lat, row.origin_lng),
        eta_seconds=row.eta_seconds,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# Built once: a delivery is read and written on every courier report (several a second per
# trip), where building the statement anew cost more than running it. The update reports
# its outcome by its row count, not by RETURNING: one trip less through the driver.
_BY_ID = sa.select(deliveries).where(deliveries.c.id == sa.bindparam("delivery_id"))
_SAVE = deliveries.update().where(
    deliveries.c.id == sa.bindparam("saved_id"),
    deliveries.c.version == sa.bindparam("expected_version"),
)
_ADD_POSITION = courier_positions.insert()
_BY_IDS = sa.select(deliveries).where(deliveries.c.id.in_(sa.bindparam("ids", expanding=True)))


class SqlDeliveryRepository:
    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        self._conn = conn
        self._moved = moved if moved is not None else set()  # stamps its writes move

    async def add(self, delivery: Delivery) -> Delivery:
        courier = delivery.courier
        new_id = await self._conn.scalar(
            deliveries.insert()
            .values(
                order_id=delivery.order_id,
                store_id=delivery.store_id,
                member_id=delivery.member_id,
                provider=delivery.provider.value,
                status=delivery.status.value,
                courier_name=courier.name if courier else None,
                courier_phone=courier.phone if courier else None,
                rider_id=delivery.rider_id,
                origin_lat=delivery.origin.lat,
                origin_lng=delivery.origin.lng,
                destination_lat=delivery.destination.lat,
                destination_lng=delivery.destination.lng,
                eta_seconds=delivery.eta_seconds,
                version=1,
                created_at=delivery.created_at,
                updated_at=delivery.updated_at,
            )
            .returning(deliveries.c.id)
        )
        return replace(delivery, id=int(new_id), version=1)

    async def get(self, delivery_id: int) -> Delivery | None:
        row = (await self._conn.execute(_BY_ID, {"delivery_id": delivery_id})).first()
        return delivery_of(row) if row else None

    async def get_many(self, delivery_ids: Collection[int]) -> dict[int, Delivery]:
        """The deliveries of ``delivery_ids`` that exist, by id, in one read."""
        if not delivery_ids:
            return {}
        rows = await self._conn.execute(_BY_IDS, {"ids": sorted(delivery_ids)})
        return {row.id: delivery_of(row) for row in rows}

    async def latest_for_order(self, order_id: int) -> Delivery | None:
        row = (
            await self._conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.order_id == order_id)
                .order_by(deliveries.c.id.desc())
                .limit(1)
            )
        ).first()
        return delivery_of(row) if row else None

    async def save(self, delivery: Delivery, *, expected_version: int) -> bool:
        """Write the delivery's state if nobody changed it since ``expected_version``."""
        courier = delivery.courier
        pos = delivery.position
        done = await self._conn.execute(
            _SAVE,
            {
                "saved_id": delivery.id,
                "expected_version": expected_version,
                "provider": delivery.provider.value,
                "status": delivery.status.value,
                "courier_name": courier.name if courier else None,
                "courier_phone": courier.phone if courier else None,
                "rider_id": delivery.rider_id,
                "lat": pos.lat if pos else None,
                "lng": pos.lng if pos else None,
                "position_at": delivery.position_at,
                "received_at": delivery.received_at,
                "eta_seconds": delivery.eta_seconds,
                "version": delivery.version,
                "updated_at": delivery.updated_at,
            },
        )
        return done.rowcount == 1

    async def add_position(
        self, delivery_id: int, point: GeoPoint, recorded_at: datetime, received_at: datetime
    ) -> None:
        await self.add_positions([(delivery_id, point, recorded_at, received_at)])

    async def add_positions(self, rows: Sequence[tuple[int, GeoPoint, datetime, datetime]]) -> None:
        """Keep many reported positions (delivery, point, recorded, received) at once."""
        if not rows:
            return
        await self._conn.execute(
            _ADD_POSITION,
            [
                {
                    "delivery_id": delivery_id,
                    "lat": point.lat,
                    "lng": point.lng,
                    "recorded_at": recorded_at,
                    "received_at": received_at,
                }
                for delivery_id, point, recorded_at, received_at in rows
            ],
        )

    async def nearest_idle_rider(self, store_id: int, near: GeoPoint) -> tuple[int, Courier] | None:
        """Claim the store's idle rider nearest ``near`` (the store), marked busy in this
        transaction; None when every rider is out. A rider never seen is at the store."""
        rows = (
            await self._conn.execute(
                sa.select(riders).where(
                    riders.c.store_id == store_id,
                    riders.c.active.is_(True),
                    riders.c.busy.is_(False),
                )
            )
        ).all()

        def how_far(row: Any) -> tuple[int, int]:
            at = GeoPoint(row.lat, row.lng) if row.lat is not None else near
            return distance_m(at, near), row.id

        for row in sorted(rows, key=how_far):
            claimed = await self._conn.scalar(
                riders.update()
                .where(riders.c.id == row.id, riders.c.busy.is_(False))
                .values(busy=True)
                .returning(riders.c.id)
            )
            if claimed is not None:
                return int(row.id), Courier(row.name, row.phone)
        return None

    async def claim_rider(self, rider_id: int, store_id: int) -> Courier | None:
        row = (
            await self._conn.execute(
                riders.update()
                .where(
                    riders.c.id == rider_id,
                    riders.c.store_id == store_id,
                    riders.c.active.is_(True),
                    riders.c.busy.is_(False),
                )
                .values(busy=True)
                .returning(riders.c.name, riders.c.phone)
            )
        ).first()
        return Courier(row.name, row.phone) if row else None

    async def release_rider(self, rider_id: int, at: GeoPoint | None) -> None:
        """The rider is free again, where the trip ended."""
        await self._conn.execute(
            riders.update()
            .where(riders.c.id == rider_id)
            .values(busy=False, lat=at.lat if at else None, lng=at.lng if at else None)
        )

    async def add_rider(self, store_id: int, courier: Courier) -> int:
        new_id = await self._conn.scalar(
            riders.insert()
            .values(
                store_id=store_id, name=courier.name, phone=courier.phone, active=True, busy=False
            )
            .returning(riders.c.id)
        )
        return int(new_id)

    async def add_quotes(
        self, delivery_id: int, quotes: list[Quote], ranking: list[Provider], at: datetime
    ) -> None:
        rank = {p: n for n, p in enumerate(ranking)}
        await self._conn.execute(
            delivery_quotes.insert(),
            [
                {
                    "delivery_id": delivery_id,
                    "provider": q.provider.value,
                    "fee_fen": q.fee_fen,
                    "eta_seconds": q.eta_seconds,
                    "rank": rank.get(q.provider),
                    "refused": q.refused,
                    "chosen": rank.get(q.provider) == 0,
                    "created_at": at,
                }
                for q in quotes
            ],
        )

    async def quotes(self, delivery_id: int) -> list[tuple[Quote, int | None, bool]]:
        rows = await self._conn.execute(
            sa.select(delivery_quotes)
            .where(delivery_quotes.c.delivery_id == delivery_id)
            .order_by(delivery_quotes.c.id)
        )
        return [
            (Quote(Provider(r.provider), r.fee_fen, r.eta_seconds, r.refused), r.rank, r.chosen)
            for r in rows
        ]

    async def choose(
        self, delivery_id: int, provider: Provider, refused: Provider | None, reason: str | None
    ) -> None:
        if refused is not None:
            await self._conn.execute(
                delivery_quotes.update()
                .where(
                    delivery_quotes.c.delivery_id == delivery_id,
                    delivery_quotes.c.provider == refused.value,
                )
                .values(refused=reason, chosen=False)
            )
        await self._conn.execute(
            delivery_quotes.update()
            .where(
                delivery_quotes.c.delivery_id == delivery_id,
                delivery_quotes.c.provider == provider.value,
            )
            .values(chosen=True)
        )

    async def unaccepted(self, before: datetime, limit: int) -> list[int]:
        quoted = sa.select(delivery_quotes.c.id).where(
            delivery_quotes.c.delivery_id == deliveries.c.id
        )
        rows = await self._conn.scalars(
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.updated_at < before,
                quoted.exists(),
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        return list(rows)

    async def set_provider(
        self,
        store_id: int,
        provider: Provider,
        platforms: tuple[Provider, ...] | None = None,
        rule: CarrierRule | None = None,
    ) -> bool:
        values: dict[str, Any] = {"delivery_provider": provider.value}
        if platforms is not None:
            values["delivery_platforms"] = ",".join(p.value for p in platforms)
        if rule is not None:
            values["carrier_rule"] = rule.value
        done = await self._conn.scalar(
            stores.update().where(stores.c.id == store_id).values(**values).returning(stores.c.id)
        )
        self._moved.add(STORES)
        return done is not None

    async def prune_positions(self, before: datetime) -> int:
        result = await self._conn.execute(
            courier_positions.delete().where(courier_positions.c.received_at < before)
        )
        return int(result.rowcount or 0)
