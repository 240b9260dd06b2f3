"""Persisted GraphQL documents, by SHA-256, where every server process sees them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE
from dinegraph.db.tables import persisted_documents as table
from dinegraph.persisted import StoredDocument


def _insert(conn: AsyncConnection, values: dict[str, object] | None = None) -> sqlite.Insert:
    """INSERT with ON CONFLICT, in the dialect's words (both build the same statement)."""
    make = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = make(table)
    return statement.values(**values) if values else statement  # type: ignore[return-value]


class SqlDocumentStore:
    """Automatic persisted queries (at most ``max_automatic``, the oldest forgotten first)
    and trusted documents, which are never forgotten."""

    def __init__(self, engine: AsyncEngine, *, max_automatic: int) -> None:
        self._engine = engine
        self._max_automatic = max_automatic

    async def get(self, sha256: str) -> StoredDocument | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(table.c.document, table.c.trusted).where(table.c.sha256 == sha256)
                )
            ).first()
        return StoredDocument(row.document, row.trusted) if row else None

    async def remember(self, sha256: str, document: str) -> None:
        """Keep a client's document; beyond the bound, the oldest automatic ones go."""
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                added = await conn.execute(
                    _insert(
                        conn,
                        {
                            "sha256": sha256,
                            "document": document,
                            "trusted": False,
                            "created_at": datetime.now(UTC),
                        },
                    ).on_conflict_do_nothing(index_elements=["sha256"])
                )
                if added.rowcount:
                    await self._forget_beyond_bound(conn)

    async def _forget_beyond_bound(self, conn: AsyncConnection) -> None:
        automatic = table.c.trusted.is_(False)
        kept = (
            sa.select(table.c.sha256)
            .where(automatic)
            .order_by(table.c.created_at.desc(), table.c.sha256)
            .limit(self._max_automatic)
        )
        count = await conn.scalar(sa.select(sa.func.count()).where(automatic))
        if count is not None and count > self._max_automatic:
            await conn.execute(table.delete().where(automatic, table.c.sha256.not_in(kept)))

    async def trust(self, documents: Mapping[str, str]) -> int:
        """Register documents ahead of time; returns how many were not trusted before."""
        if not documents:
            return 0
        now = datetime.now(UTC)
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                before = await conn.scalar(
                    sa.select(sa.func.count()).where(
                        table.c.sha256.in_(list(documents)), table.c.trusted.is_(True)
                    )
                )
                await conn.execute(
                    _insert(conn).on_conflict_do_update(
                        index_elements=["sha256"], set_={"trusted": True}
                    ),
                    [
                        {"sha256": sha, "document": text, "trusted": True, "created_at": now}
                        for sha, text in documents.items()
                    ],
                )
        return len(documents) - int(before or 0)

    async def count(self, *, trusted: bool) -> int:
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count()).where(table.c.trusted.is_(trusted))
            )
        return int(found or 0)
