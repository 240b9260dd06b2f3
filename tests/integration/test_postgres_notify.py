"""The PostgreSQL broker: a commit's events go out in one statement, heard in their order."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import counting
from dinegraph.domain.events import Event
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.domain.stock import StockChanged
from dinegraph.events.brokers import PostgresBroker
from dinegraph.events.codec import READS_TOPIC, stock_topic
from dinegraph.settings import Settings
from tests.databases import broker_url


async def test_a_commits_events_are_one_statement_and_heard_in_order(
    settings: Settings, engine: AsyncEngine
) -> None:
    broker = PostgresBroker(broker_url(settings, "postgres"), None)
    await broker.start()
    heard: list[Event] = []
    sent: list[Event] = []
    all_heard = asyncio.Event()

    def hear(event: Event) -> None:
        heard.append(event)
        if len(heard) == len(sent):
            all_heard.set()

    try:
        await broker.hub.follow(READS_TOPIC, hear)
        await broker.hub.follow(stock_topic(1), hear)
        sent += [
            ReadsChanged(("stock.1",)),
            StockChanged(store_id=1, sku_id=2, available=5, sold_out=False, version=7),
            ReadsChanged(("price.1",)),
            StockChanged(store_id=1, sku_id=2, available=4, sold_out=False, version=8),
        ]
        async with engine.connect() as conn, conn.begin():
            statements = counting()
            await broker.publish_in_transaction(conn, sent)
            assert statements.count == 1
            assert heard == []  # nothing before the commit
        async with asyncio.timeout(10):
            await all_heard.wait()
        assert heard == sent
    finally:
        await broker.stop()
