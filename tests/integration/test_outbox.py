"""The Redis broker's outbox: committed events are heard even if the writer died."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import WRITE
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.personal import event_sealer
from dinegraph.db.tables import event_outbox
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.stock import StockChanged
from dinegraph.events.brokers import RedisBroker
from dinegraph.events.codec import encode, stock_topic
from tests.databases import REDIS_URL

pytestmark = pytest.mark.skipif(
    not REDIS_URL,
    reason="the Redis broker tests need DINEGRAPH_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0",
)


async def test_the_relay_publishes_what_a_dead_process_left_in_the_outbox(
    engine: AsyncEngine,
) -> None:
    assert REDIS_URL
    broker = RedisBroker(REDIS_URL, SqlOutbox(engine), event_sealer(engine))
    await broker.start()
    try:
        event = StockChanged(store_id=777, sku_id=5, available=3, sold_out=False, version=42)
        box = await broker.hub.join([stock_topic(777)])
        await asyncio.sleep(0.2)  # let the subscription reach Redis
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                # Committed, never published: the writer died right after COMMIT.
                await conn.execute(
                    event_outbox.insert().values(
                        topic=stock_topic(777),
                        payload=encode(event).decode(),
                        created_at=datetime.now(UTC) - timedelta(minutes=1),
                    )
                )
        assert await broker.relay_once() >= 1
        assert await asyncio.wait_for(box.take(), 5) == [event]
        async with engine.connect() as conn:
            left = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(event_outbox)
                .where(event_outbox.c.topic == stock_topic(777))
            )
        assert left == 0
    finally:
        await broker.stop()


async def test_events_published_after_commit_leave_the_outbox_empty(engine: AsyncEngine) -> None:
    assert REDIS_URL
    broker = RedisBroker(REDIS_URL, SqlOutbox(engine), event_sealer(engine))
    await broker.start()
    try:
        box = await broker.hub.join([stock_topic(778)])
        await asyncio.sleep(0.2)
        event = StockChanged(store_id=778, sku_id=6, available=1, sold_out=False, version=9)
        async with SqlUnitOfWork(engine, events=broker) as uow:
            uow.record(event)
            await uow.commit()
        assert await asyncio.wait_for(box.take(), 5) == [event]
        async with engine.connect() as conn:
            left = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(event_outbox)
                .where(event_outbox.c.topic == stock_topic(778))
            )
        assert left == 0
        async with SqlUnitOfWork(engine, events=broker) as uow:
            uow.record(StockChanged(778, 6, 0, True, 10))
            # No commit: a rolled-back change is never announced.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(box.take(), 0.5)
    finally:
        await broker.stop()


async def test_deployments_on_two_redis_databases_do_not_hear_each_other(
    engine: AsyncEngine,
) -> None:
    """Pub/sub ignores Redis's database number; the broker's channels carry it, so staging on
    one database and production on another of the same Redis keep their events apart."""
    assert REDIS_URL
    parts = urlsplit(REDIS_URL)
    other = urlunsplit(parts._replace(path=f"/{(int(parts.path.strip('/') or 0) + 8) % 16}"))
    here = RedisBroker(REDIS_URL, SqlOutbox(engine), event_sealer(engine))
    there = RedisBroker(other, SqlOutbox(engine), event_sealer(engine))
    await here.start()
    await there.start()
    try:
        heard_here = await here.hub.join([stock_topic(779)])
        heard_there = await there.hub.join([stock_topic(779)])
        await asyncio.sleep(0.2)  # let the subscriptions reach Redis
        ours = StockChanged(store_id=779, sku_id=7, available=4, sold_out=False, version=1)
        theirs = StockChanged(store_id=779, sku_id=7, available=9, sold_out=False, version=2)
        for broker, event in ((here, ours), (there, theirs)):
            async with SqlUnitOfWork(engine, events=broker) as uow:
                uow.record(event)
                await uow.commit()
        assert await asyncio.wait_for(heard_here.take(), 5) == [ours]
        assert await asyncio.wait_for(heard_there.take(), 5) == [theirs]
        for box in (heard_here, heard_there):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(box.take(), 0.5)
    finally:
        await here.stop()
        await there.stop()
