"""The ``outbound_calls`` table: calls out written with the commit that wants them
(``domain.calls``), and what the relay (``dinegraph.outbound``) does with them.

A relay takes a call by a conditional UPDATE that sets its lease and counts the attempt;
two processes racing for the same row cannot both match it, on either database. What it
then writes back names the attempt it took, so a relay whose lease ran out and was taken
over cannot overwrite the newer attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE, local_write_lock
from dinegraph.db.tables import outbound_calls as t
from dinegraph.domain.calls import (
    OutboundCall,
    OutboundCallStatus,
    RecordedCall,
    TakenCall,
    short_error,
)

PENDING = OutboundCallStatus.PENDING.value
DONE = OutboundCallStatus.DONE.value
FAILED = OutboundCallStatus.FAILED.value


async def add_calls(
    conn: AsyncConnection,
    calls: Sequence[OutboundCall],
    *,
    created_at: datetime,
    first_attempt_at: datetime,
) -> list[int]:
    """Write ``calls`` in the caller's transaction; the ids of those not recorded before
    (the same kind and key again is the same call: it is stored once)."""
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    ids: list[int] = []
    for call in calls:
        stmt = (
            insert(t)
            .values(
                kind=call.kind,
                key=call.key,
                payload=dict(call.payload),
                status=PENDING,
                attempts=0,
                next_attempt_at=first_attempt_at,
                created_at=created_at,
            )
            .on_conflict_do_nothing(index_elements=[t.c.kind, t.c.key])
            .returning(t.c.id)
        )
        new = (await conn.execute(stmt)).scalar_one_or_none()
        if new is not None:
            ids.append(int(new))
    return ids


class SqlCallStore:
    """The relay's side of ``outbound_calls``, each method its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        lock = local_write_lock(self._engine)
        if lock is not None:
            await lock.acquire()
        try:
            async with self._engine.connect() as conn:
                await conn.execution_options(**{WRITE: True})
                async with conn.begin():
                    yield conn
        finally:
            if lock is not None:
                lock.release()

    async def take(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        ids: Sequence[int] | None = None,
    ) -> list[TakenCall]:
        """Lease up to ``limit`` PENDING calls no one holds: those of ``ids`` whatever their
        time (just written by this process), else those due by ``now``, oldest first."""
        free = sa.or_(t.c.lease_until.is_(None), t.c.lease_until <= now)
        if ids is not None:
            which = sa.and_(t.c.id.in_(list(ids)), t.c.status == PENDING, free)
        else:
            due = sa.and_(t.c.status == PENDING, t.c.next_attempt_at <= now, free)
            # SKIP LOCKED (PostgreSQL; SQLite writes one at a time anyway): a relay racing
            # another takes the next calls instead of waiting on the same rows and finding
            # them leased, which would end its sweep with nothing taken. MATERIALIZED: the
            # pick runs once; a rescan of a SKIP LOCKED subquery picks more rows each time.
            oldest = (
                sa.select(t.c.id)
                .where(due)
                .order_by(t.c.next_attempt_at, t.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .cte("picked")
                .prefix_with("MATERIALIZED", dialect="postgresql")
            )
            which = sa.and_(t.c.id.in_(sa.select(oldest.c.id)), due)
        stmt = (
            t.update()
            .where(which)
            .values(lease_until=lease_until, attempts=t.c.attempts + 1)
            .returning(t.c.id, t.c.kind, t.c.key, t.c.payload, t.c.attempts)
        )
        async with self._writing() as conn:
            rows = (await conn.execute(stmt)).all()
        taken = [
            TakenCall(int(r.id), int(r.attempts), OutboundCall(r.kind, r.key, r.payload or {}))
            for r in rows
        ]
        return sorted(taken, key=lambda c: c.id)

    async def done(self, taken: TakenCall, now: datetime) -> bool:
        """The provider took it: DONE, its payload forgotten. False if the attempt was
        not this relay's any more."""
        return await self._finish(
            taken, status=DONE, payload=sa.null(), last_error=None, done_at=now, next_at=None
        )

    async def again(self, taken: TakenCall, error: str, at: datetime) -> bool:
        """Try again at ``at``."""
        return await self._finish(taken, status=PENDING, last_error=error, next_at=at)

    async def failed(self, taken: TakenCall, error: str) -> bool:
        """Refused for good, or out of attempts: FAILED, payload kept for the operator."""
        return await self._finish(taken, status=FAILED, last_error=error, next_at=None)

    async def _finish(
        self,
        taken: TakenCall,
        *,
        status: str,
        last_error: str | None,
        next_at: datetime | None,
        **values: object,
    ) -> bool:
        values.update(status=status, lease_until=None, last_error=last_error)
        if last_error is not None:
            values["last_error"] = short_error(last_error)
        if next_at is not None:
            values["next_attempt_at"] = next_at
        stmt = (
            t.update()
            .where(t.c.id == taken.id, t.c.attempts == taken.attempt, t.c.status == PENDING)
            .values(**values)
        )
        async with self._writing() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def retry(self, call_id: int, now: datetime) -> RecordedCall | None:
        """An operator puts a FAILED call back: PENDING, due now, attempts counted afresh.
        None when there is no such call or it has not failed."""
        stmt = (
            t.update()
            .where(t.c.id == call_id, t.c.status == FAILED)
            .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
            .returning(*_RECORDED)
        )
        async with self._writing() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return _recorded(row) if row is not None else None

    async def get(self, call_id: int) -> RecordedCall | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(*_RECORDED).where(t.c.id == call_id))).first()
        return _recorded(row) if row is not None else None

    async def page(
        self,
        *,
        statuses: Sequence[OutboundCallStatus] | None,
        kind: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[RecordedCall]:
        """Calls newest first, after the cursor ``before_id``, for operators."""
        query = sa.select(*_RECORDED).order_by(t.c.id.desc()).limit(limit)
        if statuses:
            query = query.where(t.c.status.in_([s.value for s in statuses]))
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_recorded(r) for r in rows]


_RECORDED = (
    t.c.id,
    t.c.kind,
    t.c.key,
    t.c.status,
    t.c.attempts,
    t.c.last_error,
    t.c.next_attempt_at,
    t.c.created_at,
    t.c.done_at,
)


def _recorded(row: Any) -> RecordedCall:
    return RecordedCall(
        id=int(row.id),
        kind=row.kind,
        key=row.key,
        status=OutboundCallStatus(row.status),
        attempts=int(row.attempts),
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        done_at=row.done_at,
    )
