"""The Redis broker's outbox: events kept in ``event_outbox`` from the writing transaction
until they have been published, so a committed change is heard even if its writer died.

Implements the ``Outbox`` port of ``dinegraph.events.brokers``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE
from dinegraph.db.tables import event_outbox


class SqlOutbox:
    """The ``event_outbox`` table of the application's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, conn: AsyncConnection, messages: Sequence[tuple[str, str]]) -> list[int]:
        """Write the messages on the writing connection, before its COMMIT; their ids."""
        rows = [{"topic": topic, "payload": payload} for topic, payload in messages]
        result = await conn.execute(
            event_outbox.insert().returning(event_outbox.c.id, sort_by_parameter_order=True), rows
        )
        return [int(i) for i in result.scalars()]

    async def remove(self, ids: Sequence[int]) -> None:
        """Forget messages that have been published."""
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                await conn.execute(event_outbox.delete().where(event_outbox.c.id.in_(ids)))

    async def relay(
        self,
        before: datetime,
        limit: int,
        publish: Callable[[Sequence[tuple[str, str]]], Awaitable[None]],
    ) -> int:
        """Take up to ``limit`` messages written before ``before``, oldest first, and
        publish them; they are deleted only if ``publish`` returns. How many there were."""
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                stale = (
                    sa.select(event_outbox.c.id)
                    .where(event_outbox.c.created_at < before)
                    .order_by(event_outbox.c.id)
                    .limit(limit)
                    .scalar_subquery()
                )
                rows = (
                    await conn.execute(
                        event_outbox.delete()
                        .where(event_outbox.c.id.in_(stale))
                        .returning(event_outbox.c.topic, event_outbox.c.payload)
                    )
                ).all()
                if rows:
                    await publish([(r.topic, r.payload) for r in rows])
        return len(rows)
