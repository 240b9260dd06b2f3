"""Stock: the ledger of every change to a tracked level, and the rules of each change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dinegraph.domain.catalog import Sku
from dinegraph.domain.errors import DomainError, ErrorCode

MAX_LINES = 100
MAX_QUANTITY = 9_999
REFERENCE_MAX = 64
REASON_MAX = 200


class SaleSource(StrEnum):
    """Where a sale was made; each deducts the same per-store stock."""

    POS = "POS"
    TAKEAWAY = "TAKEAWAY"
    MINI_PROGRAM = "MINI_PROGRAM"


class MovementSource(StrEnum):
    """What moved stock. With the store and a reference it keys one movement, once."""

    POS = "POS"
    TAKEAWAY = "TAKEAWAY"
    MINI_PROGRAM = "MINI_PROGRAM"
    ORDER_HOLD = "ORDER_HOLD"
    ORDER_RELEASE = "ORDER_RELEASE"
    RESTOCK = "RESTOCK"
    ADJUSTMENT = "ADJUSTMENT"
    CAMPAIGN_HOLD = "CAMPAIGN_HOLD"  # a campaign's quota, set aside when it is created
    CAMPAIGN_RELEASE = "CAMPAIGN_RELEASE"  # what was left of it, back when it ends


class LedgerKind(StrEnum):
    SALE = "SALE"
    ORDER_HOLD = "ORDER_HOLD"
    RELEASE = "RELEASE"
    RESTOCK = "RESTOCK"
    ADJUSTMENT = "ADJUSTMENT"
    CAMPAIGN_HOLD = "CAMPAIGN_HOLD"


_KIND_OF_SOURCE = {
    MovementSource.POS: LedgerKind.SALE,
    MovementSource.TAKEAWAY: LedgerKind.SALE,
    MovementSource.MINI_PROGRAM: LedgerKind.SALE,
    MovementSource.ORDER_HOLD: LedgerKind.ORDER_HOLD,
    MovementSource.ORDER_RELEASE: LedgerKind.RELEASE,
    MovementSource.RESTOCK: LedgerKind.RESTOCK,
    MovementSource.ADJUSTMENT: LedgerKind.ADJUSTMENT,
    MovementSource.CAMPAIGN_HOLD: LedgerKind.CAMPAIGN_HOLD,
    MovementSource.CAMPAIGN_RELEASE: LedgerKind.RELEASE,
}


def kind_of(source: MovementSource) -> LedgerKind:
    return _KIND_OF_SOURCE[source]


@dataclass(frozen=True, slots=True)
class StockView:
    available: int | None  # None: made to order, not counted
    sold_out: bool
    version: int


def stock_view(sku: Sku, available: int | None, sold_out_flag: bool, version: int) -> StockView:
    """What a customer sees of a SKU's stock at one store.

    A tracked SKU the store has never stocked has 0; it is sold out when nothing is left or
    when staff marked it so. An untracked dish is sold out only when marked (沽清).
    """
    if sku.tracked:
        level = available or 0
        return StockView(available=level, sold_out=sold_out_flag or level == 0, version=version)
    return StockView(available=None, sold_out=sold_out_flag, version=version)


def combo_stock_view(
    combo: Sku, own: StockView, components: Mapping[int, StockView | None]
) -> StockView:
    """A combo at one store: sold out when it is, or when any component is: marked 沽清,
    or counted with fewer units than one combo takes. ``components`` maps each component
    SKU to its view there (None: nothing known, a dish on sale)."""
    for part in combo.components:
        view = components.get(part.sku_id)
        if view is None:
            continue
        if view.sold_out or (view.available is not None and view.available < part.quantity):
            return StockView(available=own.available, sold_out=True, version=own.version)
    return own


DEFAULT_LOW_STOCK_THRESHOLD = 5
"""A level's threshold until staff set one."""


@dataclass(frozen=True, slots=True)
class StockLevel:
    store_id: int
    sku_id: int
    available: int | None
    sold_out: bool
    low_stock_threshold: int
    version: int


@dataclass(frozen=True, slots=True)
class SkuStock:
    """A SKU at one store as a stock write sees it when it could not take the SKU's units:
    counted or made to order, what is left, and whether staff marked it sold out (沽清)."""

    tracked: bool
    available: int | None
    sold_out: bool


@dataclass(frozen=True, slots=True)
class MovementLine:
    sku_id: int
    quantity: int  # signed: negative takes stock away


@dataclass(frozen=True, slots=True)
class Movement:
    """One accepted change of stock (a sale, a restock, ...), with its ledger lines."""

    id: int
    store_id: int
    source: MovementSource
    reference: str
    fingerprint: str
    reason: str
    lines: tuple[MovementLine, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    movement_id: int
    store_id: int
    sku_id: int
    kind: LedgerKind
    source: MovementSource
    reference: str
    delta: int
    balance_after: int
    reason: str
    created_at: datetime


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockChanged:
    store_id: int
    sku_id: int
    available: int | None
    sold_out: bool
    version: int


@dataclass(frozen=True, slots=True)
class LowStock:
    store_id: int
    sku_id: int
    available: int
    threshold: int
    version: int


StockEvent = StockChanged | LowStock


def changed(level: StockLevel, sku: Sku) -> StockChanged:
    view = stock_view(sku, level.available, level.sold_out, level.version)
    return StockChanged(level.store_id, level.sku_id, view.available, view.sold_out, level.version)


def tracked_changed(level: StockLevel) -> StockChanged:
    """``changed`` for the level of a tracked SKU (only tracked levels are ever counted)."""
    available = level.available or 0
    return StockChanged(
        level.store_id, level.sku_id, available, level.sold_out or available == 0, level.version
    )


def low_stock_crossed(before: int, level: StockLevel) -> LowStock | None:
    """Alert once, when a level falls to its threshold or below, not on every later sale."""
    after = level.available
    if after is None or not (after <= level.low_stock_threshold < before):
        return None
    return LowStock(level.store_id, level.sku_id, after, level.low_stock_threshold, level.version)


def low_now(
    store_id: int, sku: Sku, available: int | None, threshold: int | None, version: int
) -> LowStock | None:
    """A tracked SKU already at or below its threshold, as a fresh subscriber hears of it."""
    if not sku.tracked or threshold is None or (available or 0) > threshold:
        return None
    return LowStock(store_id, sku.id, available or 0, threshold, version)


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleLine:
    sku_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class RecordSale:
    store_id: int
    source: SaleSource
    external_order_id: str
    lines: tuple[SaleLine, ...]


@dataclass(frozen=True, slots=True)
class Restock:
    store_id: int
    sku_id: int
    quantity: int
    reference: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AdjustStock:
    store_id: int
    sku_id: int
    delta: int
    reason: str
    reference: str


@dataclass(frozen=True, slots=True)
class SetSoldOut:
    store_id: int
    sku_id: int
    sold_out: bool


@dataclass(frozen=True, slots=True)
class SetLowStockThreshold:
    store_id: int
    sku_id: int
    threshold: int


# --- rules ----------------------------------------------------------------------------


def clean_reference(value: str, field: Sequence[str]) -> str:
    reference = value.strip()
    if not reference:
        raise DomainError(ErrorCode.REQUIRED, field=field)
    if len(reference) > REFERENCE_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=REFERENCE_MAX)
    return reference


def clean_reason(value: str, *, required: bool) -> str:
    reason = value.strip()
    if required and not reason:
        raise DomainError(ErrorCode.REQUIRED, field=["reason"])
    if len(reason) > REASON_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["reason"], max=REASON_MAX)
    return reason


def sale_lines(lines: Iterable[SaleLine]) -> tuple[MovementLine, ...]:
    """A sale's lines merged by SKU and sorted by id.

    Sorting fixes the order rows are locked in, so two sales of A+B and B+A never deadlock.
    """
    merged: dict[int, int] = {}
    for n, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE, field=["lines", str(n), "quantity"], min=1, max=MAX_QUANTITY
            )
        merged[line.sku_id] = merged.get(line.sku_id, 0) + line.quantity
    if not merged:
        raise DomainError(ErrorCode.REQUIRED, field=["lines"])
    if len(merged) > MAX_LINES:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["lines"], min=1, max=MAX_LINES)
    return tuple(MovementLine(sku_id, -qty) for sku_id, qty in sorted(merged.items()))


def fingerprint(lines: Iterable[MovementLine], reason: str = "") -> str:
    """What a movement asked for; a replay with another fingerprint reuses a key wrongly."""
    canonical = json.dumps(
        {"lines": sorted((line.sku_id, line.quantity) for line in lines), "reason": reason},
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_quantity(quantity: int, field: str = "quantity") -> int:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=[field], min=1, max=MAX_QUANTITY)
    return quantity


def check_delta(delta: int) -> int:
    if delta == 0 or abs(delta) > MAX_QUANTITY:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE, field=["delta"], min=-MAX_QUANTITY, max=MAX_QUANTITY
        )
    return delta


def check_threshold(threshold: int) -> int:
    if not 0 <= threshold <= MAX_QUANTITY:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["threshold"], min=0, max=MAX_QUANTITY)
    return threshold
