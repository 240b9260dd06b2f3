"""The unit of work: one database transaction around one use case."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.audit import append_entries, append_entry
from dinegraph.db.calls import add_calls
from dinegraph.db.campaigns import SqlCampaignRepository
from dinegraph.db.catalog import SqlCatalogRepository
from dinegraph.db.coupons import SqlCouponRepository, SqlIssueJobRepository
from dinegraph.db.delivery import SqlDeliveryRepository
from dinegraph.db.engine import WRITE, local_write_lock
from dinegraph.db.kitchen import SqlKitchenRepository
from dinegraph.db.members import SqlMemberRepository
from dinegraph.db.orders import SqlOrderRepository
from dinegraph.db.stock import SqlStockRepository
from dinegraph.domain.audit import AuditDraft
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.coupons import CouponTemplate
from dinegraph.domain.events import Event
from dinegraph.domain.stamps import ReadsChanged, reads_changed
from dinegraph.domain.supplies import (
    NO_BOARD,
    ExhaustionBoard,
    GoneWhileQueued,
    Supply,
    SupplyChanged,
)


class EventSink(Protocol):
    """Where committed events go: the process's broker (see ``dinegraph.events``)."""

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[Event]
    ) -> object: ...

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None: ...

    def moved_here(self, change: ReadsChanged) -> None:
        """This process's own stamps, told at once (see ``commit``)."""
        ...


class CallSink(Protocol):
    """Who makes the calls a unit recorded (``dinegraph.outbound``'s relay)."""

    def now(self) -> datetime: ...

    @property
    def first_attempt_after(self) -> timedelta:
        """How long a recorded call waits for this process before any sweep may take it."""
        ...

    async def committed(self, ids: Sequence[int]) -> None:
        """The unit that wrote these calls committed and let go of its connection."""
        ...


class SqlUnitOfWork:
    """Opens a write transaction on enter; commits only when told, rolls back otherwise.

    Events recorded during the work reach the sink only after a successful commit, so a
    subscriber never hears of a change that was rolled back. The repositories mark the
    stamps of what they write (``domain.stamps``); the commit publishes them as one
    ``ReadsChanged``. Supplies it took the last of or gave back reach ``board``, this
    process's, at commit (``domain.supplies``). Calls out it recorded are written in its
    transaction, and handed to ``calls`` once it has let go of its connection (without a
    sink, a sweep takes them up).
    """

    catalog: SqlCatalogRepository
    stock: SqlStockRepository
    members: SqlMemberRepository
    coupons: SqlCouponRepository
    jobs: SqlIssueJobRepository
    orders: SqlOrderRepository
    deliveries: SqlDeliveryRepository
    campaigns: SqlCampaignRepository
    kitchen: SqlKitchenRepository
    # The audit entry its commit records (staff, partner and CLI writes; ``domain.audit``).
    audit: AuditDraft | None = None

    def __init__(
        self,
        engine: AsyncEngine,
        events: EventSink | None = None,
        board: ExhaustionBoard = NO_BOARD,
        calls: CallSink | None = None,
    ) -> None:
        self._engine = engine
        self._sink = events
        self.board = board
        self._calls = calls
        self._conn: AsyncConnection | None = None
        self._lock: asyncio.Lock | None = None
        self._unless: Supply | None = None
        self._pending: list[Event] = []
        self._moved: set[str] = set()
        self._pending_calls: list[OutboundCall] = []
        self._written_calls: list[int] = []
        self._audited: list[AuditDraft] = []

    def unless_gone(self, supply: Supply) -> SqlUnitOfWork:
        self._unless = supply
        return self

    async def __aenter__(self) -> SqlUnitOfWork:
        unless, self._unless = self._unless, None
        lock = local_write_lock(self._engine)
        if lock is not None:
            if unless is None:
                await lock.acquire()
            elif not await _acquire_unless_gone(lock, self.board, unless):
                raise GoneWhileQueued(unless)
        self._lock = lock
        try:
            conn = await self._engine.connect()
            try:
                conn = await conn.execution_options(**{WRITE: True})
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            self._release()
            raise
        self._conn = conn
        self._moved = set()
        _bind(self, conn, self._moved)
        self.jobs = SqlIssueJobRepository(conn, self._moved)
        self._pending = []
        self._pending_calls = []
        self._written_calls = []
        self._audited = []
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
            try:
                await conn.close()
            finally:
                self._release()
        written, self._written_calls = self._written_calls, []
        if written and self._calls is not None:
            await self._calls.committed(written)

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    @property
    def one_writer(self) -> bool:
        return local_write_lock(self._engine) is not None

    def reading(self) -> SqlReader:
        return SqlReader(self._engine)

    async def peek_template(self, template_id: int) -> CouponTemplate | None:
        """Read a coupon template outside any write transaction (a cheap early refusal)."""
        conn = await reading_connection(self._engine)
        try:
            return await SqlCouponRepository(conn).get_template(template_id)
        finally:
            await conn.close()

    def record(self, event: Event) -> None:
        self._pending.append(event)

    def call(self, call: OutboundCall) -> None:
        self._pending_calls.append(call)

    def wrote(self, kind: str, object_id: int, store_id: int | None = None) -> None:
        if self.audit is not None:
            self.audit.wrote(kind, object_id, store_id)

    def audit_each(self, drafts: Sequence[AuditDraft]) -> None:
        """Entries of several writes this one unit carries (a batch of courier reports),
        recorded by its commit beside ``audit``, one per write."""
        self._audited.extend(d for d in drafts if not d.written)

    async def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("commit() outside of 'async with uow'")
        events, self._pending = self._pending, []
        calls, self._pending_calls = self._pending_calls, []
        written: list[int] = []
        if calls:
            now = self._calls.now() if self._calls is not None else datetime.now(UTC)
            wait = self._calls.first_attempt_after if self._calls is not None else timedelta(0)
            written = await add_calls(
                self._conn, calls, created_at=now, first_attempt_at=now + wait
            )
        moved = reads_changed(self._moved) if self._moved else None
        self._moved.clear()
        if moved is not None:
            events.append(moved)
        audit = self.audit if self.audit is not None and not self.audit.written else None
        if audit is not None:
            await append_entry(self._conn, audit.entry)
        audited, self._audited = self._audited, []
        if audited:
            await append_entries(self._conn, [d.entry for d in audited])
        receipt = None
        if events and self._sink is not None:
            receipt = await self._sink.publish_in_transaction(self._conn, events)
        if moved is not None and self._sink is not None:
            # Told before COMMIT and after it: no read this process makes in between is kept
            # as fresh, and its next read is fresh whenever the broker brings the news back.
            self._sink.moved_here(moved)
        await self._conn.commit()
        self._written_calls.extend(written)
        if audit is not None:
            audit.written = True
        for draft in audited:
            draft.written = True
        self.board.committed(e for e in events if isinstance(e, SupplyChanged))
        if moved is not None and self._sink is not None:
            self._sink.moved_here(moved)
        if events and self._sink is not None:
            await self._sink.publish_after_commit(events, receipt)


async def _acquire_unless_gone(lock: asyncio.Lock, board: ExhaustionBoard, supply: Supply) -> bool:
    """Takes ``lock`` (True), or leaves its queue once ``board`` learns ``supply`` is gone
    (False): the writers queued behind the one that took the last unit then go at once,
    instead of each waiting for the lock, and its event-loop turn, to be refused by a read.

    The wait is left as ``asyncio.timeout`` leaves one, by cancelling this task and taking
    the cancellation back, so that taking the lock costs no task or turn more than a plain
    acquire. A cancelled acquire passes the lock on if it was handed it meanwhile.
    """
    if not lock.locked():
        await lock.acquire()
        return True
    if board.gone(supply):
        return False
    gone = board.when_gone(supply)
    task = asyncio.current_task()
    if gone is None or task is None:
        await lock.acquire()
        return True
    waiting, left = True, False

    def leave(_: asyncio.Future[None]) -> None:
        nonlocal left
        if waiting and not left:
            left = True
            task.cancel()

    gone.add_done_callback(leave)
    try:
        await lock.acquire()
    except asyncio.CancelledError:
        waiting = False
        if left and task.uncancel() == 0:
            return False
        raise
    finally:
        waiting = False
        gone.cancel()
    return True


class SqlReader:
    """The repositories on a plain connection, for reads that need no transaction (quotes).

    Each read is its own statement; nothing is locked, so it never waits for writers.
    """

    catalog: SqlCatalogRepository
    stock: SqlStockRepository
    members: SqlMemberRepository
    coupons: SqlCouponRepository
    orders: SqlOrderRepository
    deliveries: SqlDeliveryRepository
    campaigns: SqlCampaignRepository
    kitchen: SqlKitchenRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlReader:
        conn = await reading_connection(self._engine)
        self._conn = conn
        _bind(self, conn, set())  # reads move no stamps
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


async def reading_connection(engine: AsyncEngine) -> AsyncConnection:
    """A pooled connection for reads of one statement each, that writes nothing.

    On PostgreSQL it runs in autocommit: each read is consistent on its own anyway, and
    the driver's BEGIN and ROLLBACK around it would double its round trips. (SQLite issues
    no BEGIN for reads: see ``engine``.)
    """
    conn = await engine.connect()
    if engine.dialect.name == "postgresql":
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            await conn.close()
            raise
    return conn


def _bind(unit: SqlUnitOfWork | SqlReader, conn: AsyncConnection, moved: set[str]) -> None:
    """The repositories every unit has, on its connection; writes mark stamps in ``moved``."""
    unit.catalog = SqlCatalogRepository(conn, moved)
    unit.stock = SqlStockRepository(conn, moved)
    unit.members = SqlMemberRepository(conn)
    unit.coupons = SqlCouponRepository(conn)
    unit.orders = SqlOrderRepository(conn)
    unit.deliveries = SqlDeliveryRepository(conn, moved)
    unit.campaigns = SqlCampaignRepository(conn, moved)
    unit.kitchen = SqlKitchenRepository(conn)
