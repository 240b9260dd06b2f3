"""The unit of work: one database transaction around one use case."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.catalog import SqlCatalogRepository
from dinegraph.db.engine import WRITE


class SqlUnitOfWork:
    """Opens a write transaction on enter; commits only when told, rolls back otherwise."""

    catalog: SqlCatalogRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(**{WRITE: True})
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.catalog = SqlCatalogRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    async def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("commit() outside of 'async with uow'")
        await self._conn.commit()
