"""The stock repository: movements, ledger rows and levels, changed in one transaction.

The statements of a sale or an order's hold are built once per dialect and executed with
parameters: building a statement costs more CPU than running it on a hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import skus, stock_ledger, stock_levels, stock_movements, stores
from dinegraph.domain.stamps import stock_stamp
from dinegraph.domain.stock import (
    DEFAULT_LOW_STOCK_THRESHOLD,
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    SkuStock,
    StockLevel,
)
from dinegraph.domain.store_repositories import take_and_ledger

_LEVEL_COLUMNS = (
    stock_levels.c.store_id,
    stock_levels.c.sku_id,
    stock_levels.c.available,
    stock_levels.c.sold_out,
    stock_levels.c.low_stock_threshold,
    stock_levels.c.version,
)


def _level(row: Any, prefix: str = "") -> StockLevel:
    """The level in ``row``, its columns named ``prefix`` + the column's name."""
    return StockLevel(
        store_id=getattr(row, f"{prefix}store_id"),
        sku_id=getattr(row, f"{prefix}sku_id"),
        available=getattr(row, f"{prefix}available"),
        sold_out=getattr(row, f"{prefix}sold_out"),
        low_stock_threshold=getattr(row, f"{prefix}low_stock_threshold"),
        version=getattr(row, f"{prefix}version"),
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


_MOVEMENT_VALUES = ("store_id", "source", "reference", "fingerprint", "lines", "reason", "actor")


@cache
def _claim(dialect: str) -> sa.Insert:
    """The movement's row, inserted only if its store exists and its key is free.

    ON CONFLICT DO NOTHING waits for a concurrent writer of the same key to finish, so a
    replay racing the first request sees its outcome instead of failing.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Parameters named after the columns they fill, prefixed: insert() keeps column names.
    values = sa.select(
        *(
            sa.bindparam(f"m_{name}", type_=stock_movements.c[name].type)
            for name in _MOVEMENT_VALUES
        )
    ).where(sa.exists().where(stores.c.id == sa.bindparam("m_store_id")))
    statement: sa.Insert = (
        insert(stock_movements)
        .from_select(list(_MOVEMENT_VALUES), values)
        .on_conflict_do_nothing(index_elements=["store_id", "source", "reference"])
        .returning(*stock_movements.c)
    )
    return statement


_MOVEMENT_BY_KEY = sa.select(stock_movements).where(
    stock_movements.c.store_id == sa.bindparam("store_id"),
    stock_movements.c.source == sa.bindparam("source"),
    stock_movements.c.reference == sa.bindparam("reference"),
)

_TRACKED = sa.exists().where(skus.c.id == stock_levels.c.sku_id, skus.c.tracked)


@cache
def _take(lines: int) -> sa.Update:
    """Take each of ``lines`` SKUs' units (``sku_<n>``, ``delta_<n>`` < 0) from the store's
    tracked levels that hold enough, in one statement; the levels changed."""
    return _taking(lines).returning(*_LEVEL_COLUMNS)


def _taking(lines: int) -> sa.Update:
    """The take of :func:`_take`, returning nothing yet.

    The condition makes the check and the change one atomic step: two sales of the last
    unit cannot both pass it. A SKU that is made to order, unknown or short is left alone
    (and missing from what the statement returns).
    """
    if lines == 1:
        delta: sa.ColumnElement[int] = sa.bindparam("delta_0", type_=sa.Integer)
        which = stock_levels.c.sku_id == sa.bindparam("sku_0", type_=sa.Integer)
    else:
        delta = sa.case(
            *(
                (
                    stock_levels.c.sku_id == sa.bindparam(f"sku_{n}", type_=sa.Integer),
                    sa.bindparam(f"delta_{n}", type_=sa.Integer),
                )
                for n in range(lines)
            )
        )
        which = stock_levels.c.sku_id.in_(
            [sa.bindparam(f"sku_{n}", type_=sa.Integer) for n in range(lines)]
        )
    statement: sa.Update = (
        stock_levels.update()
        .where(
            stock_levels.c.store_id == sa.bindparam("at_store", type_=sa.Integer),
            which,
            stock_levels.c.available + delta >= 0,
            _TRACKED,
        )
        .values(available=stock_levels.c.available + delta, version=stock_levels.c.version + 1)
    )
    return statement


@cache
def _claim_and_take_one() -> sa.Select[Any]:
    """PostgreSQL: the movement claimed (``_claim``), one line's units taken (``_take(1)``)
    and its ledger row written, in one statement: two round trips fewer for a one-line sale.
    The take runs only if the claim inserted a row, so a replay takes nothing, and the ledger
    row only if units were taken. No row when the key was taken; the level's columns
    (``level_*``) are null when nothing was taken."""
    claimed = _claim("postgresql").cte("claimed")
    taken = (
        _taking(1)
        .where(sa.exists(sa.select(claimed.c.id)))
        .returning(*(c.label(f"level_{c.name}") for c in _LEVEL_COLUMNS))  # _level(row, "level_")
        .cte("taken")
    )
    ledgered = (
        stock_ledger.insert()
        .from_select(
            ["movement_id", "store_id", "sku_id", "kind", "delta", "balance_after"],
            sa.select(
                claimed.c.id,
                claimed.c.store_id,
                taken.c.level_sku_id,
                sa.bindparam("kind", type_=sa.String),
                sa.bindparam("delta_0", type_=sa.Integer),
                taken.c.level_available,
            ).select_from(claimed.join(taken, sa.true())),
        )
        .cte("ledgered")
    )
    return (
        sa.select(claimed, taken)
        .select_from(claimed.outerjoin(taken, sa.true()))
        .add_cte(ledgered)  # unreferenced: PostgreSQL runs a data-modifying CTE all the same
    )


# PostgreSQL locks rows as one statement meets them, in an order of its plan's choosing: a
# write of several levels locks them in SKU order first, so two orders of A+B and B+A never
# deadlock. (SQLite has one writer at a time.)
_LOCK_LEVELS = (
    sa.select(stock_levels.c.sku_id)
    .where(
        stock_levels.c.store_id == sa.bindparam("store_id"),
        stock_levels.c.sku_id.in_(sa.bindparam("sku_ids", expanding=True)),
    )
    .order_by(stock_levels.c.sku_id)
    .with_for_update()
)

_SKU_STOCK = (
    sa.select(skus.c.id, skus.c.tracked, stock_levels.c.available, stock_levels.c.sold_out)
    .select_from(skus)
    .outerjoin(
        stock_levels,
        (stock_levels.c.sku_id == skus.c.id)
        & (stock_levels.c.store_id == sa.bindparam("store_id")),
    )
    .where(skus.c.id.in_(sa.bindparam("sku_ids", expanding=True)))
)

_ADD_LEDGER_ROWS = stock_ledger.insert()

_GET_LEVEL = sa.select(*_LEVEL_COLUMNS).where(
    stock_levels.c.store_id == sa.bindparam("store_id"),
    stock_levels.c.sku_id == sa.bindparam("sku_id"),
)


class SqlStockRepository:
    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        self._conn = conn
        self._moved = moved if moved is not None else set()  # stamps its writes move
        self._dialect = conn.dialect.name
        self._insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert

    async def claim_and_take(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
        take: Sequence[MovementLine],
        kind: LedgerKind,
    ) -> tuple[Movement, dict[int, StockLevel]] | None:
        claim = {
            "m_store_id": store_id,
            "m_source": source.value,
            "m_reference": reference,
            "m_fingerprint": fingerprint,
            "m_lines": [[line.sku_id, line.quantity] for line in lines],
            "m_reason": reason,
            "m_actor": actor,
        }
        if len(take) == 1 and self._dialect == "postgresql":
            (line,) = take
            params = {
                **claim,
                "at_store": store_id,
                "sku_0": line.sku_id,
                "delta_0": line.quantity,
                "kind": kind.value,
            }
            row = (await self._conn.execute(_claim_and_take_one(), params)).first()
            if row is None:
                return None
            if row.level_sku_id is None:
                return movement_of(row), {}
            self._moved.add(stock_stamp(store_id))
            return movement_of(row), {line.sku_id: _level(row, "level_")}
        row = (await self._conn.execute(_claim(self._dialect), claim)).first()
        if row is None:
            return None
        movement = movement_of(row)
        taken = await take_and_ledger(
            self, movement_id=movement.id, store_id=store_id, kind=kind, take=take
        )
        return movement, taken

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None:
        row = (
            await self._conn.execute(
                _MOVEMENT_BY_KEY,
                {"store_id": store_id, "source": source.value, "reference": reference},
            )
        ).first()
        return movement_of(row) if row else None

    async def take(self, store_id: int, lines: Sequence[MovementLine]) -> dict[int, StockLevel]:
        if not lines:
            return {}
        if len(lines) > 1 and self._dialect == "postgresql":
            await self._conn.execute(
                _LOCK_LEVELS, {"store_id": store_id, "sku_ids": [line.sku_id for line in lines]}
            )
        params: dict[str, int] = {"at_store": store_id}
        for n, line in enumerate(lines):
            params[f"sku_{n}"] = line.sku_id
            params[f"delta_{n}"] = line.quantity
        rows = await self._conn.execute(_take(len(lines)), params)
        taken = {row.sku_id: _level(row) for row in rows}
        if taken:
            self._moved.add(stock_stamp(store_id))
        return taken

    async def sku_stock(self, store_id: int, sku_ids: Iterable[int]) -> dict[int, SkuStock]:
        ids = sorted(set(sku_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(_SKU_STOCK, {"store_id": store_id, "sku_ids": ids})
        return {
            row.id: SkuStock(
                tracked=row.tracked, available=row.available, sold_out=bool(row.sold_out)
            )
            for row in rows
        }

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

    async def add_ledger_rows(
        self,
        *,
        movement_id: int,
        store_id: int,
        kind: LedgerKind,
        rows: Sequence[tuple[int, int, int]],
    ) -> None:
        if not rows:
            return
        await self._conn.execute(
            _ADD_LEDGER_ROWS,
            [
                {
                    "movement_id": movement_id,
                    "store_id": store_id,
                    "sku_id": sku_id,
                    "kind": kind.value,
                    "delta": delta,
                    "balance_after": balance_after,
                }
                for sku_id, delta, balance_after in rows
            ],
        )

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None:
        row = (
            await self._conn.execute(_GET_LEVEL, {"store_id": store_id, "sku_id": sku_id})
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
