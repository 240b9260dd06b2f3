"""The feed of a coupon issue job: its progress now, then after each batch it commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from dinegraph.context import Context
from dinegraph.domain.coupons import IssueJob, JobStatus
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.events import Event
from dinegraph.domain.identity import require_catalog_editor
from dinegraph.domain.stamps import EVERYTHING, ReadsChanged, issue_job_stamp
from dinegraph.events.codec import READS_TOPIC

RECHECK_SECONDS = 30.0
"""The job is read again at least this often, for a batch no process heard of (a broker
connection down for a while)."""
FINISHED = (JobStatus.DONE, JobStatus.SOLD_OUT)


class _Box(Protocol):
    async def take(self) -> list[Event]: ...


async def issue_job_feed(ctx: Context, job_id: int) -> AsyncIterator[IssueJob]:
    """Head office: a job as it is now, then again after each committed batch, until it ends
    (DONE or SOLD_OUT), which is its last value."""
    require_catalog_editor(ctx.viewer)
    stamp = issue_job_stamp(job_id)
    # Join before the first read, so no batch committed between the two can be missed.
    box = await ctx.broker.hub.join([READS_TOPIC])
    try:
        sent: IssueJob | None = None
        while True:
            found = await ctx.reads.issue_jobs([job_id])
            if not found:
                raise DomainError(ErrorCode.NOT_FOUND, field=["jobId"])
            job = found[0]
            if job != sent:
                sent = job
                yield job
            if job.status in FINISHED:
                return
            await _batch(box, stamp)
    finally:
        await ctx.broker.hub.leave([READS_TOPIC], box)


async def _batch(box: _Box, stamp: str) -> None:
    """Wait until a commit may have moved the job, or RECHECK_SECONDS pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECHECK_SECONDS
    while (left := deadline - loop.time()) > 0:
        try:
            events = await asyncio.wait_for(box.take(), left)
        except TimeoutError:
            return
        for event in events:
            if isinstance(event, ReadsChanged) and (
                stamp in event.stamps or EVERYTHING in event.stamps
            ):
                return
