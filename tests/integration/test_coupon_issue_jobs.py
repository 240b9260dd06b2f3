"""Issuing a coupon to a segment: a member gets at most one coupon of a job whatever happens
to it (two runners at once, a crash in the middle of a batch and the job resumed at start),
the job counts what it did, and each batch it commits tells whoever follows it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import coupon_templates, coupons, members
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.coupons import IssueJob, JobStatus, Segment
from dinegraph.domain.events import Event
from dinegraph.domain.identity import StaffRole, StaffViewer
from dinegraph.domain.services.coupons import (
    IssueToSegment,
    resume_issue_jobs,
    run_issue_job,
    start_issue_job,
)
from dinegraph.domain.stamps import ReadsChanged, issue_job_stamp
from dinegraph.resolvers.ids import decode_id, encode_id
from tests.conftest import Credentials, GraphQLClient

HEAD_OFFICE = StaffViewer(1, "hq", StaffRole.HQ_ADMIN, frozenset())
CREATE = """mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) {
    template { id } errors { code field } } }"""
JOB = """query($id: ID!) { node(id: $id) { ... on CouponIssueJob {
    status total issued skipped } } }"""


async def template_for_two(gql: GraphQLClient, credentials: Credentials) -> int:
    """A template a member may hold two of: only the job keeps it to one per member."""
    values = {
        "title": f"唤醒券{uuid.uuid4().hex[:4]}",
        "kind": "NO_THRESHOLD",
        "amountOffFen": 500,
        "validDays": 7,
        "totalQuantity": 100_000,
        "perMemberLimit": 2,
    }
    body = await gql.execute(CREATE, {"i": values}, credentials.operator)
    payload = body["data"]["createCouponTemplate"]
    assert payload["errors"] == [], payload
    return decode_id(payload["template"]["id"], "CouponTemplate", ["t"])


async def dormant_members(engine: AsyncEngine, count: int, since: datetime) -> list[int]:
    async with SqlUnitOfWork(engine) as uow:
        added = [
            await uow.members.add(phone=None, openid=f"j-{uuid.uuid4().hex}", nickname="沉睡")
            for _ in range(count)
        ]
        await uow.commit()
    ids = [m.id for m in added]
    async with engine.begin() as conn:
        await conn.execute(members.update().where(members.c.id.in_(ids)).values(created_at=since))
    return ids


async def new_job(engine: AsyncEngine, template_id: int) -> IssueJob:
    cmd = IssueToSegment(template_id=template_id, segment=Segment(dormant_days=30))
    return await start_issue_job(cmd, uow=SqlUnitOfWork(engine), viewer=HEAD_OFFICE)


async def holdings(engine: AsyncEngine, template_id: int) -> tuple[dict[int, int], int]:
    """Coupons of the template per member, and the template's issued count."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(coupons.c.member_id, sa.func.count())
            .where(coupons.c.template_id == template_id)
            .group_by(coupons.c.member_id)
        )
        held = {int(m): int(n) for m, n in rows}
        issued = await conn.scalar(
            sa.select(coupon_templates.c.issued).where(coupon_templates.c.id == template_id)
        )
    return held, int(issued or 0)


async def job_row(engine: AsyncEngine, job_id: int) -> IssueJob:
    async with SqlUnitOfWork(engine) as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None
    return job


async def test_two_runners_of_one_job_issue_each_member_one_coupon(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    now = datetime(1990, 3, 1, tzinfo=UTC)
    mine = await dormant_members(engine, 23, now - timedelta(days=60))
    template_id = await template_for_two(gql, credentials)
    job = await new_job(engine, template_id)

    def units() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    finished = await asyncio.gather(
        run_issue_job(job.id, new_uow=units, now=now, batch=4),
        run_issue_job(job.id, new_uow=units, now=now, batch=4),
    )
    assert {j.status for j in finished} == {JobStatus.DONE}
    held, issued = await holdings(engine, template_id)
    assert all(held.get(m) == 1 for m in mine), held
    assert set(held.values()) == {1}
    done = await job_row(engine, job.id)
    assert done.issued == issued == len(held)
    assert done.skipped == 0


class _Crash(Exception):
    pass


class _StopsBeforeCommit(SqlUnitOfWork):
    """Saves the job's progress and dies before commit, its coupons already written in the
    transaction: a server stopped in the middle of a batch."""

    async def __aenter__(self) -> SqlUnitOfWork:
        entered = await super().__aenter__()

        async def save(job: IssueJob) -> None:
            raise _Crash

        entered.jobs.save = save  # type: ignore[method-assign]
        return entered


def crashing_on_batch(engine: AsyncEngine, batch: int) -> Callable[[], SqlUnitOfWork]:
    made = 0

    def unit() -> SqlUnitOfWork:
        nonlocal made
        made += 1
        return _StopsBeforeCommit(engine) if made == batch else SqlUnitOfWork(engine)

    return unit


async def test_a_job_stopped_mid_batch_resumes_without_issuing_twice(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    now = datetime(1995, 3, 1, tzinfo=UTC)
    mine = await dormant_members(engine, 11, now - timedelta(days=60))
    template_id = await template_for_two(gql, credentials)
    job = await new_job(engine, template_id)

    try:
        await run_issue_job(job.id, new_uow=crashing_on_batch(engine, 2), now=now, batch=3)
    except _Crash:
        pass
    else:
        raise AssertionError("the runner was meant to stop in its second batch")
    stopped = await job_row(engine, job.id)
    held, issued = await holdings(engine, template_id)
    # The first batch stands; the second's coupons went with its transaction.
    assert stopped.status is JobStatus.RUNNING
    assert stopped.issued == issued == len(held) == sum(held.values())
    assert stopped.issued + stopped.skipped == 3

    # A server starting again finishes what was left, the first batch untouched.
    assert await resume_issue_jobs(new_uow=lambda: SqlUnitOfWork(engine), now=now) >= 1
    done = await job_row(engine, job.id)
    held, issued = await holdings(engine, template_id)
    assert done.status is JobStatus.DONE
    assert all(held.get(m) == 1 for m in mine), held
    assert set(held.values()) == {1}
    assert done.issued == issued == len(held)
    # A resumed job run once more changes nothing.
    await run_issue_job(job.id, new_uow=lambda: SqlUnitOfWork(engine), now=now)
    assert await holdings(engine, template_id) == (held, issued)


async def test_a_job_stops_when_the_template_runs_out(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    now = datetime(1992, 3, 1, tzinfo=UTC)
    await dormant_members(engine, 6, now - timedelta(days=60))
    body = await gql.execute(
        CREATE,
        {
            "i": {
                "title": "限量唤醒券",
                "kind": "NO_THRESHOLD",
                "amountOffFen": 500,
                "validDays": 7,
                "totalQuantity": 4,
            }
        },
        credentials.operator,
    )
    template_id = decode_id(
        body["data"]["createCouponTemplate"]["template"]["id"], "CouponTemplate", ["t"]
    )
    job = await new_job(engine, template_id)
    done = await run_issue_job(job.id, new_uow=lambda: SqlUnitOfWork(engine), now=now, batch=3)
    held, issued = await holdings(engine, template_id)
    assert done.status is JobStatus.SOLD_OUT
    assert done.issued == issued == len(held) == 4


async def test_a_job_reports_its_total_as_it_goes(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    template_id = await template_for_two(gql, credentials)
    job = await new_job(engine, template_id)
    node = encode_id("CouponIssueJob", job.id)
    queued = (await gql.execute(JOB, {"id": node}, credentials.operator))["data"]["node"]
    assert queued["status"] == "QUEUED" and queued["issued"] == 0
    async with engine.connect() as conn:
        cutoff = datetime.now(UTC) - timedelta(days=30)
        dormant = await conn.scalar(
            sa.select(sa.func.count()).select_from(members).where(members.c.created_at < cutoff)
        )
    # Members met since (spend, check-ins) are not dormant: the total is at most these.
    assert 0 < queued["total"] <= int(dormant or 0)

    await run_issue_job(job.id, new_uow=lambda: SqlUnitOfWork(engine), now=datetime.now(UTC))
    done = (await gql.execute(JOB, {"id": node}, credentials.operator))["data"]["node"]
    assert done["status"] == "DONE"
    assert done["total"] == done["issued"] + done["skipped"] == queued["total"]


class _HeardSink:
    """The news each commit of a unit sends: what a process's broker would carry."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, ...]] = []

    async def publish_in_transaction(self, conn: object, events: Sequence[Event]) -> object:
        return None

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        self.heard.extend(e.stamps for e in events if isinstance(e, ReadsChanged))

    def moved_here(self, change: ReadsChanged) -> None:
        pass


async def test_each_batch_a_job_commits_tells_its_followers(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    """couponIssueJobUpdates reads the job again when its stamp moves: every batch moves it."""
    now = datetime(1988, 3, 1, tzinfo=UTC)
    await dormant_members(engine, 7, now - timedelta(days=60))
    job = await new_job(engine, await template_for_two(gql, credentials))
    sink = _HeardSink()
    done = await run_issue_job(
        job.id, new_uow=lambda: SqlUnitOfWork(engine, sink), now=now, batch=3
    )
    assert done.status is JobStatus.DONE and done.issued >= 7
    # Full batches of 3, then a short one that ends it: each committed with the job's stamp.
    batches = (done.issued + done.skipped) // 3 + 1
    assert [issue_job_stamp(job.id) in stamps for stamps in sink.heard] == [True] * batches
