"""Domain events to broker messages and back; topics name what a subscriber follows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson

from dinegraph.domain.stock import LowStock, StockChanged, StockEvent


def stock_topic(store_id: int) -> str:
    return f"stock.{store_id}"


def low_stock_topic(store_id: int) -> str:
    return f"low_stock.{store_id}"


def topic_of(event: StockEvent) -> str:
    if isinstance(event, StockChanged):
        return stock_topic(event.store_id)
    return low_stock_topic(event.store_id)


def encode(event: StockEvent) -> bytes:
    return orjson.dumps({"type": type(event).__name__, **asdict(event)})


def decode(payload: bytes | str) -> StockEvent:
    data: dict[str, Any] = orjson.loads(payload)
    kind = data.pop("type")
    if kind == "StockChanged":
        return StockChanged(**data)
    if kind == "LowStock":
        return LowStock(**data)
    raise ValueError(f"unknown event type {kind!r}")
