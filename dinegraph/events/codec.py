"""Domain events to broker messages and back; topics name what a subscriber follows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, Protocol

import orjson

from dinegraph.domain.delivery import DeliveryChanged
from dinegraph.domain.events import EVENT_TYPES, Event
from dinegraph.domain.group_buys import GroupBuyChanged
from dinegraph.domain.identity import CredentialsChanged
from dinegraph.domain.kitchen import TicketChanged
from dinegraph.domain.orders import OrderChanged
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.domain.stock import StockChanged
from dinegraph.domain.supplies import SupplyChanged


def stock_topic(store_id: int) -> str:
    return f"stock.{store_id}"


def low_stock_topic(store_id: int) -> str:
    return f"low_stock.{store_id}"


def order_topic(order_id: int) -> str:
    return f"order.{order_id}"


def store_orders_topic(store_id: int) -> str:
    return f"store_orders.{store_id}"


def courier_topic(order_id: int) -> str:
    return f"courier.{order_id}"


def store_deliveries_topic(store_id: int) -> str:
    return f"deliveries.{store_id}"


def group_topic(group_id: int) -> str:
    return f"group.{group_id}"


def store_tickets_topic(store_id: int) -> str:
    return f"tickets.{store_id}"


READS_TOPIC = "reads"
"""Every process follows it: the stamps committed changes move (``domain.stamps``)."""
SUPPLIES_TOPIC = "supplies"
"""Every process follows it: quotas, coupon templates and shelves gone or given back."""
CREDENTIALS_TOPIC = "credentials"
"""Every process follows it: accounts whose remembered viewer must be forgotten."""


def topics_of(event: Event) -> tuple[str, ...]:
    if isinstance(event, SupplyChanged):
        return (SUPPLIES_TOPIC,)
    if isinstance(event, CredentialsChanged):
        return (CREDENTIALS_TOPIC,)
    if isinstance(event, ReadsChanged):
        return (READS_TOPIC,)
    if isinstance(event, StockChanged):
        return (stock_topic(event.store_id),)
    if isinstance(event, DeliveryChanged):
        # Who follows the order's courier; the store's live map of its deliveries.
        return (courier_topic(event.order_id), store_deliveries_topic(event.store_id))
    if isinstance(event, OrderChanged):
        # The customer follows one order; the store's staff follow all of its orders.
        return (order_topic(event.order_id), store_orders_topic(event.store_id))
    if isinstance(event, GroupBuyChanged):
        return (group_topic(event.group_id),)
    if isinstance(event, TicketChanged):
        return (store_tickets_topic(event.store_id),)
    return (low_stock_topic(event.store_id),)


def routed(events: Iterable[Event]) -> list[tuple[str, Event]]:
    """Each event with each topic it is published on."""
    return [(topic, event) for event in events for topic in topics_of(event)]


class Sealer(Protocol):
    """Encrypts the personal fields of an event for the trip between processes (and opens
    them on arrival): a broker's messages pass through PostgreSQL's NOTIFY or Redis, which
    must not carry a rider's phone in clear. ``field`` names what is sealed."""

    def seal(self, plain: str, field: str) -> str: ...

    def open(self, sealed: str, field: str) -> str: ...


# The fields of an event that name a person, sealed on the wire when a broker has a sealer.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    DeliveryChanged.__name__: ("courier_name", "courier_phone"),
}


def encode(event: Event, sealer: Sealer | None = None) -> bytes:
    kind = type(event).__name__
    data = {"type": kind, **asdict(event)}
    if sealer is not None:
        for name in PERSONAL_FIELDS.get(kind, ()):
            if data[name] is not None:
                data[name] = sealer.seal(data[name], f"events.{name}")
    return orjson.dumps(data)


def decode(payload: bytes | str, sealer: Sealer | None = None) -> Event:
    data: dict[str, Any] = orjson.loads(payload)
    kind = data.pop("type")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    if sealer is not None:
        for name in PERSONAL_FIELDS.get(kind, ()):
            if data.get(name) is not None:
                data[name] = sealer.open(data[name], f"events.{name}")
    return cls(**data)
