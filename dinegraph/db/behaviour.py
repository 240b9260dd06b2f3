"""Behaviour events in storage (``domain.behaviour.BehaviourLog``), and the histories the
recommendation model and its serving read: orders and events by member or device."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE, local_write_lock
from dinegraph.db.tables import behaviour_events as t
from dinegraph.db.tables import products, stores
from dinegraph.domain.behaviour import Actor, BehaviourEvent, EventKind, NewEvent, Recorded


@contextlib.asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction (BEGIN IMMEDIATE on SQLite, one writer per process)."""
    lock = local_write_lock(engine)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        conn = await stack.enter_async_context(engine.connect())
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            yield conn


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert(t) if conn.dialect.name == "postgresql" else sqlite.insert(t)


class _OverBound(Exception):
    """The batch would pass the actor's bound: roll the transaction back."""


async def _merge_device(conn: AsyncConnection, device_id: str, member_id: int) -> int:
    """The device's events become the member's (an id both sent stays the member's)."""
    device, member = f"d:{device_id}", f"m:{member_id}"
    mine = sa.select(t.c.client_event_id).where(t.c.actor == member).scalar_subquery()
    moved = await conn.execute(
        t.update()
        .where(t.c.actor == device, t.c.client_event_id.not_in(mine))
        .values(actor=member, member_id=member_id)
    )
    await conn.execute(t.delete().where(t.c.actor == device))
    return int(moved.rowcount or 0)


async def _lock_actor(conn: AsyncConnection, actor: str) -> None:
    """One writer per member or device at a time on PostgreSQL, to the transaction's end
    (SQLite has one writer anyway)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(actor))))


async def take_device_events(
    conn: AsyncConnection, device_id: str, member_id: int, *, keep: int
) -> int:
    """Within a member's sign-in: the device's events become the member's, who keeps their
    ``keep`` latest. How many moved."""
    member = f"m:{member_id}"
    await _lock_actor(conn, member)
    moved = await _merge_device(conn, device_id, member_id)
    if moved:
        await _keep_latest(conn, member, keep)
    return moved


async def _keep_latest(conn: AsyncConnection, actor: str, keep: int) -> None:
    """Forget the actor's events older than its ``keep`` latest (by when they were recorded)."""
    oldest_kept = await conn.scalar(
        sa.select(t.c.id)
        .where(t.c.actor == actor)
        .order_by(t.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        await conn.execute(t.delete().where(t.c.actor == actor, t.c.id < oldest_kept))


class SqlBehaviourLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def recent_count(self, actor: Actor, since: datetime) -> int:
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count()).where(t.c.actor == actor.key, t.c.created_at >= since)
            )
        return int(found or 0)

    async def record(
        self,
        actor: Actor,
        events: Sequence[NewEvent],
        now: datetime,
        *,
        since: datetime,
        at_most: int,
        keep: int,
        merge_device: str | None = None,
    ) -> Recorded | None:
        """Insert the batch unless the actor's events since ``since`` and these would pass
        ``at_most`` (None: nothing changed); an event id the actor sent before is skipped (a
        replay). With ``merge_device``, a member first takes over that device's events. The
        actor's events past its ``keep`` latest are forgotten.

        The count and the inserts are one transaction, one per actor at a time (SQLite's
        single writer; a transaction lock per actor on PostgreSQL), so batches sent at once
        cannot all pass the bound on the same count."""
        try:
            async with writing(self._engine) as conn:
                await _lock_actor(conn, actor.key)
                recent = await conn.scalar(
                    sa.select(sa.func.count()).where(
                        t.c.actor == actor.key, t.c.created_at >= since
                    )
                )
                if int(recent or 0) + len(events) > at_most:
                    raise _OverBound
                merged = 0
                if merge_device is not None and actor.member_id is not None:
                    merged = await _merge_device(conn, merge_device, actor.member_id)
                accepted = 0
                for event in events:
                    stmt = (
                        _insert(conn)
                        .values(
                            actor=actor.key,
                            member_id=actor.member_id,
                            device_id=actor.device_id,
                            client_event_id=event.client_event_id,
                            kind=event.kind.value,
                            product_id=event.product_id,
                            query=event.query,
                            store_id=event.store_id,
                            occurred_at=event.occurred_at or now,
                            created_at=now,
                        )
                        .on_conflict_do_nothing(index_elements=[t.c.actor, t.c.client_event_id])
                    )
                    accepted += (await conn.execute(stmt)).rowcount or 0
                await _keep_latest(conn, actor.key, keep)
        except _OverBound:
            return None
        return Recorded(accepted, len(events) - accepted, merged)

    async def recent(self, actor: Actor, first: int) -> list[BehaviourEvent]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t)
                .where(t.c.actor == actor.key)
                .order_by(t.c.occurred_at.desc(), t.c.id.desc())
                .limit(first)
            )
            return [
                BehaviourEvent(
                    id=r.id,
                    client_event_id=r.client_event_id,
                    kind=EventKind(r.kind),
                    product_id=r.product_id,
                    query=r.query,
                    store_id=r.store_id,
                    occurred_at=r.occurred_at,
                )
                for r in rows
            ]

    async def clear(self, actor: Actor) -> int:
        async with writing(self._engine) as conn:
            gone = await conn.execute(t.delete().where(t.c.actor == actor.key))
        return int(gone.rowcount or 0)

    async def known_products(self, ids: Sequence[int]) -> set[int]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(products.c.id).where(products.c.id.in_(ids), products.c.listed)
            )
            return {int(r.id) for r in rows}

    async def known_stores(self, ids: Sequence[int]) -> set[int]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(stores.c.id).where(stores.c.id.in_(ids)))
            return {int(r.id) for r in rows}


async def prune_events(engine: AsyncEngine, before: datetime) -> int:
    """Forget behaviour events that happened before ``before`` (retention)."""
    async with writing(engine) as conn:
        gone = await conn.execute(t.delete().where(t.c.occurred_at < before))
    return int(gone.rowcount or 0)
