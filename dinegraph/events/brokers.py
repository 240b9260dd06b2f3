"""The broker port and its adapters: memory (one process), PostgreSQL LISTEN/NOTIFY, Redis.

Chosen by ``DINEGRAPH_BROKER_URL``. Each publishes committed events and feeds this
process's ``Hub``, which fans out to local subscribers. The Redis broker keeps its events in
an ``Outbox`` (a port; ``dinegraph.db.outbox`` stores it in the application's database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from redis import asyncio as aioredis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.domain.events import Event
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.events.codec import READS_TOPIC, Sealer, decode, encode, routed, topics_of
from dinegraph.events.hub import Hub

log = logging.getLogger("dinegraph.events")


class Broker:
    """In-process broker: what one process commits, its own subscribers hear."""

    def __init__(self) -> None:
        self.hub = Hub(self._listen, self._unlisten)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[Event]
    ) -> object:
        """Called just before COMMIT, on the writing connection; returns a receipt."""
        return None

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        for topic, event in routed(events):
            self.hub.deliver(topic, event)

    def moved_here(self, change: ReadsChanged) -> None:
        """Stamps this process's own writing transaction moves, told at once: around its
        COMMIT, whenever the broker would bring them back (PostgreSQL's NOTIFY comes later)."""
        self.hub.deliver(READS_TOPIC, change)

    async def _listen(self, topic: str) -> None:
        return None

    async def _unlisten(self, topic: str) -> None:
        return None


def _pg_channel(topic: str) -> str:
    return "dinegraph." + topic


def _messages(events: Sequence[Event], sealer: Sealer | None) -> list[tuple[str, str]]:
    """Each event encoded (and its rider sealed) once, with each topic it goes to."""
    out: list[tuple[str, str]] = []
    for event in events:
        payload = encode(event, sealer).decode()
        out.extend((topic, payload) for topic in topics_of(event))
    return out


_NOTIFY_ALL = sa.text(
    "SELECT pg_notify(m.channel, m.payload) "
    "FROM unnest(CAST(:channels AS text[]), CAST(:payloads AS text[])) "
    "WITH ORDINALITY AS m(channel, payload, n) ORDER BY m.n"
)


class PostgresBroker(Broker):
    """NOTIFY inside the writing transaction, so only committed changes are ever heard."""

    def __init__(self, url: str, sealer: Sealer | None) -> None:
        super().__init__()
        self._sealer = sealer
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        # Once the connection is gone nothing more is heard: what followers built is void.
        self._conn.add_termination_listener(lambda _conn: self.hub.lost())

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[Event]
    ) -> object:
        messages = _messages(events, self._sealer)
        if messages:  # one round trip, however many: NOTIFYs keep their order in a transaction
            await conn.execute(
                _NOTIFY_ALL,
                {
                    "channels": [_pg_channel(topic) for topic, _ in messages],
                    "payloads": [payload for _, payload in messages],
                },
            )
        return None

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        return None  # every process, this one included, hears it through LISTEN

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        topic = channel.removeprefix("dinegraph.")
        try:
            self.hub.deliver(topic, decode(payload, self._sealer))
        except Exception:
            log.exception("bad notification on %s", channel)

    async def _listen(self, topic: str) -> None:
        assert self._conn is not None, "PostgresBroker.start() was not awaited"
        await self._conn.add_listener(_pg_channel(topic), self._on_notify)

    async def _unlisten(self, topic: str) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.remove_listener(_pg_channel(topic), self._on_notify)


class Outbox(Protocol):
    """Where the Redis broker keeps (topic, payload) messages from the writing transaction
    until they have been published."""

    async def add(self, conn: AsyncConnection, messages: Sequence[tuple[str, str]]) -> list[int]:
        """Keep the messages, on the writing connection before its COMMIT; their ids."""
        ...

    async def remove(self, ids: Sequence[int]) -> None:
        """Forget messages that have been published."""
        ...

    async def relay(
        self,
        before: datetime,
        limit: int,
        publish: Callable[[Sequence[tuple[str, str]]], Awaitable[None]],
    ) -> int:
        """Publish and forget up to ``limit`` messages kept since before ``before``."""
        ...


def redis_channel_prefix(url: str) -> str:
    """The channels of a Redis URL's deployment: ``dinegraph.`` on database 0, and
    ``dinegraph.<n>.`` on database n. Pub/sub ignores the database number, so two deployments
    kept apart on one Redis by it (staging on /1, production on /0) would otherwise hear
    each other's events."""
    database = int(aioredis.connection.parse_url(url).get("db", 0) or 0)
    return f"dinegraph.{database}." if database else "dinegraph."


class RedisBroker(Broker):
    """Redis pub/sub through a transactional outbox.

    Events are written to the outbox in the writing transaction, published right after
    commit and deleted; a relay publishes what a dead process left behind, so every
    committed change is heard (at least once: subscribers drop versions they have seen).
    """

    RELAY_EVERY = 2.0
    RELAY_AFTER = timedelta(seconds=5)
    RELAY_BATCH = 500

    def __init__(self, url: str, outbox: Outbox, sealer: Sealer | None) -> None:
        super().__init__()
        self._outbox = outbox
        self._sealer = sealer
        self._redis = aioredis.from_url(url)
        self._prefix = redis_channel_prefix(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._redis.ping()
        self._tasks = [
            asyncio.create_task(self._read(), name="dinegraph-redis-reader"),
            asyncio.create_task(self._relay(), name="dinegraph-outbox-relay"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[Event]
    ) -> object:
        return await self._outbox.add(conn, _messages(events, self._sealer))

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        await self._publish(_messages(events, self._sealer))
        ids = receipt if isinstance(receipt, list) else []
        if ids:
            await self._outbox.remove(ids)

    async def _publish(self, messages: Sequence[tuple[str, bytes | str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, payload in messages:
                pipe.publish(self._prefix + topic, payload)
            await pipe.execute()

    async def _relay(self) -> None:
        while True:
            await asyncio.sleep(self.RELAY_EVERY)
            try:
                await self.relay_once()
            except Exception:
                log.warning("outbox relay failed; retrying", exc_info=True)

    async def relay_once(self) -> int:
        """Publish and delete outbox rows older than a moment; returns how many."""
        cutoff = datetime.now(UTC) - self.RELAY_AFTER
        return await self._outbox.relay(cutoff, self.RELAY_BATCH, self._publish)

    async def _read(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except aioredis.ConnectionError:
                log.warning("redis connection lost; retrying", exc_info=True)
                self.hub.lost()
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            try:
                event = decode(message["data"], self._sealer)
                self.hub.deliver(channel.removeprefix(self._prefix), event)
            except Exception:
                log.exception("bad message on %s", channel)

    async def _listen(self, topic: str) -> None:
        await self._pubsub.subscribe(self._prefix + topic)
        if self._pubsub.connection is not None:
            # Called on every reconnect (redis-py reconnects and subscribes again by itself):
            # what was published meanwhile was missed.
            self._pubsub.connection.register_connect_callback(self._reconnected)

    async def _reconnected(self, _connection: object) -> None:
        self.hub.lost()

    async def _unlisten(self, topic: str) -> None:
        await self._pubsub.unsubscribe(self._prefix + topic)


def create_broker(url: str, outbox: Outbox, sealer: Sealer) -> Broker:
    """The broker ``url`` names; ``outbox`` is used by the Redis broker only, ``sealer`` by
    the brokers between processes (the memory broker's events never leave the process)."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return Broker()
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return PostgresBroker(url, sealer)
    if scheme in ("redis", "rediss"):
        return RedisBroker(url, outbox, sealer)
    raise ValueError(
        f"DINEGRAPH_BROKER_URL scheme {scheme!r} is not supported: use memory://, "
        "postgres://user@host/db (the same database as DINEGRAPH_DATABASE_URL) or redis://host"
    )
