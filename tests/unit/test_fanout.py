"""Local fan-out: latest value per SKU, one broker subscription per topic."""

from __future__ import annotations

import asyncio

from dinegraph.domain.stock import LowStock, StockChanged
from dinegraph.events.codec import decode, encode
from dinegraph.events.hub import Hub, Mailbox


def _changed(sku: int, version: int, available: int = 1) -> StockChanged:
    return StockChanged(1, sku, available, available == 0, version)


async def test_a_slow_reader_gets_the_latest_value_per_sku_not_a_queue() -> None:
    box = Mailbox()
    for version in range(1, 1001):
        box.put(_changed(7, version, available=1000 - version))
        box.put(_changed(8, version))
    box.put(_changed(8, 3))  # a late, older event never replaces a newer one
    taken = await box.take()
    assert sorted((e.sku_id, e.version, e.available) for e in taken) == [
        (7, 1000, 0),
        (8, 1000, 1),
    ]


async def test_take_waits_for_news() -> None:
    box = Mailbox()
    waiting = asyncio.create_task(box.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    box.put(_changed(1, 1))
    assert [e.version for e in await asyncio.wait_for(waiting, 1)] == [1]


async def test_the_hub_subscribes_once_per_topic_and_fans_out() -> None:
    calls: list[str] = []

    async def listen(topic: str) -> None:
        calls.append(f"+{topic}")

    async def unlisten(topic: str) -> None:
        calls.append(f"-{topic}")

    hub = Hub(listen, unlisten)
    boxes = [await hub.join(["stock.1"]) for _ in range(100)]
    hub.deliver("stock.1", _changed(5, 2))
    hub.deliver("stock.2", _changed(5, 3))
    received = [[e.version for e in await box.take()] for box in boxes]
    assert received == [[2]] * 100
    for box in boxes:
        await hub.leave(["stock.1"], box)
    assert calls == ["+stock.1", "-stock.1"]
    assert hub.readers("stock.1") == 0


def test_events_survive_the_wire() -> None:
    for event in (_changed(3, 9, 0), LowStock(2, 4, 3, 5, 11), StockChanged(1, 2, None, True, 4)):
        assert decode(encode(event)) == event
