"""The stock repository: movements, ledger rows and levels, changed in one transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import stock_ledger, stock_levels, stock_movements
from dinegraph.domain.stamps import stock_stamp
from dinegraph.domain.stock import (
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    StockLevel,
)

DEFAULT_LOW_STOCK_THRESHOLD = 5

_LEVEL_COLUMNS = (
    stock_levels.c.store_id,
    stock_levels.c.sku_id,
    stock_levels.c.available,
    stock_levels.c.sold_out,
    stock_levels.c.low_stock_threshold,
    stock_levels.c.version,
)


def _level(row: Any) -> StockLevel:
    return StockLevel(
        store_id=row.store_id,
        sku_id=row.sku_id,
        available=row.available,
        sold_out=row.sold_out,
        low_stock_threshold=row.low_stock_threshold,
        version=row.version,
    )


def movement_of(row: Any) -> Movement:
    return Movement(
        id=row.id,
        store_id=row.store_id,
        source=MovementSource(row.source),
        reference=row.reference,
        fingerprint=row.fingerprint,
        reason=row.reason,
        lines=tuple(MovementLine(sku_id, quantity) for sku_id, quantity in row.lines),
        created_at=row.created_at,
    )


class SqlStockRepository:
    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        self._conn = conn
        self._moved = moved if moved is not None else set()  # stamps its writes move
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    async def claim_movement(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
    ) -> Movement | None:
        # ON CONFLICT DO NOTHING waits for a concurrent writer of the same key to finish,
        # so a replay racing the first request sees its outcome instead of failing.
        statement = (
            self._insert(stock_movements)
            .values(
                store_id=store_id,
                source=source.value,
                reference=reference,
                fingerprint=fingerprint,
                lines=[[line.sku_id, line.quantity] for line in lines],
                reason=reason,
                actor=actor,
            )
            .on_conflict_do_nothing(index_elements=["store_id", "source", "reference"])
            .returning(*stock_movements.c)
        )
        row = (await self._conn.execute(statement)).first()
        return movement_of(row) if row else None

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None:
        row = (
            await self._conn.execute(
                sa.select(stock_movements).where(
                    stock_movements.c.store_id == store_id,
                    stock_movements.c.source == source.value,
                    stock_movements.c.reference == reference,
                )
            )
        ).first()
        return movement_of(row) if row else None

    async def change_level(self, store_id: int, sku_id: int, delta: int) -> StockLevel | None:
        self._moved.add(stock_stamp(store_id))
        key = (stock_levels.c.store_id == store_id) & (stock_levels.c.sku_id == sku_id)
        if delta < 0:
            # The condition makes the check and the change one atomic step: two sales of
            # the last unit cannot both pass it.
            statement = (
                stock_levels.update()
                .where(key, stock_levels.c.available + delta >= 0)
                .values(
                    available=stock_levels.c.available + delta,
                    version=stock_levels.c.version + 1,
                )
                .returning(*_LEVEL_COLUMNS)
            )
            row = (await self._conn.execute(statement)).first()
            return _level(row) if row else None
        insert = self._insert(stock_levels).values(
            store_id=store_id,
            sku_id=sku_id,
            available=delta,
            sold_out=False,
            low_stock_threshold=DEFAULT_LOW_STOCK_THRESHOLD,
            version=1,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["store_id", "sku_id"],
            set_={
                "available": sa.func.coalesce(stock_levels.c.available, 0) + delta,
                "version": stock_levels.c.version + 1,
            },
        ).returning(*_LEVEL_COLUMNS)
        return _level((await self._conn.execute(upsert)).one())

    async def add_ledger_row(
        self,
        *,
        movement_id: int,
        store_id: int,
        sku_id: int,
        kind: LedgerKind,
        delta: int,
        balance_after: int,
    ) -> None:
        await self._conn.execute(
            stock_ledger.insert().values(
                movement_id=movement_id,
                store_id=store_id,
                sku_id=sku_id,
                kind=kind.value,
                delta=delta,
                balance_after=balance_after,
            )
        )

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None:
        row = (
            await self._conn.execute(
                sa.select(*_LEVEL_COLUMNS).where(
                    stock_levels.c.store_id == store_id, stock_levels.c.sku_id == sku_id
                )
            )
        ).first()
        return _level(row) if row else None

    async def set_sold_out(self, store_id: int, sku_id: int, sold_out: bool) -> StockLevel:
        return await self._upsert(store_id, sku_id, available=None, sold_out=sold_out)

    async def set_threshold(self, store_id: int, sku_id: int, threshold: int) -> StockLevel:
        return await self._upsert(store_id, sku_id, available=0, low_stock_threshold=threshold)

    async def _upsert(
        self, store_id: int, sku_id: int, *, available: int | None, **changes: object
    ) -> StockLevel:
        new_row: dict[str, object] = {
            "store_id": store_id,
            "sku_id": sku_id,
            "available": available,
            "sold_out": False,
            "low_stock_threshold": DEFAULT_LOW_STOCK_THRESHOLD,
            "version": 1,
            **changes,
        }
        self._moved.add(stock_stamp(store_id))
        insert = self._insert(stock_levels).values(**new_row)
        statement = insert.on_conflict_do_update(
            index_elements=["store_id", "sku_id"],
            set_={**changes, "version": stock_levels.c.version + 1},
        ).returning(*_LEVEL_COLUMNS)
        return _level((await self._conn.execute(statement)).one())
