"""The store of providers' prepays (``domain.payments.PrepayStore``): one row per order, its
newest prepay. Each write is a short transaction of its own, outside any unit of work: a
prepay is kept after the provider answered, and nothing else changes with it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE, local_write_lock
from dinegraph.db.tables import orders, payment_prepays
from dinegraph.db.uow import reading_connection
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.payments import Prepay


def _prepay_of(row: Any) -> Prepay:
    return Prepay(
        order_id=row.order_id,
        provider=row.provider,
        prepay_id=row.prepay_id,
        payer=row.payer,
        amount_fen=row.amount_fen,
        created_at=row.created_at,
        expires_at=row.expires_at,
        closed_at=row.closed_at,
    )


def _open_of(status: OrderStatus) -> sa.Select[Any]:
    return (
        sa.select(payment_prepays)
        .join(orders, orders.c.id == payment_prepays.c.order_id)
        .where(payment_prepays.c.closed_at.is_(None), orders.c.status == status.value)
    )


class SqlPrepays:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        lock = local_write_lock(self._engine)
        async with lock or contextlib.nullcontext(), self._engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                yield conn

    async def _read(self, query: sa.Select[Any]) -> list[Any]:
        conn = await reading_connection(self._engine)
        try:
            return list((await conn.execute(query)).all())
        finally:
            await conn.close()

    async def get(self, order_id: int) -> Prepay | None:
        rows = await self._read(
            sa.select(payment_prepays).where(payment_prepays.c.order_id == order_id)
        )
        return _prepay_of(rows[0]) if rows else None

    async def save(self, prepay: Prepay) -> None:
        values = {
            "order_id": prepay.order_id,
            "provider": prepay.provider,
            "prepay_id": prepay.prepay_id,
            "payer": prepay.payer,
            "amount_fen": prepay.amount_fen,
            "created_at": prepay.created_at,
            "expires_at": prepay.expires_at,
            "closed_at": prepay.closed_at,
        }
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(payment_prepays).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["order_id"],
            set_={k: statement.excluded[k] for k in values if k != "order_id"},
        )
        async with self._writing() as conn:
            await conn.execute(statement)

    async def mark_closed(self, order_id: int, at: datetime) -> None:
        async with self._writing() as conn:
            await conn.execute(
                sa.update(payment_prepays)
                .where(
                    payment_prepays.c.order_id == order_id, payment_prepays.c.closed_at.is_(None)
                )
                .values(closed_at=at)
            )

    async def awaiting(self, created_before: datetime, limit: int) -> list[Prepay]:
        query = (
            _open_of(OrderStatus.PENDING_PAYMENT)
            .where(payment_prepays.c.created_at <= created_before)
            .order_by(payment_prepays.c.created_at)
            .limit(limit)
        )
        return [_prepay_of(row) for row in await self._read(query)]

    async def of_cancelled_orders(self, limit: int) -> list[Prepay]:
        query = _open_of(OrderStatus.CANCELLED).order_by(payment_prepays.c.created_at).limit(limit)
        return [_prepay_of(row) for row in await self._read(query)]
