"""Re-encrypting personal data under the current data key (``dinegraph rotate-data-keys``).

Rows are taken in batches by id, each batch in a write transaction of its own, so a run
that stops keeps what it did and the next run carries on: a value already under the current
key is left alone, so running it again changes nothing. A value is rewritten only if it is
still the one read, so a concurrent write is never undone. Members' phones are also indexed
again where the blind index key changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE, local_write_lock
from dinegraph.db.personal import Encrypted, PersonalCipher, cipher_of
from dinegraph.db.tables import members, metadata


@dataclass
class ColumnRotation:
    """What a run did to one column: values rewritten, and values found under the current key."""

    column: str
    rotated: int = 0
    current: int = 0


def personal_columns() -> dict[str, tuple[str, ...]]:
    """Each table holding personal data and its encrypted columns, by the tables' types."""
    found: dict[str, tuple[str, ...]] = {}
    for table in metadata.sorted_tables:
        names = tuple(c.name for c in table.columns if isinstance(c.type, Encrypted))
        if names:
            found[table.name] = names
    return found


async def rotate_data_keys(engine: AsyncEngine, *, batch_size: int = 500) -> list[ColumnRotation]:
    """Rewrite every personal value not under the current key; the count per column."""
    cipher = cipher_of(engine.sync_engine.dialect)
    report: list[ColumnRotation] = []
    for table, names in personal_columns().items():
        indexed = table == members.name
        counts = [ColumnRotation(f"{table}.{name}") for name in names]
        if indexed:
            counts.append(ColumnRotation(f"{table}.phone_index"))
        raw = sa.table(
            table,
            sa.column("id"),
            *(sa.column(n) for n in names),
            *([sa.column("phone_index")] if indexed else []),
        )
        after = 0
        while True:
            async with _write(engine) as conn:
                rows = (
                    await conn.execute(
                        sa.select(raw).where(raw.c.id > after).order_by(raw.c.id).limit(batch_size)
                    )
                ).all()
                for row in rows:
                    await _rotate_row(conn, cipher, raw, row, names, counts, indexed=indexed)
                await conn.commit()
            if len(rows) < batch_size:
                break
            after = rows[-1].id
        report.extend(counts)
    return report


async def _rotate_row(
    conn: AsyncConnection,
    cipher: PersonalCipher,
    raw: sa.TableClause,
    row: Any,
    names: Sequence[str],
    counts: list[ColumnRotation],
    *,
    indexed: bool,
) -> None:
    values: dict[str, str] = {}
    for name, count in zip(names, counts, strict=False):
        stored = getattr(row, name)
        if stored is None:
            continue
        column = f"{raw.name}.{name}"
        reindex = indexed and name == "phone"
        if cipher.is_current(stored):
            count.current += 1
            if not reindex:
                continue
        plain = cipher.decrypt(stored, column)
        if not cipher.is_current(stored):
            values[name] = cipher.encrypt(plain, column)
            count.rotated += 1
        if reindex:
            index = cipher.blind_index(plain)
            if row.phone_index != index:
                values["phone_index"] = index
                counts[-1].rotated += 1
            else:
                counts[-1].current += 1
    if values:
        # Only if the row still holds what was read: a concurrent write stays.
        still = [raw.c[name] == getattr(row, name) for name in names if name in values]
        if "phone_index" in values:
            still.append(raw.c.phone == row.phone)
        await conn.execute(raw.update().where(raw.c.id == row.id, *still).values(**values))


class _write:
    """A write connection, behind the process's SQLite writer lock like a unit of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = local_write_lock(engine)

    async def __aenter__(self) -> AsyncConnection:
        if self._lock is not None:
            await self._lock.acquire()
        self._conn = await self._engine.connect()
        await self._conn.execution_options(**{WRITE: True})
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
