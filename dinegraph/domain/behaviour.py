"""Behaviour events the mini-program reports (views, searches, favourites, add-to-cart), the
rules they are taken under, and the services that record, show, merge and clear them.

An event belongs to a member, or to an anonymous visitor's device id until that visitor
signs in with it (or reports with it signed in): then the device's events become the member's.
Each carries the client's own event id, so a batch sent twice is recorded once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.text import is_storable

MAX_BATCH = 50  # events in one trackEvents call
MAX_PER_MINUTE = 120  # events one member or device may report in a minute
MAX_KEPT = 1000  # events kept per member or device: past it, the oldest go
QUERY_MAX = 50
EVENT_ID_MAX = 64
DEVICE_ID_MAX = 64
RETENTION_DAYS = 180  # older events are pruned by the model build
MAX_CLOCK_SKEW = timedelta(days=1)  # how far a client's occurredAt may be from ours

_TOKEN = re.compile(r"^[A-Za-z0-9_\-:.]{8,64}$")


class EventKind(StrEnum):
    VIEW_PRODUCT = "VIEW_PRODUCT"
    SEARCH = "SEARCH"
    FAVOURITE = "FAVOURITE"
    ADD_TO_CART = "ADD_TO_CART"


@dataclass(frozen=True, slots=True)
class Actor:
    """Whose events: a member, else an anonymous device."""

    member_id: int | None
    device_id: str | None

    @property
    def key(self) -> str:
        return f"m:{self.member_id}" if self.member_id is not None else f"d:{self.device_id}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    client_event_id: str
    kind: EventKind
    product_id: int | None = None
    query: str | None = None
    store_id: int | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BehaviourEvent:
    id: int
    client_event_id: str
    kind: EventKind
    product_id: int | None
    query: str | None
    store_id: int | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class TrackEvents:
    events: tuple[NewEvent, ...]
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    accepted: int
    duplicates: int  # client event ids the actor had sent before
    merged: int


@dataclass(frozen=True, slots=True)
class Tracked:
    accepted: int
    duplicates: int
    merged: int  # a signed-in member's device events taken over by this call


class BehaviourLog(Protocol):
    """Where behaviour events are kept (db/behaviour.py)."""

    async def recent_count(self, actor: Actor, since: datetime) -> int: ...

    async def record(
        self,
        actor: Actor,
        events: Sequence[NewEvent],
        now: datetime,
        *,
        since: datetime,
        at_most: int,
        keep: int,
        merge_device: str | None = None,
    ) -> Recorded | None:
        """Record the batch (and take the device's events over, with ``merge_device``) unless
        the actor's events since ``since`` and these would pass ``at_most``: then None, and
        nothing changed. The count and the write are one decision. The actor keeps its
        ``keep`` latest events."""

    async def recent(self, actor: Actor, first: int) -> list[BehaviourEvent]: ...

    async def clear(self, actor: Actor) -> int: ...

    async def known_products(self, ids: Sequence[int]) -> set[int]: ...

    async def known_stores(self, ids: Sequence[int]) -> set[int]: ...


def check_device_id(value: str | None, field: Sequence[str]) -> str | None:
    if value is None:
        return None
    if not _TOKEN.match(value):
        raise DomainError(ErrorCode.INVALID_INPUT, field=list(field))
    return value


def check_events(events: Sequence[NewEvent], now: datetime) -> tuple[NewEvent, ...]:
    """A batch as it may be recorded: at most MAX_BATCH events, each well formed."""
    if not events:
        raise DomainError(ErrorCode.REQUIRED, field=["events"])
    if len(events) > MAX_BATCH:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["events"], min=1, max=MAX_BATCH)
    cleaned: list[NewEvent] = []
    for n, event in enumerate(events):
        at = ["events", str(n)]
        if not _TOKEN.match(event.client_event_id):
            raise DomainError(ErrorCode.INVALID_INPUT, field=[*at, "clientEventId"])
        query = event.query.strip() if event.query is not None else None
        if event.kind is EventKind.SEARCH:
            if not query:
                raise DomainError(ErrorCode.REQUIRED, field=[*at, "query"])
            if len(query) > QUERY_MAX:
                raise DomainError(ErrorCode.TOO_LONG, field=[*at, "query"], max=QUERY_MAX)
            if not is_storable(query):
                raise DomainError(ErrorCode.INVALID_CHARACTERS, field=[*at, "query"])
        elif event.product_id is None:
            raise DomainError(ErrorCode.REQUIRED, field=[*at, "productId"])
        occurred = event.occurred_at or now
        if abs(occurred - now) > MAX_CLOCK_SKEW:
            occurred = now  # a phone's clock far off: our time, not theirs
        cleaned.append(
            NewEvent(
                client_event_id=event.client_event_id,
                kind=event.kind,
                product_id=event.product_id if event.kind is not EventKind.SEARCH else None,
                query=query if event.kind is EventKind.SEARCH else None,
                store_id=event.store_id,
                occurred_at=occurred,
            )
        )
    return tuple(cleaned)


async def track_events(
    cmd: TrackEvents, *, log: BehaviourLog, member_id: int | None, now: datetime
) -> Tracked:
    """Record a batch for the member (or the device, signed out); a replayed client event id
    changes nothing. A member reporting with a device id first takes over that device's
    events. More than MAX_PER_MINUTE events a minute per member or device: RATE_LIMITED.
    Each keeps its MAX_KEPT latest events."""
    device = check_device_id(cmd.device_id, ["deviceId"])
    if member_id is None and device is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, field=["deviceId"])
    events = check_events(cmd.events, now)
    products = {e.product_id for e in events if e.product_id is not None}
    if products:
        known = await log.known_products(sorted(products))
        for n, event in enumerate(events):
            if event.product_id is not None and event.product_id not in known:
                raise DomainError(ErrorCode.NOT_FOUND, field=["events", str(n), "productId"])
    stores = {e.store_id for e in events if e.store_id is not None}
    if stores:
        known = await log.known_stores(sorted(stores))
        for n, event in enumerate(events):
            if event.store_id is not None and event.store_id not in known:
                raise DomainError(ErrorCode.NOT_FOUND, field=["events", str(n), "storeId"])
    actor = Actor(member_id, None if member_id is not None else device)
    since = now - timedelta(minutes=1)
    # Most refusals are answered from a read; the write decides again under its lock.
    if await log.recent_count(actor, since) + len(events) > MAX_PER_MINUTE:
        raise DomainError(ErrorCode.RATE_LIMITED, field=["events"])
    recorded = await log.record(
        actor,
        events,
        now,
        since=since,
        at_most=MAX_PER_MINUTE,
        keep=MAX_KEPT,
        merge_device=device if member_id is not None else None,
    )
    if recorded is None:  # batches sent at once took the minute's room
        raise DomainError(ErrorCode.RATE_LIMITED, field=["events"])
    return Tracked(
        accepted=recorded.accepted, duplicates=recorded.duplicates, merged=recorded.merged
    )
