"""SQLite statements in one trip each to aiosqlite's thread.

aiosqlite runs every call on a sqlite3 connection in a thread of its own, and each call is a
trip: the call queued to the thread, the thread woken, the event loop woken with the result.
SQLAlchemy's aiosqlite adapter makes four trips per statement (a cursor, the statement, its
rows, closing the cursor), which cost more than SQLite itself: 235 µs of CPU for a read by
primary key. The cursor here makes one: the whole statement, its rows and its counts are
done in the thread and handed back together.

Everything else is SQLAlchemy's adapter as it is: the connection, its lock, transactions,
errors, and the server-side cursor of ``stream()`` (which fetches as it goes).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Done = tuple[Any, list[Any] | None, int, int | None]
"""A statement's description, rows (None without a description), rowcount and lastrowid."""


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Done:
    """In aiosqlite's thread: the statement, start to end, on a cursor of its own."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one trip (the rows come back with it)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    _awaitable_cursor_close = False  # nothing is left open in the thread

    def __init__(self, adapt_connection: Any) -> None:  # no trip for a cursor of the driver
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # every row is fetched at once anyway

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            done: _Done = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = done
        self._rows = collections.deque(rows) if rows is not None else collections.deque()

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass  # sqlite3's does nothing

    def nextset(self) -> None:
        pass  # sqlite3 has one result set per statement


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim, its connections making one trip a statement."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    """The ``module`` to give ``create_async_engine`` for an aiosqlite URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)
