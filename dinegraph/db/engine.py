"""Engines for the two supported databases, each set up for concurrent writers."""

from __future__ import annotations

import asyncio
import weakref
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from dinegraph.db.personal import PersonalCipher, attach
from dinegraph.db.sqlite_trips import one_trip_dbapi
from dinegraph.settings import Settings

WRITE = "dinegraph_write"
"""Execution option that marks a connection's transaction as a write (SQLite: IMMEDIATE)."""


class StatementCount:
    """Counts SQL statements issued while it is the current one (see ``counting``)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_current_count: ContextVar[StatementCount | None] = ContextVar("sql_count", default=None)


# The engines of this process, each told to count once anything counts: a listener on
# every statement costs 15-18 microseconds of CPU each time (SQLAlchemy's event dispatch),
# and a production server without Server-Timing never counts.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_counts = False


def counting() -> StatementCount:
    """Start counting the statements of this task and the tasks it starts (on every
    engine of :func:`create_engine`, from the first call on)."""
    global _counts
    if not _counts:
        _counts = True
        for engine in list(_engines):
            _count_on(engine)
    counter = StatementCount()
    _current_count.set(counter)
    return counter


def _count_on(engine: Engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _count_statement):
        event.listen(engine, "before_cursor_execute", _count_statement)


def _count_statement(*_: object) -> None:
    counter = _current_count.get()
    if counter is not None:
        counter.count += 1


_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def local_write_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """SQLite only: one writer at a time within this process.

    SQLite admits one writer anyway; queueing them here hands the lock straight to the next
    writer, where SQLite's busy handler would make waiters sleep and retry while the lock
    sits free. Other processes still wait on the busy timeout.
    """
    if engine.dialect.name != "sqlite":
        return None
    lock = _write_locks.get(engine.sync_engine)
    if lock is None:
        lock = _write_locks[engine.sync_engine] = asyncio.Lock()
    return lock


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    url = url or settings.database_url
    if is_sqlite(url):
        engine = _sqlite_engine(
            url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.sqlite_pool_size,
        )
    else:
        engine = create_async_engine(
            url,
            # A fixed pool: a request beyond it waits for a connection (as on SQLite) rather
            # than opening one that is closed again when it is returned. Under a burst, that
            # overflow opened and closed hundreds of connections a second, each a new
            # PostgreSQL backend and an asyncpg handshake (BENCHMARKS.md, Stock contention).
            pool_size=settings.database_pool_size,
            max_overflow=0,
            # No pre-ping: it costs a round trip per checkout; stale connections are
            # recycled instead and a failed statement raises as usual.
            pool_recycle=1800,
        )
    _engines.add(engine.sync_engine)
    if _counts:
        _count_on(engine.sync_engine)
    attach(
        engine.sync_engine.dialect,
        PersonalCipher(settings.personal_data_keys, settings.personal_index_key),
    )
    return engine


def _sqlite_engine(url: str, *, busy_timeout_ms: int, pool_size: int) -> AsyncEngine:
    # Check-in rolls back only a transaction still open (see ``_on_reset``), not every time.
    # A few connections and no overflow: each one is an aiosqlite thread contending for the
    # GIL with its own cold page cache, and sixteen concurrent menus cost a sixth more CPU
    # each on fifteen of them than on three (bench/menu.py). A task never holds a connection
    # while it waits for another (tests/integration/test_connection_nesting.py), so requests
    # beyond the pool queue for a connection and never for each other.
    engine = create_async_engine(
        url,
        module=one_trip_dbapi(),  # one trip to aiosqlite's thread a statement, not four
        connect_args={"timeout": busy_timeout_ms / 1000},
        pool_reset_on_return=None,
        pool_size=pool_size,
        max_overflow=0,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver, so that BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the lock up front: a deferred transaction that reads and then writes
        # fails with SQLITE_BUSY instead of waiting for the busy timeout. Reads issue no
        # BEGIN at all: each read is one statement, consistent on its own under WAL.
        if conn.get_execution_options().get(WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: ConnectionPoolEntry, state: Any) -> None:
        # A read issues no BEGIN (above), so a pooled connection coming back from one has
        # nothing to roll back: the driver's ROLLBACK would only cost a trip through
        # aiosqlite's thread, once per read. Whatever did leave a transaction open (a write
        # that failed or was abandoned before its end) is rolled back here as before.
        if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
            return
        if _open_transaction(dbapi_connection):
            dbapi_connection.rollback()

    return engine


def _open_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite holds a transaction open on this (aiosqlite-adapted) connection;
    True when that cannot be told, so that it is rolled back."""
    try:
        return bool(dbapi_connection._connection.in_transaction)
    except AttributeError:
        return True
