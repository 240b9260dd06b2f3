"""The relay of calls out, on an in-memory store: backoff, refusals against retries,
timeouts within the lease, handlers by kind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from dinegraph.domain.calls import (
    ERROR_MAX,
    OutboundCall,
    OutboundCallStatus,
    RecordedCall,
    TakenCall,
    short_error,
)
from dinegraph.domain.refunds import REFUND_CALL, RefundToSend
from dinegraph.integrations.development import DevelopmentPayments
from dinegraph.outbound import CallRefused, CallRelay, CallStore, RelayPolicy, RetryLater

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    call: OutboundCall
    status: OutboundCallStatus = OutboundCallStatus.PENDING
    attempts: int = 0
    next_at: datetime = NOON
    lease_until: datetime | None = None
    error: str | None = None


@dataclass
class MemoryCalls:
    """What ``SqlCallStore`` does, in memory."""

    rows: dict[int, Row] = field(default_factory=dict)
    leases: list[datetime] = field(default_factory=list)

    def add(self, call: OutboundCall) -> int:
        self.rows[len(self.rows) + 1] = Row(call)
        return len(self.rows)

    async def take(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        ids: Sequence[int] | None = None,
    ) -> list[TakenCall]:
        self.leases.append(lease_until)
        taken: list[TakenCall] = []
        for id, row in self.rows.items():
            free = row.lease_until is None or row.lease_until <= now
            due = row.next_at <= now if ids is None else id in ids
            if row.status is OutboundCallStatus.PENDING and free and due and len(taken) < limit:
                row.attempts += 1
                row.lease_until = lease_until
                taken.append(TakenCall(id, row.attempts, row.call))
        return taken

    def _mine(self, taken: TakenCall) -> Row | None:
        row = self.rows[taken.id]
        ok = row.attempts == taken.attempt and row.status is OutboundCallStatus.PENDING
        return row if ok else None

    async def done(self, taken: TakenCall, now: datetime) -> bool:
        if row := self._mine(taken):
            row.status, row.lease_until = OutboundCallStatus.DONE, None
        return row is not None

    async def again(self, taken: TakenCall, error: str, at: datetime) -> bool:
        if row := self._mine(taken):
            row.next_at, row.error, row.lease_until = at, error, None
        return row is not None

    async def failed(self, taken: TakenCall, error: str) -> bool:
        if row := self._mine(taken):
            row.status, row.error, row.lease_until = OutboundCallStatus.FAILED, error, None
        return row is not None

    async def retry(self, call_id: int, now: datetime) -> RecordedCall | None:
        raise NotImplementedError

    async def get(self, call_id: int) -> RecordedCall | None:
        raise NotImplementedError

    async def page(
        self,
        *,
        statuses: Sequence[OutboundCallStatus] | None,
        kind: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[RecordedCall]:
        raise NotImplementedError


def _store(store: MemoryCalls) -> CallStore:
    return store  # mypy checks the in-memory store against the port


class Clock:
    def __init__(self) -> None:
        self.at = NOON

    def __call__(self) -> datetime:
        return self.at


def relay_with(**policy: float) -> tuple[CallRelay, MemoryCalls, Clock]:
    store, clock = MemoryCalls(), Clock()
    relay = CallRelay(RelayPolicy(**policy))  # type: ignore[arg-type]
    relay.bind(_store(store), clock)
    return relay, store, clock


CALL = OutboundCall("sms.login_code", "k", {"phone": "13800138000", "code": "000000"})


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    policy = RelayPolicy(backoff_seconds=2, backoff_max_seconds=60)
    low = [policy.backoff(n, lambda: 0.0).total_seconds() for n in range(1, 8)]
    high = [policy.backoff(n, lambda: 1.0).total_seconds() for n in range(1, 8)]
    assert high == [2, 4, 8, 16, 32, 60, 60]
    assert low == [1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(10_000, lambda: 1.0) == timedelta(seconds=60)  # no overflow
    draws = {policy.backoff(3).total_seconds() for _ in range(50)}
    assert len(draws) > 1 and all(4 <= d <= 8 for d in draws)


def test_a_call_needs_a_kind_and_a_key_of_bounded_length() -> None:
    with pytest.raises(ValueError):
        OutboundCall("", "k", {})
    with pytest.raises(ValueError):
        OutboundCall("sms.login_code", "k" * 129, {})
    assert short_error("a\nb   c") == "a b c"
    assert len(short_error("x" * 500)) == ERROR_MAX


async def test_a_retry_waits_its_backoff_and_a_refusal_fails_at_once() -> None:
    relay, store, clock = relay_with(backoff_seconds=4, max_attempts=3)
    refusals: list[str] = []
    outcomes: list[Exception | None] = [ConnectionError("13800138000"), RetryLater("HTTP 503")]

    async def handler(call: OutboundCall) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def on_refused(call: OutboundCall, reason: str) -> None:
        refusals.append(reason)

    relay.register("sms.login_code", handler, on_refused=on_refused)
    await relay.committed([store.add(CALL)])
    row = store.rows[1]
    assert (row.status, row.attempts, row.error) == (
        OutboundCallStatus.PENDING,
        1,
        "ConnectionError",  # the message (here a phone number) is not kept
    )
    assert NOON + timedelta(seconds=2) <= row.next_at <= NOON + timedelta(seconds=4)
    assert await relay.sweep() == 0
    clock.at = row.next_at
    assert await relay.sweep() == 1
    assert row.error == "HTTP 503"
    assert clock.at + timedelta(seconds=4) <= row.next_at <= clock.at + timedelta(seconds=8)

    outcomes.append(CallRefused("INVALID_PHONE"))
    clock.at = row.next_at
    assert await relay.sweep() == 1
    assert (row.status, row.error, row.attempts) == (OutboundCallStatus.FAILED, "INVALID_PHONE", 3)
    assert refusals == ["INVALID_PHONE"]


async def test_after_max_attempts_the_call_fails_and_no_handler_is_a_retry() -> None:
    relay, store, clock = relay_with(backoff_seconds=1, max_attempts=2)
    await relay.committed([store.add(OutboundCall("nobody.handles", "x", {}))])
    row = store.rows[1]
    assert (row.status, row.error) == (
        OutboundCallStatus.PENDING,
        "no handler for calls of kind nobody.handles",
    )
    clock.at += timedelta(seconds=5)
    await relay.sweep()
    assert (row.status, row.attempts) == (OutboundCallStatus.FAILED, 2)


async def test_an_attempt_times_out_well_inside_the_lease() -> None:
    relay, store, _ = relay_with(timeout_seconds=0.05)
    assert relay.policy.lease > timedelta(seconds=2 * 0.05)
    hung = asyncio.Event()

    async def hangs(call: OutboundCall) -> None:
        hung.set()
        await asyncio.Event().wait()

    relay.register("sms.login_code", hangs)
    await relay.committed([store.add(CALL)])
    assert hung.is_set()
    assert store.leases == [NOON + relay.policy.lease]
    row = store.rows[1]
    assert (row.status, row.error, row.lease_until) == (OutboundCallStatus.PENDING, "timeout", None)


async def test_a_call_taken_by_another_relay_is_not_made_again() -> None:
    relay, store, clock = relay_with()
    other = CallRelay()
    other.bind(_store(store), clock)
    made: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(call: OutboundCall) -> None:
        made.append(call.key)
        started.set()
        await release.wait()

    relay.register("sms.login_code", slow)
    other.register("sms.login_code", slow)
    id = store.add(CALL)
    first = asyncio.create_task(relay.committed([id]))
    await started.wait()
    assert made == ["k"]
    assert await other.sweep() == 0  # leased: the other relay leaves it alone
    await other.committed([id])
    release.set()
    await first
    assert made == ["k"]
    assert store.rows[id].status is OutboundCallStatus.DONE


async def test_an_unbound_relay_makes_nothing() -> None:
    relay = CallRelay()
    await relay.committed([1])
    assert await relay.sweep() == 0
    with pytest.raises(RuntimeError):
        await relay.retry(1)


class _Reports:
    """What a payment gateway reported of a refund."""

    def __init__(self) -> None:
        self.said: list[tuple[str, object]] = []

    async def submitted(self, provider_refund_id: str) -> None:
        self.said.append(("submitted", provider_refund_id))

    async def settled(self, succeeded: bool, provider_refund_id: str | None) -> None:
        self.said.append(("settled", succeeded))


async def test_the_development_payments_refund_is_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay, store, _ = relay_with()
    reports = _Reports()

    async def refund(call: OutboundCall) -> None:
        await DevelopmentPayments().refund(RefundToSend.of_call(call), reports)

    relay.register(REFUND_CALL, refund)
    caplog.set_level("WARNING", "dinegraph.payments")
    payload = {
        "refundId": 3,
        "orderId": 7,
        "outTradeNo": "20261202000007",
        "refundFen": 990,
        "totalFen": 1990,
        "reason": "缺货",
    }
    await relay.committed([store.add(OutboundCall(REFUND_CALL, "R7-ab", payload))])
    assert store.rows[1].status is OutboundCallStatus.DONE
    assert "refund R7-ab of order 7: 990 fen" in caplog.text
    # It accepts and settles at once.
    assert reports.said == [("submitted", "dev-R7-ab"), ("settled", True)]
