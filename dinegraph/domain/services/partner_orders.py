"""Orders from a store's till and the takeaway platforms: recorded once, on the same board.

The order's stock is a sale in the one ledger (``apply_movement``, as ``recordSale`` moves
it), keyed by the order; a cancellation gives back what that sale took.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dinegraph.domain.catalog import Sku
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import PartnerViewer, Viewer, actor_of, require_order_writer
from dinegraph.domain.orders import FINAL, Order, OrderLine, OrderStatus
from dinegraph.domain.partner_orders import (
    CancelPartnerOrder,
    CleanPartnerOrder,
    RecordPartnerOrder,
    clean_external_id,
    clean_partner_order,
    clean_reason,
    clean_source,
    sale_source,
)
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.quotes import CatalogItem
from dinegraph.domain.services.checkout import line_name
from dinegraph.domain.services.orders import cancel_partner_in, order_changed
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine

# A platform's order takes what the shelf has; a sale racing it may empty the shelf between
# reading it and taking it, and the order is then tried again on the new level.
_PLATFORM_TRIES = 3


@dataclass(frozen=True, slots=True)
class Recorded:
    order: Order
    replayed: bool


async def record_partner_order(
    cmd: RecordPartnerOrder, *, uow: UnitOfWork, viewer: Viewer
) -> Recorded:
    """Record an order the partner has taken and been paid for; it goes on the store's board
    as PAID, for the kitchen to accept.

    A till's order is refused ``OUT_OF_STOCK`` as ``recordSale`` refuses it. A platform's
    customer has already bought: the order is recorded even when the shelf has fewer units
    (the ledger takes what is there and never goes below zero; staff count the rest) or
    the dish is marked sold out; only a SKU the store does not sell is refused.
    """
    partner = require_order_writer(viewer, cmd.store_id)
    order = clean_partner_order(cmd)
    tries = _PLATFORM_TRIES if order.source.platform else 1
    for attempt in range(1, tries + 1):
        try:
            return await _record(uow, partner, order, cmd.now)
        except DomainError as error:
            if error.code is not ErrorCode.OUT_OF_STOCK or attempt == tries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _record(
    uow: UnitOfWork, partner: PartnerViewer, clean: CleanPartnerOrder, now: datetime
) -> Recorded:
    async with uow:
        existing = await uow.orders.by_external(clean.source.value, clean.external_id)
        if existing is not None:
            return _replay(partner, existing, clean)
        if await uow.catalog.get_store(clean.store_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
        units = clean.units()
        candidates = await uow.orders.candidates(sorted(units), clean.store_id)
        items = {sku: item for (store, sku), item in candidates.items.items()}
        for n, line in enumerate(clean.lines):
            item = items.get(line.sku_id)
            if item is None or not item.product.listed:  # unknown, or not on sale
                raise DomainError(ErrorCode.NOT_FOUND, field=["lines", str(n), "skuId"])
        draft = _draft(clean, items, now)
        order_id = await uow.orders.add(draft)
        if order_id is None:  # the same external order, committed meanwhile
            existing = await uow.orders.by_external(clean.source.value, clean.external_id)
            assert existing is not None
            return _replay(partner, existing, clean)
        order = replace(draft, id=order_id)
        await uow.orders.add_lines(order_id, order.lines)
        await _take_stock(uow, partner, clean, order, units, {i: x.sku for i, x in items.items()})
        await uow.orders.change_load(order.store_id, 1)  # PAID: in the kitchen's queue
        uow.record(order_changed(order))
        uow.wrote("Order", order.id, order.store_id)
        await uow.commit()
    return Recorded(order, replayed=False)


def _replay(partner: PartnerViewer, existing: Order, clean: CleanPartnerOrder) -> Recorded:
    if not partner.covers(existing.store_id):
        raise DomainError(ErrorCode.FORBIDDEN, field=["externalId"])
    if existing.fingerprint != clean.fingerprint:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["externalId"])
    return Recorded(existing, replayed=True)


def _draft(clean: CleanPartnerOrder, items: dict[int, CatalogItem], now: datetime) -> Order:
    lines = tuple(
        OrderLine(
            line_no=n + 1,
            sku_id=line.sku_id,
            product_id=items[line.sku_id].product.id,
            name=line_name(items[line.sku_id].product.name, items[line.sku_id].sku.name),
            specs=dict(items[line.sku_id].sku.specs),
            unit_price_fen=(
                line.unit_price_fen
                if line.unit_price_fen is not None
                else items[line.sku_id].unit_price_fen
            ),
            quantity=line.quantity,
            note=line.note,
        )
        for n, line in enumerate(clean.lines)
    )
    placed = clean.placed_at or now
    return Order(
        id=0,
        member_id=None,
        store_id=clean.store_id,
        channel=clean.fulfilment,
        status=OrderStatus.PAID,
        idempotency_key=clean.external_id,
        fingerprint=clean.fingerprint,
        subtotal_fen=sum(line.amount_fen for line in lines),
        tier_discount_fen=0,
        coupon_discount_fen=0,
        delivery_fee_fen=0,
        delivery_discount_fen=0,
        packaging_fee_fen=0,
        total_fen=clean.paid_fen,
        refunded_fen=0,
        coupon_id=None,
        address=None,
        distance_m=None,
        note=clean.customer_note,
        pickup_code=clean.pickup_code,
        placed_at=placed,
        pay_by=placed,
        paid_at=placed,
        completed_at=None,
        version=1,
        lines=lines,
        source=clean.source,
        external_id=clean.external_id,
        table_no=clean.table_no,
        pickup_at=clean.pickup_at,
    )


async def _take_stock(
    uow: UnitOfWork,
    partner: PartnerViewer,
    clean: CleanPartnerOrder,
    order: Order,
    units: dict[int, int],
    skus: dict[int, Sku],
) -> None:
    """The order's sale in the ledger, keyed by the order (a retry never takes twice)."""
    wanted = dict(units)
    if clean.source.platform:
        # Already sold: take what the shelf has; a made-to-order dish moves no stock.
        found = await uow.stock.sku_stock(clean.store_id, list(wanted))
        wanted = {
            sku: min(qty, found[sku].available or 0)
            for sku, qty in wanted.items()
            if skus[sku].tracked and sku in found
        }
    lines = [MovementLine(sku, -qty) for sku, qty in sorted(wanted.items()) if qty > 0]
    if not lines:
        return
    first_line = {line.sku_id: n for n, line in reversed(list(enumerate(clean.lines)))}
    await apply_movement(
        uow,
        actor=actor_of(partner),
        store_id=order.store_id,
        source=sale_source(clean.source),
        reference=order.reference,
        lines=lines,
        reason="",
        line_field="lines",
        key_field="externalId",
        positions=first_line,
    )


async def cancel_partner_order(
    cmd: CancelPartnerOrder, *, uow: UnitOfWork, viewer: Viewer
) -> Order:
    """The platform (or the till) cancelled the order: off the board, its stock back.

    Cancelling a cancelled order returns it unchanged; a completed one cannot be cancelled.
    The money is the partner's to return: nothing is refunded here.
    """
    partner = require_order_writer(viewer)
    source = clean_source(cmd.source)
    external_id = clean_external_id(cmd.external_id)
    reason = clean_reason(cmd.reason)
    async with uow:
        order = await uow.orders.by_external(source.value, external_id)
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["externalId"])
        if not partner.covers(order.store_id):
            raise DomainError(ErrorCode.FORBIDDEN, field=["externalId"])
        if order.status is OrderStatus.CANCELLED:
            return order
        if order.status in FINAL:
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["status"], current=order.status)
        cancelled = await cancel_partner_in(uow, order, cmd.now, actor_of(partner), reason)
        uow.wrote("Order", order.id, order.store_id)
        await uow.commit()
    return cancelled
