"""The broker port and its adapters: memory (one process), PostgreSQL LISTEN/NOTIFY, Redis.

Chosen by ``DINEGRAPH_BROKER_URL``. Each publishes committed events and feeds this
process's ``Hub``, which fans out to local subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from redis import asyncio as aioredis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.domain.stock import StockEvent
from dinegraph.events.codec import decode, encode, topic_of
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
        self, conn: AsyncConnection, events: Sequence[StockEvent]
    ) -> None:
        """Called just before COMMIT, on the writing connection."""
        return None

    async def publish_after_commit(self, events: Sequence[StockEvent]) -> None:
        for event in events:
            self.hub.deliver(topic_of(event), event)

    async def _listen(self, topic: str) -> None:
        return None

    async def _unlisten(self, topic: str) -> None:
        return None


def _pg_channel(topic: str) -> str:
    return "dinegraph." + topic


class PostgresBroker(Broker):
    """NOTIFY inside the writing transaction, so only committed changes are ever heard."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[StockEvent]
    ) -> None:
        for event in events:
            await conn.execute(
                sa.select(sa.func.pg_notify(_pg_channel(topic_of(event)), encode(event).decode()))
            )

    async def publish_after_commit(self, events: Sequence[StockEvent]) -> None:
        return None  # every process, this one included, hears it through LISTEN

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        topic = channel.removeprefix("dinegraph.")
        try:
            self.hub.deliver(topic, decode(payload))
        except Exception:
            log.exception("bad notification on %s", channel)

    async def _listen(self, topic: str) -> None:
        assert self._conn is not None, "PostgresBroker.start() was not awaited"
        await self._conn.add_listener(_pg_channel(topic), self._on_notify)

    async def _unlisten(self, topic: str) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.remove_listener(_pg_channel(topic), self._on_notify)


class RedisBroker(Broker):
    """Redis pub/sub, published right after commit."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._redis = aioredis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._redis.ping()
        self._reader = asyncio.create_task(self._read(), name="dinegraph-redis-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def publish_after_commit(self, events: Sequence[StockEvent]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(_pg_channel(topic_of(event)), encode(event))
            await pipe.execute()

    async def _read(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except aioredis.ConnectionError:
                log.warning("redis connection lost; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            try:
                self.hub.deliver(channel.removeprefix("dinegraph."), decode(message["data"]))
            except Exception:
                log.exception("bad message on %s", channel)

    async def _listen(self, topic: str) -> None:
        await self._pubsub.subscribe(_pg_channel(topic))

    async def _unlisten(self, topic: str) -> None:
        await self._pubsub.unsubscribe(_pg_channel(topic))


def create_broker(url: str) -> Broker:
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return Broker()
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return PostgresBroker(url)
    if scheme in ("redis", "rediss"):
        return RedisBroker(url)
    raise ValueError(
        f"DINEGRAPH_BROKER_URL scheme {scheme!r} is not supported: use memory://, "
        "postgres://user@host/db (the same database as DINEGRAPH_DATABASE_URL) or redis://host"
    )
