"""Local fan-out: latest value per SKU, one broker subscription per topic."""

from __future__ import annotations

import asyncio
from typing import cast

from dinegraph.domain.delivery import DeliveryChanged
from dinegraph.domain.orders import OrderChanged
from dinegraph.domain.stock import LowStock, StockChanged
from dinegraph.events.codec import decode, encode, topics_of
from dinegraph.events.hub import Hub, Mailbox


def _changed(sku: int, version: int, available: int = 1) -> StockChanged:
    return StockChanged(1, sku, available, available == 0, version)


async def test_a_slow_reader_gets_the_latest_value_per_sku_not_a_queue() -> None:
    box = Mailbox()
    for version in range(1, 1001):
        box.put(_changed(7, version, available=1000 - version))
        box.put(_changed(8, version))
    box.put(_changed(8, 3))  # a late, older event never replaces a newer one
    taken = cast("list[StockChanged]", await box.take())  # only stock changes were put
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


def _moved(delivery: int, version: int, lat: float) -> DeliveryChanged:
    return DeliveryChanged(
        delivery,
        100 + delivery,
        1,
        "DADA",
        "DELIVERING",
        lat,
        114.0,
        60,
        "张",
        "13900000000",
        version,
    )


def _order(order: int, version: int, status: str) -> OrderChanged:
    return OrderChanged(order, 1, 9, status, version)


async def test_a_slow_follower_gets_each_courier_s_latest_position_and_order_s_state() -> None:
    box = Mailbox()
    for version in range(1, 101):
        box.put(_moved(1, version, 22.0 + version / 1000))
        box.put(_moved(2, version, 23.0))
    box.put(_moved(1, 50, 0.0))  # a late report's event never replaces a newer one
    box.put(_order(5, 2, "PAID"))
    box.put(_order(5, 3, "ACCEPTED"))
    taken = await box.take()
    moved = sorted(
        (e.delivery_id, e.version, e.lat) for e in taken if isinstance(e, DeliveryChanged)
    )
    assert moved == [(1, 100, 22.1), (2, 100, 23.0)]
    assert [(e.order_id, e.status) for e in taken if isinstance(e, OrderChanged)] == [
        (5, "ACCEPTED")
    ]


def test_order_and_delivery_events_travel_whole_and_to_their_topics() -> None:
    moved = _moved(3, 7, 22.5)
    assert decode(encode(moved)) == moved
    assert topics_of(moved) == ("courier.103", "deliveries.1")
    order = _order(8, 2, "PAID")
    assert decode(encode(order)) == order
    assert topics_of(order) == ("order.8", "store_orders.1")
