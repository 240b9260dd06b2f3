"""Local fan-out: one broker subscription per topic per process, many WebSocket readers.

Each reader has a ``Mailbox`` holding only the latest event per key (per SKU), so a slow
client skips stale values instead of growing a queue, and never holds the others up.
Process-wide state that must hear every event (the read cache's stamps, the exhaustion
board, the remembered credentials) follows a topic with a callback instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from dinegraph.domain.delivery import DeliveryChanged
from dinegraph.domain.events import Event
from dinegraph.domain.group_buys import GroupBuyChanged
from dinegraph.domain.identity import CredentialsChanged
from dinegraph.domain.kitchen import TicketChanged
from dinegraph.domain.orders import OrderChanged
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.domain.supplies import SupplyChanged

log = logging.getLogger("dinegraph.events")


def event_key(event: Event) -> Hashable:
    """What a newer event replaces: the same SKU's stock, the same order's state."""
    if isinstance(event, OrderChanged):
        return ("OrderChanged", event.order_id)
    if isinstance(event, DeliveryChanged):
        return ("DeliveryChanged", event.delivery_id)
    if isinstance(event, GroupBuyChanged):
        return ("GroupBuyChanged", event.group_id)
    if isinstance(event, ReadsChanged):
        return ("ReadsChanged", event.stamps)
    if isinstance(event, SupplyChanged):
        return ("SupplyChanged", event.supply)
    if isinstance(event, CredentialsChanged):
        return ("CredentialsChanged", event.account, event.account_id)
    if isinstance(event, TicketChanged):
        return ("TicketChanged", event.ticket_id)
    return (type(event).__name__, event.store_id, event.sku_id)


@dataclass(eq=False)
class Mailbox:
    _latest: dict[Hashable, Event] = field(default_factory=dict)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, event: Event) -> None:
        key = event_key(event)
        current = self._latest.get(key)
        if current is None or current.version <= event.version:
            self._latest[key] = event
        self._ready.set()

    async def take(self) -> list[Event]:
        """Wait for news, then everything that is newest since the last take."""
        await self._ready.wait()
        self._ready.clear()
        events, self._latest = list(self._latest.values()), {}
        return events


class Hub:
    """Keeps the topics this process's readers follow subscribed on the broker."""

    def __init__(
        self,
        listen: Callable[[str], Awaitable[None]],
        unlisten: Callable[[str], Awaitable[None]],
    ) -> None:
        self._listen = listen
        self._unlisten = unlisten
        self._boxes: dict[str, set[Mailbox]] = {}
        self._followers: dict[str, list[Callable[[Event], None]]] = {}
        self._forgetters: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()

    def deliver(self, topic: str, event: Event) -> None:
        for follower in self._followers.get(topic, ()):
            follower(event)
        for box in self._boxes.get(topic, ()):
            box.put(event)

    async def follow(self, topic: str, follower: Callable[[Event], None]) -> None:
        """Call ``follower`` with every event of ``topic``, at once and for good."""
        async with self._lock:
            if not self._heard(topic):
                await self._listen(topic)
            self._followers.setdefault(topic, []).append(follower)

    def when_lost(self, forget: Callable[[], None]) -> None:
        """Call ``forget`` whenever the broker may have missed events (its connection was
        lost, or came back): what a follower built from them starts afresh."""
        self._forgetters.append(forget)

    def lost(self) -> None:
        for forget in self._forgetters:
            forget()

    def _heard(self, topic: str) -> bool:
        return bool(self._boxes.get(topic)) or topic in self._followers

    async def join(self, topics: list[str]) -> Mailbox:
        box = Mailbox()
        async with self._lock:
            for topic in topics:
                if not self._heard(topic):
                    await self._listen(topic)
                self._boxes.setdefault(topic, set()).add(box)
        return box

    async def leave(self, topics: list[str], box: Mailbox) -> None:
        async with self._lock:
            for topic in topics:
                readers = self._boxes.get(topic)
                if readers is None:
                    continue
                readers.discard(box)
                if not readers:
                    del self._boxes[topic]
                if not self._heard(topic):
                    try:
                        await self._unlisten(topic)
                    except Exception:  # the broker may be gone at shutdown
                        log.warning("could not unsubscribe from %s", topic, exc_info=True)

    def readers(self, topic: str) -> int:
        return len(self._boxes.get(topic, ()))
