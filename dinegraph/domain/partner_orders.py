"""Orders taken elsewhere: a store's till (POS) or a takeaway platform (美团, 饿了么, 抖音).

The partner reports an order it has already taken and been paid for; it lands on the
store's board beside the mini-program's orders and moves through the same kitchen states.
(source, external id) names one order: a retry with the same body is the same order, with
another body it is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import DETAIL_MAX, OrderSource
from dinegraph.domain.stock import MAX_LINES, MAX_QUANTITY, MovementSource
from dinegraph.domain.text import clean_text

EXTERNAL_ID_MAX = 48
LINE_NOTE_MAX = 100
TABLE_NO_MAX = 16
PICKUP_CODE_MAX = 8
REASON_MAX = 200
PAID_MAX_FEN = 100_000_000  # 一百万元: far beyond any one order


@dataclass(frozen=True, slots=True)
class PartnerLine:
    sku_id: int
    quantity: int
    unit_price_fen: int | None = None  # None: the store's own price
    note: str = ""


@dataclass(frozen=True, slots=True)
class RecordPartnerOrder:
    store_id: int
    source: OrderSource
    external_id: str
    lines: Sequence[PartnerLine]
    fulfilment: Channel
    paid_fen: int
    now: datetime
    table_no: str | None = None
    pickup_code: str | None = None
    customer_note: str = ""
    pickup_at: datetime | None = None
    placed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CancelPartnerOrder:
    source: OrderSource
    external_id: str
    reason: str
    now: datetime


def sale_source(source: OrderSource) -> MovementSource:
    """The ledger's name for a partner order's sale, as ``recordSale`` records it."""
    return MovementSource.POS if source is OrderSource.POS else MovementSource.TAKEAWAY


def clean_source(source: OrderSource) -> OrderSource:
    if source is OrderSource.MINI_PROGRAM:  # the mini-program's orders are placed by members
        raise DomainError(ErrorCode.INVALID_INPUT, field=["source"])
    return source


def clean_external_id(raw: str) -> str:
    return clean_text(raw, ["externalId"], max_length=EXTERNAL_ID_MAX)


def _text(raw: str | None, field: list[str], limit: int) -> str:
    return clean_text(raw or "", field, max_length=limit, required=False)


def clean_reason(raw: str) -> str:
    return _text(raw, ["reason"], REASON_MAX)


@dataclass(frozen=True, slots=True)
class CleanPartnerOrder:
    """A partner's order as it is kept: every field checked, text trimmed."""

    store_id: int
    source: OrderSource
    external_id: str
    lines: tuple[PartnerLine, ...]
    fulfilment: Channel
    paid_fen: int
    table_no: str | None
    pickup_code: str | None
    customer_note: str
    pickup_at: datetime | None
    placed_at: datetime | None

    @property
    def fingerprint(self) -> str:
        """What a retry must repeat to be the same order (when it arrives does not count)."""
        body = [
            self.store_id,
            self.source.value,
            [[x.sku_id, x.quantity, x.unit_price_fen, x.note] for x in self.lines],
            self.fulfilment.value,
            self.paid_fen,
            self.table_no,
            self.pickup_code,
            self.customer_note,
            self.pickup_at.isoformat() if self.pickup_at else None,
            self.placed_at.isoformat() if self.placed_at else None,
        ]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:32]

    def units(self) -> dict[int, int]:
        """Units per SKU (a SKU may be on several lines, each with its own note)."""
        units: dict[int, int] = {}
        for line in self.lines:
            units[line.sku_id] = units.get(line.sku_id, 0) + line.quantity
        return units


def clean_partner_order(cmd: RecordPartnerOrder) -> CleanPartnerOrder:
    """Check everything the input alone can tell; nothing is written before this passes."""
    source = clean_source(cmd.source)
    external_id = clean_external_id(cmd.external_id)
    if not cmd.lines:
        raise DomainError(ErrorCode.REQUIRED, field=["lines"])
    if len(cmd.lines) > MAX_LINES:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["lines"], min=1, max=MAX_LINES)
    lines: list[PartnerLine] = []
    for n, line in enumerate(cmd.lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE, field=["lines", str(n), "quantity"], min=1, max=MAX_QUANTITY
            )
        price = line.unit_price_fen
        if price is not None and not 0 <= price <= PAID_MAX_FEN:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE,
                field=["lines", str(n), "unitPriceFen"],
                min=0,
                max=PAID_MAX_FEN,
            )
        note = _text(line.note, ["lines", str(n), "note"], LINE_NOTE_MAX)
        lines.append(PartnerLine(line.sku_id, line.quantity, price, note))
    if cmd.fulfilment not in (Channel.DINE_IN, Channel.PICKUP, Channel.DELIVERY):
        raise DomainError(ErrorCode.INVALID_INPUT, field=["fulfilment"])
    if not 0 <= cmd.paid_fen <= PAID_MAX_FEN:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["paidFen"], min=0, max=PAID_MAX_FEN)
    table_no = _text(cmd.table_no, ["tableNo"], TABLE_NO_MAX) or None
    code = _text(cmd.pickup_code, ["pickupCode"], PICKUP_CODE_MAX) or None
    return CleanPartnerOrder(
        store_id=cmd.store_id,
        source=source,
        external_id=external_id,
        lines=tuple(lines),
        fulfilment=cmd.fulfilment,
        paid_fen=cmd.paid_fen,
        table_no=table_no,
        pickup_code=code,
        customer_note=_text(cmd.customer_note, ["customerNote"], DETAIL_MAX),
        pickup_at=cmd.pickup_at,
        placed_at=cmd.placed_at,
    )
