"""Execute once, send to many: subscribers whose answers cannot differ share one execution.

Two subscriptions share a feed when they send the same document text, operation name and
variables, in the same language, and their viewers are of one class for that field (see
``SHARED_FIELDS``): then every event is executed and JSON-encoded once per process, and each
subscriber receives the same payload text in its own ``{"id": …, "type": "next"}`` envelope.

A feed keeps the newest payload of each slot of its current state (each SKU of a store's
stock, each order still on a board), so a subscriber joining later is sent that state at
once, as a fresh snapshot would show it, then every change. Each subscriber has a
``Member`` holding only the newest payload per slot it has not sent yet: a slow socket skips
stale values, never grows a queue, and never holds the others up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from dinegraph.context import Context
from dinegraph.domain.identity import Viewer, can_see_unlisted, viewer_class

log = logging.getLogger("dinegraph.feeds")


def _catalog_class(viewer: Viewer) -> Hashable:
    # Stock is public; the nested SKU differs only in whether unlisted products show.
    return ("catalog", can_see_unlisted(viewer))


# The subscription fields whose feeds are shared, and what of the viewer their answer
# depends on. A field not named here runs once per subscriber.
SHARED_FIELDS: dict[str, Callable[[Viewer], Hashable]] = {
    "stockChanged": _catalog_class,
    "courierUpdates": viewer_class,
    "storeDeliveryFeed": viewer_class,
    "orderUpdates": viewer_class,
    "groupBuyUpdates": viewer_class,
    "campaignQuotaFeed": viewer_class,
    "storeOrderFeed": viewer_class,
    "stationTicketFeed": viewer_class,
}


@lru_cache(maxsize=2048)
def shared_field(query: str, operation_name: str | None) -> str | None:
    """The root field of a subscription document whose feed may be shared, if it has one:
    a single plain field (no directive, no fragment) named in ``SHARED_FIELDS``."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.SUBSCRIPTION:
        return None
    (operation,) = operations
    selections = operation.selection_set.selections
    if operation.directives or len(selections) != 1:
        return None
    (field,) = selections
    if not isinstance(field, FieldNode) or field.directives:
        return None
    return field.name.value if field.name.value in SHARED_FIELDS else None


def share_key(
    query: str | None,
    operation_name: str | None,
    variables: dict[str, object] | None,
    context: Context,
) -> Hashable | None:
    """What a subscription's answer depends on, or None if its feed is its own."""
    if not isinstance(query, str):
        return None
    name = shared_field(query, operation_name)
    if name is None:
        return None
    try:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return (query, operation_name, canonical, context.locale, SHARED_FIELDS[name](context.viewer))


@dataclass(frozen=True, slots=True)
class Finished:
    """How a shared feed ended: ``errors`` before it started (a document that does not
    validate, variables that do not coerce), or ``None`` when it completed."""

    errors: list[GraphQLError] | None = None


class Member:
    """One subscriber of a shared feed: the newest unsent payload of each slot."""

    __slots__ = ("_end", "_pending", "_ready", "feed")

    def __init__(self, feed: SharedFeed) -> None:
        self.feed = feed
        self._pending: dict[Hashable, str] = {}
        self._ready = asyncio.Event()
        self._end: Finished | None = None

    def offer(self, slot: Hashable, payload: str) -> None:
        self._pending[slot] = payload
        self._ready.set()

    def finish(self, end: Finished) -> None:
        self._end = end
        self._ready.set()

    async def take(self) -> tuple[list[str], Finished | None]:
        """Wait for news; then the payloads not sent yet, oldest slot first, and the end if
        the feed has ended (after those payloads)."""
        await self._ready.wait()
        self._ready.clear()
        payloads, self._pending = list(self._pending.values()), {}
        return payloads, self._end


Stream = Callable[[Context], Awaitable[AsyncGenerator[Any, None]]]


class SharedFeed:
    """One execution of a subscription for every subscriber of its key in this process."""

    def __init__(self, feeds: SharedFeeds, key: Hashable, context: Context) -> None:
        self._feeds = feeds
        self.key = key
        self._context = context
        self._members: set[Member] = set()
        self._state: dict[Hashable, str] = {}  # slot -> newest payload, for late joiners
        self._task: asyncio.Task[None] | None = None
        self.ended = False

    def start(self, stream: Stream) -> None:
        self._task = asyncio.create_task(self._run(stream), name="dinegraph-shared-feed")

    def add(self) -> Member:
        member = Member(self)
        for slot, payload in self._state.items():
            member.offer(slot, payload)
        self._members.add(member)
        return member

    def remove(self, member: Member) -> bool:
        """Forget a subscriber; True when it was the last one."""
        self._members.discard(member)
        return not self._members

    def stop(self) -> None:
        self.ended = True
        if self._task is not None:
            self._task.cancel()

    async def _run(self, stream: Stream) -> None:
        end = Finished()
        try:
            end = await self._execute(stream)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared feed failed")
        finally:
            self.ended = True
            self._feeds.forget(self.key, self)  # before the end is told: nobody joins late
            for member in self._members:
                member.finish(end)

    async def _execute(self, stream: Stream) -> Finished:
        async with aclosing(await stream(self._context)) as results:
            first = True
            async for result in results:
                if first and isinstance(result, PreExecutionError):
                    return Finished(list(result.errors or ()))
                if not isinstance(result, ExecutionResult):
                    return Finished([GraphQLError("Incremental delivery is not supported")])
                first = False
                self._publish(result)
        return Finished()

    def _publish(self, result: ExecutionResult) -> None:
        body: dict[str, object] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        if result.extensions:
            body["extensions"] = result.extensions
        payload = orjson.dumps(body).decode()  # once, for every subscriber
        slot = self._context.feed_slot
        self._context.feed_slot = None
        if slot is None:  # an answer of its own (a refusal): sent to those here now
            key: Hashable = object()
        else:
            key = slot.key
            if slot.retained:
                self._state.pop(key, None)
                self._state[key] = payload
            else:
                self._state.pop(key, None)
        for member in self._members:
            member.offer(key, payload)


class SharedFeeds:
    """The shared feeds of this process, by key."""

    def __init__(self) -> None:
        self._feeds: dict[Hashable, SharedFeed] = {}

    def __len__(self) -> int:
        return len(self._feeds)

    def join(self, key: Hashable, context: Callable[[], Context], stream: Stream) -> Member:
        """Subscribe to the feed of ``key``, starting it when nobody follows it yet, with a
        ``context()`` of its own (the first subscriber's viewer) for every event."""
        feed = self._feeds.get(key)
        if feed is None or feed.ended:
            feed = SharedFeed(self, key, context())
            self._feeds[key] = feed
            feed.start(stream)
        return feed.add()

    def leave(self, member: Member) -> None:
        feed = member.feed
        if feed.remove(member):
            self.forget(feed.key, feed)
            feed.stop()

    def forget(self, key: Hashable, feed: SharedFeed) -> None:
        if self._feeds.get(key) is feed:
            del self._feeds[key]
