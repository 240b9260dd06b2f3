"""A delivery's events cross PostgreSQL's NOTIFY and Redis with the rider sealed: what the
channel carries holds no name or phone in clear, what the other processes hear does."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from redis import asyncio as aioredis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import WRITE
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.personal import EventSealer, PersonalCipher, event_sealer
from dinegraph.domain.delivery import DeliveryChanged
from dinegraph.domain.events import Event
from dinegraph.events.brokers import PostgresBroker, RedisBroker, redis_channel_prefix
from dinegraph.events.codec import courier_topic, decode, encode
from dinegraph.settings import Settings
from tests.databases import broker_url

PHONE, NAME = "13912345678", "骑手王师傅"


def _changed(order_id: int) -> DeliveryChanged:
    return DeliveryChanged(
        delivery_id=order_id,
        order_id=order_id,
        store_id=1,
        provider="DADA",
        status="DELIVERING",
        lat=22.5,
        lng=114.0,
        eta_seconds=300,
        courier_name=NAME,
        courier_phone=PHONE,
        version=3,
    )


def test_sealed_fields_open_again_and_a_payload_from_before_sealing_still_reads() -> None:
    sealer = EventSealer(PersonalCipher([("k1", b"k" * 32)], b"i" * 32))
    event = _changed(1)
    wire = encode(event, sealer)
    assert PHONE.encode() not in wire and NAME.encode() not in wire
    assert decode(wire, sealer) == event
    assert decode(encode(event), sealer) == event  # published by a process that did not seal
    assert decode(encode(event)) == event


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_the_rider_crosses_the_broker_sealed(
    kind: str, settings: Settings, engine: AsyncEngine
) -> None:
    url = broker_url(settings, kind)
    sealer = event_sealer(engine)
    order_id = 900_000 + (1 if kind == "postgres" else 2)
    topic = courier_topic(order_id)
    broker: PostgresBroker | RedisBroker = (
        PostgresBroker(url, sealer)
        if kind == "postgres"
        else RedisBroker(url, SqlOutbox(engine), sealer)
    )
    raw: list[str] = []
    heard: list[Event] = []
    arrived, raw_arrived = asyncio.Event(), asyncio.Event()

    def spied(*notification: Any) -> None:
        raw.append(notification[3])  # (connection, pid, channel, payload)
        raw_arrived.set()

    def hear(event: Event) -> None:
        heard.append(event)
        arrived.set()

    spy: Any = None
    await broker.start()
    try:
        await broker.hub.follow(topic, hear)
        if kind == "postgres":
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            spy = await asyncpg.connect(dsn)
            await spy.add_listener(f"dinegraph.{topic}", spied)
        else:
            spy = aioredis.from_url(url)
            pubsub = spy.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(redis_channel_prefix(url) + topic)
        await asyncio.sleep(0.2)  # the subscriptions reach the broker
        event = _changed(order_id)
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                receipt = await broker.publish_in_transaction(conn, [event])
        await broker.publish_after_commit([event], receipt)
        async with asyncio.timeout(10):
            await arrived.wait()
            if kind == "redis":
                while not raw:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        raw.append(message["data"].decode())
            else:
                await raw_arrived.wait()
        assert heard == [event]  # the other processes hear the rider
        assert raw and all(PHONE not in r and NAME not in r for r in raw), raw
    finally:
        await broker.stop()
        if spy is not None:
            await (spy.close() if kind == "postgres" else spy.aclose())
