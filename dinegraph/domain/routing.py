"""Store-as-warehouse (门店即前置仓): which store serves an order best."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from dinegraph.domain.catalog import Store
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.stock import StockView


class CannotServe(StrEnum):
    """Why one store cannot take an order, first failing check first."""

    CLOSED = "CLOSED"  # closed down (装修, 停业)
    OUTSIDE_HOURS = "OUTSIDE_HOURS"
    OUT_OF_RANGE = "OUT_OF_RANGE"  # the address is beyond its delivery radius
    OUT_OF_STOCK = "OUT_OF_STOCK"  # a tracked line has too few units
    SOLD_OUT = "SOLD_OUT"  # a made-to-order line is 沽清


@dataclass(frozen=True, slots=True)
class RoutingWeights:
    per_metre: float = 1.0
    per_pending_order: float = 300.0  # one order in the queue weighs like 300 m more


@dataclass(frozen=True, slots=True)
class Routed:
    store: Store
    distance_m: int
    score: float


@dataclass(frozen=True, slots=True)
class NoStoreCanServe:
    reasons: Mapping[int, CannotServe]  # store id → why not


def why_not(
    store: Store,
    *,
    address: GeoPoint | None,
    at: time,
    lines: Mapping[int, int],
    stock: Mapping[tuple[int, int], StockView],
) -> CannotServe | None:
    """The first reason ``store`` cannot serve the lines (sku → quantity), or None."""
    if not store.is_open:
        return CannotServe.CLOSED
    if not store.in_hours(at):
        return CannotServe.OUTSIDE_HOURS
    if address is not None and not store.delivers_to(address):
        return CannotServe.OUT_OF_RANGE
    for sku_id, quantity in lines.items():
        view = stock.get((store.id, sku_id))
        if view is None:
            continue  # nothing known: a made-to-order dish on sale
        if view.available is not None and view.available < quantity:
            return CannotServe.OUT_OF_STOCK
        if view.sold_out:
            return CannotServe.SOLD_OUT
    return None


def route_order(
    stores: Iterable[Store],
    *,
    address: GeoPoint,
    at: time,
    lines: Mapping[int, int],
    stock: Mapping[tuple[int, int], StockView],
    pending: Mapping[int, int],
    weights: RoutingWeights,
) -> Routed | NoStoreCanServe:
    """The serving store with the lowest distance × w + pending orders × w; ties: lower id.

    Candidates are open, in hours, deliver to the address and can serve every line.
    """
    best: Routed | None = None
    reasons: dict[int, CannotServe] = {}
    for store in sorted(stores, key=lambda s: s.id):
        reason = why_not(store, address=address, at=at, lines=lines, stock=stock)
        if reason is not None:
            reasons[store.id] = reason
            continue
        distance = store.distance_to(address)
        score = distance * weights.per_metre + pending.get(store.id, 0) * weights.per_pending_order
        if best is None or score < best.score:
            best = Routed(store, distance, score)
    return best if best is not None else NoStoreCanServe(reasons)
