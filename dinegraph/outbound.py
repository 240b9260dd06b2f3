"""The relay of calls out: makes the calls units of work recorded (``domain.calls``) until
each provider has taken them, at least once; the provider's idempotency key makes that once.

- Right after a unit that wrote calls commits, this process makes them (``committed``);
  the calls of a process that died in between wait ``first_attempt_after``, then a sweep
  of due calls takes them up (``sweep``, on the server's schedule).
- A relay takes a call by leasing its row: two processes never make the same call at the
  same time. An attempt is bounded by ``timeout``, well inside the lease.
- A handler that returns means the provider took the call (or had it already): DONE.
  ``CallRefused`` means the provider refused for good: FAILED at once. Anything else
  (an exception, a timeout) is tried again after an exponential backoff with jitter, and
  FAILED after ``max_attempts``. Operators see FAILED calls and may put them back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dinegraph.domain.calls import (
    CallRefused,
    OutboundCall,
    OutboundCallStatus,
    RecordedCall,
    RetryLater,
    TakenCall,
)
from dinegraph.domain.errors import DomainError

log = logging.getLogger("dinegraph.calls")

__all__ = [
    "CallHandler",
    "CallRefused",
    "CallRelay",
    "CallStore",
    "RefusedHandler",
    "RelayPolicy",
    "RetryLater",
    "provider_refusals",
]

CallHandler = Callable[[OutboundCall], Awaitable[None]]
RefusedHandler = Callable[[OutboundCall, str], Awaitable[None]]


# What an adapter's DomainError means for a call: these are worth another try; any other
# code is the provider's refusal for good (INVALID_PHONE, NOT_AVAILABLE, ...).
TRANSIENT_CODES = frozenset({"PROVIDER_UNAVAILABLE", "RATE_LIMITED", "TIMEOUT"})


@asynccontextmanager
async def provider_refusals() -> AsyncIterator[None]:
    """Around a handler's provider call: a DomainError the adapter raised becomes
    ``RetryLater`` or ``CallRefused`` under its code (codes carry no personal data)."""
    try:
        yield
    except DomainError as error:
        code = error.code.value
        if code in TRANSIENT_CODES:
            raise RetryLater(code) from error
        raise CallRefused(code) from error


class CallStore(Protocol):
    """Where calls are kept (``dinegraph.db.calls.SqlCallStore``)."""

    async def take(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        ids: Sequence[int] | None = None,
    ) -> Sequence[TakenCall]: ...

    async def done(self, taken: TakenCall, now: datetime) -> bool: ...

    async def again(self, taken: TakenCall, error: str, at: datetime) -> bool: ...

    async def failed(self, taken: TakenCall, error: str) -> bool: ...

    async def retry(self, call_id: int, now: datetime) -> RecordedCall | None: ...

    async def get(self, call_id: int) -> RecordedCall | None: ...

    async def page(
        self,
        *,
        statuses: Sequence[OutboundCallStatus] | None,
        kind: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[RecordedCall]: ...


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """How calls are retried (``DINEGRAPH_CALLS_*`` settings)."""

    backoff_seconds: float = 2.0  # the first wait; doubled each attempt
    backoff_max_seconds: float = 600.0
    max_attempts: int = 10
    timeout_seconds: float = 20.0  # one attempt
    batch: int = 20  # calls a sweep takes at once

    @property
    def lease(self) -> timedelta:
        """How long a taken call is this relay's: its attempt, and time to write the result."""
        return timedelta(seconds=2 * self.timeout_seconds + 10)

    def backoff(self, attempt: int, draw: Callable[[], float] = random.random) -> timedelta:
        """The wait after failed attempt ``attempt`` (1, 2, ...): base × 2^(attempt-1),
        capped, of which a random half (so failed calls do not come back in step)."""
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** min(attempt - 1, 60))
        return timedelta(seconds=ceiling / 2 + ceiling / 2 * draw())


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Route:
    handler: CallHandler
    on_refused: RefusedHandler | None


class CallRelay:
    """The registry of handlers by kind (``services.calls``), and the relay that runs them.

    The wiring registers the handlers and binds a store (``bind``); unbound, the relay makes
    no calls (recorded calls stay PENDING for a relay that is bound).
    """

    def __init__(
        self, policy: RelayPolicy | None = None, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.policy = policy or RelayPolicy()
        self._clock = clock
        self._routes: dict[str, _Route] = {}
        self._store: CallStore | None = None

    def register(
        self, kind: str, handler: CallHandler, *, on_refused: RefusedHandler | None = None
    ) -> None:
        """``handler`` makes calls of ``kind`` from now on; ``on_refused`` (optional) records
        in our state what a call refused for good means."""
        self._routes[kind] = _Route(handler, on_refused)

    def handles(self, kind: str) -> bool:
        return kind in self._routes

    def bind(self, store: CallStore, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        if clock is not None:
            self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    @property
    def first_attempt_after(self) -> timedelta:
        return self.policy.lease

    async def committed(self, ids: Sequence[int]) -> None:
        """Make the calls a unit just committed (in the caller's task: it waits for them,
        at most ``timeout_seconds`` each). Never raises: a failure is retried later."""
        if self._store is None:
            return
        try:
            taken = await self._take(ids=ids)
        except Exception:
            log.exception("taking calls %s failed; a sweep takes them up", list(ids))
            return
        await self._make_all(taken)

    async def sweep(self) -> int:
        """Make every call due, a batch at a time; how many were made or retried."""
        if self._store is None:
            return 0
        count = 0
        while True:
            taken = await self._take(ids=None)
            await self._make_all(taken)
            count += len(taken)
            if len(taken) < self.policy.batch:
                return count

    async def retry(self, call_id: int) -> RecordedCall | None:
        """An operator puts a FAILED call back; None if it is not FAILED (or unknown)."""
        store = self._bound()
        return await store.retry(call_id, self.now())

    async def get(self, call_id: int) -> RecordedCall | None:
        return await self._bound().get(call_id)

    async def page(
        self,
        *,
        statuses: Sequence[OutboundCallStatus] | None,
        kind: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[RecordedCall]:
        return await self._bound().page(
            statuses=statuses, kind=kind, before_id=before_id, limit=limit
        )

    def _bound(self) -> CallStore:
        if self._store is None:
            raise RuntimeError("the call relay has no store: bind() it in the wiring")
        return self._store

    async def _take(self, *, ids: Sequence[int] | None) -> Sequence[TakenCall]:
        store = self._bound()
        now = self.now()
        return await store.take(
            now=now, lease_until=now + self.policy.lease, limit=self.policy.batch, ids=ids
        )

    async def _make_all(self, taken: Sequence[TakenCall]) -> None:
        if len(taken) == 1:
            await self._make(taken[0])
        elif taken:
            await asyncio.gather(*(self._make(t) for t in taken))

    async def _make(self, taken: TakenCall) -> None:
        store = self._bound()
        call = taken.call
        route = self._routes.get(call.kind)
        try:
            if route is None:
                raise LookupError(f"no handler for calls of kind {call.kind}")
            await asyncio.wait_for(route.handler(call), self.policy.timeout_seconds)
        except CallRefused as refused:
            log.warning("call %s (%s %s) refused: %s", taken.id, call.kind, call.key, refused)
            try:
                if await store.failed(taken, refused.reason) and route and route.on_refused:
                    await route.on_refused(call, refused.reason)
            except Exception:
                log.exception("recording the refusal of call %s failed", taken.id)
            return
        except Exception as exc:
            await self._failed_attempt(taken, _describe(exc))
            return
        try:
            await store.done(taken, self.now())
        except Exception:
            # The provider has it; the lease runs out and the call is made again, which
            # its idempotency key makes harmless.
            log.exception("recording call %s as done failed", taken.id)

    async def _failed_attempt(self, taken: TakenCall, error: str) -> None:
        store = self._bound()
        call = taken.call
        try:
            if taken.attempt >= self.policy.max_attempts:
                log.error(
                    "call %s (%s %s) failed %d times, last: %s; an operator must look",
                    taken.id,
                    call.kind,
                    call.key,
                    taken.attempt,
                    error,
                )
                await store.failed(taken, error)
            else:
                wait = self.policy.backoff(taken.attempt)
                log.warning(
                    "call %s (%s %s) attempt %d failed: %s; again in %.1fs",
                    taken.id,
                    call.kind,
                    call.key,
                    taken.attempt,
                    error,
                    wait.total_seconds(),
                )
                await store.again(taken, error, self.now() + wait)
        except Exception:
            log.exception("recording the failure of call %s failed", taken.id)


def _describe(exc: Exception) -> str:
    """A failure as operators see it: its kind only (messages may carry personal data)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, RetryLater):
        return exc.reason
    if isinstance(exc, LookupError) and str(exc).startswith("no handler"):
        return str(exc)
    return type(exc).__name__
