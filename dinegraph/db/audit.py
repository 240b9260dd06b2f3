"""The audit log's table: entries appended inside a write's transaction, read newest first.

Nothing here updates or deletes a row, and the table's triggers refuse both (see the
migration ``audit_log``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.tables import audit_log
from dinegraph.domain.audit import (
    ActorKind,
    AuditDraft,
    AuditEntry,
    AuditFilter,
    AuditRecord,
    Outcome,
)


async def append_entry(conn: AsyncConnection, entry: AuditEntry) -> None:
    """Add ``entry`` in the caller's transaction: it commits or rolls back with the write."""
    await conn.execute(_APPEND, _values(entry))  # built once: every staff and partner write


async def append_entries(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Add several entries in one statement, in the caller's transaction."""
    if entries:
        await conn.execute(_APPEND, [_values(e) for e in entries])


def _values(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at,
        "actor_kind": entry.actor_kind.value,
        "credential": entry.credential,
        "staff_id": entry.staff_id,
        "api_key_id": entry.api_key_id,
        "action": entry.action,
        "outcome": entry.outcome.value,
        "error_code": entry.error_code,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "store_id": entry.store_id,
        "client_address": entry.client_address,
        "summary": entry.summary,
    }


_APPEND = audit_log.insert()


def _where(f: AuditFilter) -> list[sa.ColumnElement[bool]]:
    c = audit_log.c
    where: list[sa.ColumnElement[bool]] = []
    if f.actor_kind is not None:
        where.append(c.actor_kind == f.actor_kind.value)
    if f.staff_id is not None:
        where.append(c.staff_id == f.staff_id)
    if f.api_key_id is not None:
        where.append(c.api_key_id == f.api_key_id)
    if f.action is not None:
        where.append(c.action == f.action)
    if f.object_type is not None:
        where.append(c.object_type == f.object_type)
    if f.object_id is not None:
        where.append(c.object_id == f.object_id)
    if f.store_id is not None:
        where.append(c.store_id == f.store_id)
    if f.since is not None:
        where.append(c.at >= f.since)
    if f.until is not None:
        where.append(c.at < f.until)
    return where


class SqlAuditLog:
    """Implements ``domain.audit.AuditLog``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def entries(
        self, where: AuditFilter, *, before_id: int | None, limit: int
    ) -> list[AuditRecord]:
        clauses = _where(where)
        if before_id is not None:
            clauses.append(audit_log.c.id < before_id)
        query = sa.select(audit_log).where(*clauses).order_by(audit_log.c.id.desc()).limit(limit)
        from dinegraph.db.uow import reading_connection

        conn = await reading_connection(self._engine)
        try:
            rows = (await conn.execute(query)).all()
        finally:
            await conn.close()
        return [
            AuditRecord(
                id=r.id,
                entry=AuditEntry(
                    at=r.at,
                    actor_kind=ActorKind(r.actor_kind),
                    credential=r.credential,
                    action=r.action,
                    outcome=Outcome(r.outcome),
                    staff_id=r.staff_id,
                    api_key_id=r.api_key_id,
                    object_type=r.object_type,
                    object_id=r.object_id,
                    store_id=r.store_id,
                    client_address=r.client_address,
                    summary=r.summary,
                    error_code=r.error_code,
                ),
            )
            for r in rows
        ]

    async def append(self, entry: AuditEntry) -> None:
        from dinegraph.db.uow import SqlUnitOfWork

        uow = SqlUnitOfWork(self._engine)  # SQLite's one-writer lock included
        uow.audit = AuditDraft(entry)
        async with uow:
            await uow.commit()  # writes the draft, and nothing else
