"""SQLite's one writer: units queued for the process's write lock leave the queue as soon
as the board learns the supply they came for is gone, and the lock is never lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import create_engine, local_write_lock
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.supplies import GoneWhileQueued, Supply, campaign_quota
from dinegraph.events.exhaustion import Board
from tests.conftest import make_settings

QUOTA = campaign_quota(7, 1, 98)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}"))
    yield engine
    await engine.dispose()


async def queued(lock: asyncio.Lock, count: int) -> None:
    """Until ``count`` units wait for the lock (a few turns of the loop at most)."""
    for _ in range(1000):
        if len(lock._waiters or ()) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(lock._waiters or ())} waiting, not {count}")


async def test_units_queued_for_a_supply_leave_when_it_goes_and_others_keep_their_turn(
    sqlite: AsyncEngine,
) -> None:
    board = Board(trust_seconds=60)
    lock = local_write_lock(sqlite)
    assert lock is not None
    entered: list[str] = []

    async def write(name: str, *, for_quota: bool) -> None:
        unit = SqlUnitOfWork(sqlite, board=board.unit())
        async with unit.unless_gone(QUOTA) if for_quota else unit:
            entered.append(name)

    holder = SqlUnitOfWork(sqlite, board=board.unit())
    await holder.__aenter__()
    buyers = [asyncio.ensure_future(write(f"buyer {i}", for_quota=True)) for i in range(5)]
    restock = asyncio.ensure_future(write("restock", for_quota=False))
    await queued(lock, 6)

    board.unit().saw_gone(QUOTA)  # the holder took the last unit, say
    # Bounded, so that a queue that is not left fails here instead of hanging.
    results = await asyncio.wait_for(asyncio.gather(*buyers, return_exceptions=True), 30)
    assert [type(r) for r in results] == [GoneWhileQueued] * 5
    assert lock.locked() and not restock.done()  # left while the holder still writes

    await holder.__aexit__(None, None, None)
    await restock
    assert entered == ["restock"] and not lock.locked()

    # Gone already: a unit that would have to queue does not; a free lock is simply taken.
    await holder.__aenter__()
    with pytest.raises(GoneWhileQueued):
        await write("late buyer", for_quota=True)
    await holder.__aexit__(None, None, None)
    await write("first buyer after a restock", for_quota=True)
    assert entered[-1] == "first buyer after a restock" and not lock.locked()


async def test_a_unit_queued_for_a_supply_that_lasts_gets_the_lock_in_turn(
    sqlite: AsyncEngine,
) -> None:
    board = Board(trust_seconds=60)
    lock = local_write_lock(sqlite)
    assert lock is not None
    order: list[int] = []

    async def write(i: int) -> None:
        async with SqlUnitOfWork(sqlite, board=board.unit()).unless_gone(QUOTA):
            order.append(i)
            await asyncio.sleep(0)

    holder = SqlUnitOfWork(sqlite, board=board.unit())
    await holder.__aenter__()
    buyers = [asyncio.ensure_future(write(i)) for i in range(4)]
    await queued(lock, 4)
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*buyers)
    assert order == [0, 1, 2, 3] and not lock.locked()
    assert board._waiting == {}  # their waits for the supply were dropped


async def test_a_queued_unit_cancelled_or_handed_the_lock_as_it_leaves_never_keeps_it(
    sqlite: AsyncEngine,
) -> None:
    board = Board(trust_seconds=60)
    lock = local_write_lock(sqlite)
    assert lock is not None
    holder = SqlUnitOfWork(sqlite, board=board.unit())

    async def write(supply: Supply = QUOTA) -> None:
        async with SqlUnitOfWork(sqlite, board=board.unit()).unless_gone(supply):
            pass

    # Cancelled while queued (the buyer hung up).
    await holder.__aenter__()
    waiting = asyncio.ensure_future(write())
    await queued(lock, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await holder.__aexit__(None, None, None)
    assert not lock.locked()

    # The lock is handed over in the same turn as the supply goes: whichever wins, the
    # lock ends free.
    await holder.__aenter__()
    racing = asyncio.ensure_future(write())
    await queued(lock, 1)
    await holder.__aexit__(None, None, None)  # hands the lock to the queued unit ...
    board.unit().saw_gone(QUOTA)  # ... as the supply goes
    await asyncio.gather(racing, return_exceptions=True)
    assert not lock.locked()

    # The other way round: the supply goes, then the lock is handed over, in one turn.
    other = campaign_quota(8, 1, 98)
    await lock.acquire()
    late = asyncio.ensure_future(write(other))
    await queued(lock, 1)
    board.unit().saw_gone(other)
    lock.release()
    with pytest.raises(GoneWhileQueued):
        await late
    assert not lock.locked()
    async with SqlUnitOfWork(sqlite, board=board.unit()):
        pass
