"""Courier positions written in batches: one transaction for the reports of a few ms.

Each report is checked on its own, against the delivery as the reports before it in the
batch left it, by the rules of ``report_courier_position``: a refused one gets its own code
and changes nothing while the others commit. The batch reads its deliveries in one
statement, keeps every position and one audit entry per report in one statement each,
writes each delivery it moved once (conditional on the version it read) and commits once;
its events are published after that commit, and every caller is answered only then. A
batch whose transaction fails (a delivery moved by another process meanwhile, or any other
error) is written again one report at a time, the way an unbatched report is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dinegraph.domain.audit import AuditDraft
from dinegraph.domain.delivery import Delivery, PositionVerdict, changed
from dinegraph.domain.errors import DomainError
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import Viewer
from dinegraph.domain.order_repositories import DeliveryRepository
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.delivery import (
    ReportPosition,
    judge_position,
    report_courier_position,
    require_carrier,
)

log = logging.getLogger("dinegraph.positions")

Reported = tuple[Delivery, PositionVerdict]


class PositionRepository(DeliveryRepository, Protocol):
    async def get_many(self, delivery_ids: Collection[int]) -> dict[int, Delivery]: ...

    async def add_positions(
        self, rows: Sequence[tuple[int, GeoPoint, datetime, datetime]]
    ) -> None: ...


class PositionUnit(UnitOfWork, Protocol):
    """A unit of work that can carry a batch: its deliveries read many at once, and the
    audit entries of several writes."""

    @property
    def deliveries(self) -> PositionRepository: ...

    def audit_each(self, drafts: Sequence[AuditDraft]) -> None: ...


NewUnit = Callable[[AuditDraft | None], PositionUnit]
"""A fresh unit of work recording this audit entry (None: the batch's, which records each)."""


@dataclass(frozen=True, slots=True)
class PositionReport:
    cmd: ReportPosition
    viewer: Viewer
    audit: AuditDraft | None  # the report's own entry in the audit log


class _Moved(Exception):
    """A delivery of the batch changed under it: the batch is written report by report."""


async def report_courier_positions(
    reports: Sequence[PositionReport], *, uow: PositionUnit
) -> list[Reported | DomainError]:
    """Write ``reports`` in one transaction; each report's outcome, or its refusal."""
    outcomes: list[Reported | DomainError] = []
    async with uow:
        found = await uow.deliveries.get_many({r.cmd.delivery_id for r in reports})
        read_version = {d.id: d.version for d in found.values()}
        kept: list[tuple[int, GeoPoint, datetime, datetime]] = []
        audited: list[AuditDraft] = []
        for report in reports:
            cmd = report.cmd
            try:
                point = GeoPoint.checked(cmd.lat, cmd.lng, "lat")
                delivery = found.get(cmd.delivery_id)
                require_carrier(report.viewer, delivery)
                assert delivery is not None
                if report.audit is not None:
                    report.audit.wrote("Delivery", delivery.id, delivery.store_id)
                verdict, moved = judge_position(delivery, point, cmd)
            except DomainError as refused:
                outcomes.append(refused)
                continue
            kept.append((delivery.id, point, cmd.recorded_at, cmd.now))
            if report.audit is not None:
                audited.append(report.audit)
            if moved is None:
                outcomes.append((delivery, verdict))
                continue
            found[moved.id] = moved
            uow.record(changed(moved))
            outcomes.append((moved, verdict))
        await uow.deliveries.add_positions(kept)
        for delivery_id in sorted(found):  # in one order: two processes' batches never deadlock
            delivery, was = found[delivery_id], read_version[delivery_id]
            if delivery.version != was and not await uow.deliveries.save(
                delivery, expected_version=was
            ):
                raise _Moved
        uow.audit_each(audited)
        await uow.commit()
    return outcomes


class PositionBatcher:
    """This process's courier reports, gathered for ``window`` seconds (at most ``most`` a
    batch) and written by ``report_courier_positions``; one batch at a time, the next
    gathering while one writes. A window of 0 turns batching off: ``enabled`` is False."""

    def __init__(self, window: float, most: int) -> None:
        self.window = window
        self.most = max(1, most)
        self._pending: list[tuple[PositionReport, NewUnit, asyncio.Future[Reported]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.window > 0

    async def report(self, report: PositionReport, new_unit: NewUnit) -> Reported:
        """The report's outcome once its batch committed; its refusal raised."""
        done: asyncio.Future[Reported] = asyncio.get_running_loop().create_future()
        self._pending.append((report, new_unit, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        return await done

    async def _write_pending(self) -> None:
        try:
            await asyncio.sleep(self.window)
            while self._pending:
                batch, self._pending = self._pending[: self.most], self._pending[self.most :]
                try:
                    await self._write(batch)
                finally:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(RuntimeError("courier report not written"))
        finally:
            self._writer = None

    async def _write(
        self, batch: list[tuple[PositionReport, NewUnit, asyncio.Future[Reported]]]
    ) -> None:
        try:
            outcomes = await report_courier_positions(
                [report for report, _, _ in batch], uow=batch[0][1](None)
            )
        except Exception as failed:
            if len(batch) > 1 or not isinstance(failed, _Moved):
                log.warning("a batch of %d courier reports failed; one by one", len(batch))
            for report, new_unit, done in batch:
                try:
                    result = await report_courier_position(
                        report.cmd, uow=new_unit(report.audit), viewer=report.viewer
                    )
                except Exception as error:
                    _settle(done, error)
                else:
                    _settle(done, result)
            return
        for (_, _, done), outcome in zip(batch, outcomes, strict=True):
            _settle(done, outcome)


def _settle(done: asyncio.Future[Reported], outcome: Reported | Exception) -> None:
    if done.done():  # its caller went away
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
