"""The checkout: what a customer asks to buy, checked before anything is read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.orders import DeliveryAddress
from dinegraph.domain.pricing import check_line_quantity

MAX_ORDER_LINES = 50
NOTE_MAX = 200


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Checkout:
    """What a customer asks to buy: priced by quoteOrder, placed by placeOrder."""

    channel: Channel
    lines: tuple[LineRequest, ...]
    store_id: int | None = None
    address: DeliveryAddress | None = None
    coupon_id: int | None = None
    note: str = ""


def check_checkout(checkout: Checkout) -> Checkout:
    """Refuse a malformed checkout before anything is read, naming the field."""
    if not checkout.lines:
        raise DomainError(ErrorCode.REQUIRED, field=["lines"])
    if len(checkout.lines) > MAX_ORDER_LINES:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["lines"], min=1, max=MAX_ORDER_LINES)
    seen: set[int] = set()
    for n, line in enumerate(checkout.lines):
        check_line_quantity(line.quantity, field=["lines", str(n), "quantity"])
        if line.sku_id in seen:
            raise DomainError(ErrorCode.DUPLICATE, field=["lines", str(n), "skuId"])
        seen.add(line.sku_id)
    if checkout.channel is Channel.DELIVERY:
        if checkout.address is None:
            raise DomainError(ErrorCode.REQUIRED, field=["address"])
    elif checkout.store_id is None:
        # Pickup, dine-in and retail happen at a store the customer chose.
        raise DomainError(ErrorCode.REQUIRED, field=["storeId"])
    if len(checkout.note) > NOTE_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["note"], max=NOTE_MAX)
    return checkout


def checkout_fingerprint(checkout: Checkout) -> str:
    """The request's payload, hashed: a replay with another payload reuses its key wrongly."""
    address = checkout.address
    payload = {
        "channel": checkout.channel.value,
        "store": checkout.store_id,
        "address": [
            address.location.lat,
            address.location.lng,
            address.detail,
            address.contact_name,
            address.contact_phone,
        ]
        if address
        else None,
        "lines": [[line.sku_id, line.quantity] for line in checkout.lines],
        "coupon": checkout.coupon_id,
        "note": checkout.note,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
