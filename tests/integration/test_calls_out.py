"""Calls out on a real database: written with their commit or not at all, made once by
one of several relays, retried through an outage, kept for operators when they fail."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.calls import SqlCallStore
from dinegraph.db.engine import create_engine
from dinegraph.db.tables import outbound_calls
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import OutboundCall, OutboundCallStatus
from dinegraph.outbound import CallRefused, CallRelay, RelayPolicy
from dinegraph.settings import Settings
from tests.databases import fresh_database

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = NOON

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url)
    yield engine
    await engine.dispose()


def relay_on(engine: AsyncEngine, clock: Clock, **policy: float) -> CallRelay:
    relay = CallRelay(RelayPolicy(**policy))  # type: ignore[arg-type]
    relay.bind(SqlCallStore(engine), clock)
    return relay


async def rows(engine: AsyncEngine) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as conn:
        return list(
            (await conn.execute(sa.select(outbound_calls).order_by(outbound_calls.c.id))).all()
        )


def sms(key: str) -> OutboundCall:
    return OutboundCall("sms.login_code", key, {"phone": "13800138000", "code": "123456"})


async def test_a_rolled_back_unit_leaves_no_call_and_a_committed_one_makes_it(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    relay = relay_on(engine, clock)
    made: list[OutboundCall] = []

    async def handler(call: OutboundCall) -> None:
        made.append(call)

    relay.register("sms.login_code", handler)
    with pytest.raises(RuntimeError):
        async with SqlUnitOfWork(engine, calls=relay) as uow:
            uow.call(sms("rolled-back"))
            raise RuntimeError("the service failed before commit")
    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(sms("left-uncommitted"))  # leaving without commit rolls back too
    assert await rows(engine) == []
    assert made == []

    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(sms("k1"))
        uow.call(sms("k1"))  # the same call twice is one call
        await uow.commit()
    # Made right after the unit let go of its connection, in the caller's task.
    assert made == [sms("k1")]
    (row,) = await rows(engine)
    assert (row.kind, row.key, row.status, row.attempts) == ("sms.login_code", "k1", "DONE", 1)
    assert row.payload is None  # the phone and code do not linger
    assert row.done_at == NOON and row.created_at == NOON

    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(sms("k1"))  # recorded again by a later unit: still the one call
        await uow.commit()
    assert len(await rows(engine)) == 1
    assert made == [sms("k1")]


async def test_provider_down_then_up_makes_the_call_exactly_once(engine: AsyncEngine) -> None:
    clock = Clock()
    relay = relay_on(engine, clock, backoff_seconds=10, max_attempts=5)
    provider = {"up": False}
    accepted: list[str] = []
    attempts = 0

    async def handler(call: OutboundCall) -> None:
        nonlocal attempts
        attempts += 1
        if not provider["up"]:
            raise ConnectionRefusedError("connect to 10.0.0.1:443 for 13800138000 refused")
        accepted.append(call.key)

    relay.register("sms.login_code", handler)
    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(sms("down-then-up"))
        await uow.commit()
    (row,) = await rows(engine)
    assert (row.status, row.attempts) == ("PENDING", 1)
    assert row.last_error == "ConnectionRefusedError"  # no phone number in what HQ sees
    assert row.payload == {"phone": "13800138000", "code": "123456"}
    # Backoff with jitter: between half and all of 10 s after the first attempt.
    assert NOON + timedelta(seconds=5) <= row.next_attempt_at <= NOON + timedelta(seconds=10)

    assert await relay.sweep() == 0  # not due yet
    clock.at = row.next_attempt_at
    assert await relay.sweep() == 1  # due, still down: the second wait is 10-20 s
    (row,) = await rows(engine)
    assert (row.status, row.attempts) == ("PENDING", 2)
    assert (
        clock.at + timedelta(seconds=10) <= row.next_attempt_at <= clock.at + timedelta(seconds=20)
    )

    provider["up"] = True
    clock.at = row.next_attempt_at
    assert await relay.sweep() == 1
    assert await relay.sweep() == 0
    clock.at += timedelta(days=1)
    assert await relay.sweep() == 0  # DONE stays done
    assert accepted == ["down-then-up"]
    assert attempts == 3
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.payload) == ("DONE", 3, None)


async def test_out_of_attempts_or_refused_the_call_fails_for_an_operator_to_retry(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    relay = relay_on(engine, clock, backoff_seconds=1, max_attempts=2)
    refused: list[tuple[str, str]] = []

    async def flaky(call: OutboundCall) -> None:
        raise TimeoutError

    async def refusing(call: OutboundCall) -> None:
        raise CallRefused("ACCOUNT_FROZEN")

    async def on_refused(call: OutboundCall, reason: str) -> None:
        refused.append((call.key, reason))

    relay.register("delivery.dispatch", flaky)
    relay.register("wechatpay.refund", refusing, on_refused=on_refused)
    async with SqlUnitOfWork(engine, calls=relay) as uow:
        uow.call(OutboundCall("delivery.dispatch", "d-1", {"deliveryId": 1}))
        uow.call(OutboundCall("wechatpay.refund", "r-1", {"amountFen": 100}))
        await uow.commit()
    dispatch, refund = await rows(engine)
    assert (refund.status, refund.attempts, refund.last_error) == ("FAILED", 1, "ACCOUNT_FROZEN")
    assert refund.payload == {"amountFen": 100}  # kept for the operator
    assert refused == [("r-1", "ACCOUNT_FROZEN")]
    assert (dispatch.status, dispatch.last_error) == ("PENDING", "timeout")

    clock.at += timedelta(minutes=1)
    assert await relay.sweep() == 1
    dispatch, _ = await rows(engine)
    assert (dispatch.status, dispatch.attempts) == ("FAILED", 2)
    assert dispatch.payload == {"deliveryId": 1}
    clock.at += timedelta(days=1)
    assert await relay.sweep() == 0  # FAILED waits for an operator

    failed = await relay.page(
        statuses=[OutboundCallStatus.FAILED], kind=None, before_id=None, limit=10
    )
    assert [c.key for c in failed] == ["r-1", "d-1"]  # newest first
    assert [
        c.key
        for c in await relay.page(statuses=None, kind="wechatpay.refund", before_id=None, limit=10)
    ] == ["r-1"]

    made: list[str] = []

    async def now_fine(call: OutboundCall) -> None:
        made.append(call.key)

    relay.register("delivery.dispatch", now_fine)
    again = await relay.retry(dispatch.id)
    assert again is not None
    assert (again.status, again.attempts, again.next_attempt_at) == (
        OutboundCallStatus.PENDING,
        0,
        clock.at,
    )
    assert await relay.retry(dispatch.id) is None  # no longer FAILED
    assert await relay.retry(999_999) is None
    assert await relay.sweep() == 1
    assert made == ["d-1"]
    dispatch, _ = await rows(engine)
    assert (dispatch.status, dispatch.attempts, dispatch.payload) == ("DONE", 1, None)


async def test_a_lease_keeps_a_call_to_one_relay_until_it_runs_out(engine: AsyncEngine) -> None:
    store = SqlCallStore(engine)
    async with SqlUnitOfWork(engine) as uow:  # no relay here: the sweep takes it
        uow.call(sms("leased"))
        await uow.commit()
    (row,) = await rows(engine)
    assert row.next_attempt_at == row.created_at  # no relay of its own to wait for
    now = row.created_at
    lease = now + timedelta(seconds=30)
    (first,) = await store.take(now=now, lease_until=lease, limit=10)
    assert first.attempt == 1 and first.call == sms("leased")
    assert await store.take(now=now, lease_until=lease, limit=10) == []
    assert await store.take(now=lease - timedelta(seconds=1), lease_until=lease, limit=10) == []
    # The first relay hung past its lease: another takes the call over...
    (second,) = await store.take(now=lease, lease_until=lease + timedelta(seconds=30), limit=10)
    assert second.attempt == 2
    # ...and the late first relay's word no longer counts.
    assert not await store.done(first, lease)
    assert not await store.again(first, "timeout", lease)
    assert await store.done(second, lease)
    (row,) = await rows(engine)
    assert (row.status, row.attempts) == ("DONE", 2)


async def test_two_takes_at_once_lease_a_batch_each_and_never_the_same_call(url: str) -> None:
    """However two relays' takes interleave, each leases a full batch of its own: one never
    waits on the other's rows to find them leased, nor picks more than its limit."""
    engines = [create_engine(Settings(), url), create_engine(Settings(), url)]
    try:
        async with SqlUnitOfWork(engines[0]) as uow:
            for n in range(12):
                uow.call(sms(f"take-{n}"))
            await uow.commit()
        now = datetime.now(UTC) + timedelta(seconds=1)
        stores = [SqlCallStore(engine) for engine in engines for _ in range(2)]
        takes = await asyncio.gather(
            *(s.take(now=now, lease_until=now + timedelta(seconds=30), limit=3) for s in stores)
        )
        assert [len(taken) for taken in takes] == [3, 3, 3, 3]
        ids = [call.id for taken in takes for call in taken]
        assert len(set(ids)) == 12
    finally:
        for engine in engines:
            await engine.dispose()


async def test_two_relays_on_one_database_make_each_call_once(url: str) -> None:
    """Two app instances sweep the same due calls at the same time."""
    engines = [create_engine(Settings(), url), create_engine(Settings(), url)]
    try:
        clock = Clock()
        made: Counter[str] = Counter()
        # Each relay's first call waits (bounded) until the other relay has taken one
        # too, so both take part however unevenly their connections warm up; a relay
        # that can take nothing while the other holds its leases fails the wait.
        took = [asyncio.Event(), asyncio.Event()]
        relays = []
        for me, engine in enumerate(engines):
            relay = relay_on(engine, clock, batch=5)

            async def handler(call: OutboundCall, me: int = me) -> None:
                took[me].set()
                await asyncio.wait_for(took[1 - me].wait(), timeout=15)
                made[call.key] += 1

            relay.register("sms.login_code", handler)
            relays.append(relay)
        async with SqlUnitOfWork(engines[0]) as uow:
            for n in range(40):
                uow.call(sms(f"race-{n}"))
            await uow.commit()
        clock.at = datetime.now(UTC) + timedelta(seconds=1)
        counts = await asyncio.gather(*(r.sweep() for r in relays for _ in range(3)))
        assert sum(counts) == 40
        assert sum(counts[:3]) > 0 and sum(counts[3:]) > 0  # both relays took some
        assert made == Counter({f"race-{n}": 1 for n in range(40)})
        assert all(r.status == "DONE" and r.attempts == 1 for r in await rows(engines[0]))
    finally:
        for engine in engines:
            await engine.dispose()
