"""The SQLite engine's cursor: one trip to aiosqlite's thread a statement, with the same
answers as the driver's own cursor (rows, counts, ids, errors, streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import WRITE, create_engine
from dinegraph.settings import Settings

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    sa.Column("n", sa.Integer, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of each function aiosqlite's thread is handed, in order."""
    made: list[str] = []
    handed = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await handed(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield made


async def test_a_statement_is_one_trip_with_its_rows(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.select(1))  # the pool's connection is made before counting
        trips.clear()
        rows = (await conn.execute(sa.select(things.c.id))).all()
        assert rows == [] and trips == ["_run"]
    trips.clear()
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            inserted = await conn.execute(things.insert().values(name="a", n=1))
            assert inserted.inserted_primary_key == (1,)
        # BEGIN IMMEDIATE, the insert, then the driver's commit
        assert trips == ["_run", "_run", "commit"]


async def test_rows_counts_and_ids_are_the_drivers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        many = await conn.execute(things.insert(), [{"name": f"t{i}", "n": i} for i in range(5)])
        assert many.rowcount == 5
        one = await conn.execute(things.insert().values(name="solo", n=9))
        assert one.inserted_primary_key == (6,)
        moved = await conn.execute(things.update().where(things.c.n < 3).values(n=things.c.n + 10))
        assert moved.rowcount == 3
        returned = await conn.execute(
            things.update().where(things.c.name == "t4").values(n=40).returning(things.c.id)
        )
        assert returned.all() == [(5,)]
        rows = (await conn.execute(sa.select(things.c.name, things.c.n).order_by("id"))).all()
    assert rows == [("t0", 10), ("t1", 11), ("t2", 12), ("t3", 3), ("t4", 40), ("solo", 9)]
    async with engine.connect() as conn:
        streamed = await conn.stream(sa.select(things.c.n).order_by(things.c.id))
        assert [n async for n in streamed.scalars()] == [10, 11, 12, 3, 40, 9]


async def test_an_error_is_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            await conn.execute(things.insert().values(name="dup", n=1))
        with pytest.raises(IntegrityError):
            async with conn.begin():
                await conn.execute(things.insert().values(name="dup", n=2))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(things))).scalar() == 1
