"""Changing stock: sales from every channel, restocks, adjustments and sold-out flags.

Every change of a tracked level goes through ``_apply_movement``: one movement keyed by
(store, source, reference), one ledger row per SKU, a conditional update that never takes a
level below zero, and a ``StockChanged`` event published only after commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dinegraph.domain.catalog import Sku
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    Viewer,
    actor_of,
    require_stock_writer,
    require_store_manager,
)
from dinegraph.domain.ports import Repositories, UnitOfWork
from dinegraph.domain.stock import (
    AdjustStock,
    Movement,
    MovementLine,
    MovementSource,
    RecordSale,
    Restock,
    SetLowStockThreshold,
    SetSoldOut,
    SkuStock,
    StockLevel,
    changed,
    check_delta,
    check_quantity,
    check_threshold,
    clean_reason,
    clean_reference,
    fingerprint,
    kind_of,
    low_stock_crossed,
    sale_lines,
    tracked_changed,
)
from dinegraph.domain.supplies import GoneWhileQueued, Supply, shelf, supply_changed


async def record_sale(cmd: RecordSale, *, uow: UnitOfWork, viewer: Viewer) -> Movement:
    """Deduct a sale made at the POS, on a takeaway platform or in the mini-program.

    All lines or none. A replay of the same external order returns the first sale and
    changes nothing; the same order id with other lines is ``IDEMPOTENCY_KEY_REUSED``.
    """
    require_stock_writer(viewer, cmd.store_id)
    reference = clean_reference(cmd.external_order_id, ["externalOrderId"])
    lines = sale_lines(cmd.lines)
    source = MovementSource(cmd.source.value)
    first = shelf(cmd.store_id, lines[0].sku_id)  # the first the write would take
    while True:
        if uow.board.gone(first):
            return await _refused_early(uow, cmd.store_id, source, reference, lines)
        try:
            return await _apply_movement(
                uow,
                viewer,
                store_id=cmd.store_id,
                source=source,
                reference=reference,
                lines=lines,
                reason="",
                line_field="lines",
                key_field="externalOrderId",
                unless_gone=first,
            )
        except GoneWhileQueued:
            # Emptied while this sale queued for the lock, with the sales queued beside it:
            # refused as the board refuses (or, restocked meanwhile, queued again).
            continue


async def _refused_early(
    uow: UnitOfWork,
    store_id: int,
    source: MovementSource,
    reference: str,
    lines: Sequence[MovementLine],
) -> Movement:
    """The shelf of the sale's first line (the first the write would take) is known to be
    empty: a replay gets the first sale, any other sale ``OUT_OF_STOCK``, without a write
    transaction."""
    async with uow.reading() as reads:
        if await reads.stock.movement_by_key(store_id, source, reference) is not None:
            return await _replay(
                reads, store_id, source, reference, fingerprint(lines, ""), "externalOrderId"
            )
    raise DomainError(ErrorCode.OUT_OF_STOCK, field=["lines", "0", "quantity"], available=0)


async def restock(cmd: Restock, *, uow: UnitOfWork, viewer: Viewer) -> Movement:
    """Add delivered units of a tracked SKU; ``reference`` makes a retry harmless."""
    require_store_manager(viewer, cmd.store_id)
    quantity = check_quantity(cmd.quantity)
    return await _apply_movement(
        uow,
        viewer,
        store_id=cmd.store_id,
        source=MovementSource.RESTOCK,
        reference=clean_reference(cmd.reference, ["reference"]),
        lines=(MovementLine(cmd.sku_id, quantity),),
        reason=clean_reason(cmd.reason, required=False),
        line_field=None,
        key_field="reference",
    )


async def adjust_stock(cmd: AdjustStock, *, uow: UnitOfWork, viewer: Viewer) -> Movement:
    """Correct a level after a count, breakage or waste; the reason is kept in the ledger."""
    require_store_manager(viewer, cmd.store_id)
    delta = check_delta(cmd.delta)
    return await _apply_movement(
        uow,
        viewer,
        store_id=cmd.store_id,
        source=MovementSource.ADJUSTMENT,
        reference=clean_reference(cmd.reference, ["reference"]),
        lines=(MovementLine(cmd.sku_id, delta),),
        reason=clean_reason(cmd.reason, required=True),
        line_field=None,
        key_field="reference",
    )


async def set_sold_out(cmd: SetSoldOut, *, uow: UnitOfWork, viewer: Viewer) -> StockLevel:
    """Mark a made-to-order dish sold out for the day (沽清), or back on sale."""
    require_store_manager(viewer, cmd.store_id)
    async with uow:
        await _store(uow, cmd.store_id)
        sku = await _sku(uow, cmd.sku_id, ["skuId"])
        if sku.tracked:
            raise DomainError(ErrorCode.TRACKED, field=["skuId"])
        level = await uow.stock.set_sold_out(cmd.store_id, cmd.sku_id, cmd.sold_out)
        uow.record(changed(level, sku))
        await uow.commit()
    return level


async def set_low_stock_threshold(
    cmd: SetLowStockThreshold, *, uow: UnitOfWork, viewer: Viewer
) -> StockLevel:
    """Below or at this level, staff get a low-stock alert."""
    require_store_manager(viewer, cmd.store_id)
    threshold = check_threshold(cmd.threshold)
    async with uow:
        await _store(uow, cmd.store_id)
        sku = await _sku(uow, cmd.sku_id, ["skuId"])
        if not sku.tracked:
            raise DomainError(ErrorCode.NOT_TRACKED, field=["skuId"])
        level = await uow.stock.set_threshold(cmd.store_id, cmd.sku_id, threshold)
        await uow.commit()
    return level


async def _apply_movement(
    uow: UnitOfWork,
    viewer: Viewer,
    *,
    store_id: int,
    source: MovementSource,
    reference: str,
    lines: Sequence[MovementLine],
    reason: str,
    line_field: str | None,
    key_field: str,
    unless_gone: Supply | None = None,
) -> Movement:
    async with uow.unless_gone(unless_gone) if unless_gone is not None else uow:
        movement = await apply_movement(
            uow,
            actor=actor_of(viewer),
            store_id=store_id,
            source=source,
            reference=reference,
            lines=lines,
            reason=reason,
            line_field=line_field,
            key_field=key_field,
        )
        if source not in (MovementSource.RESTOCK, MovementSource.ADJUSTMENT):
            uow.wrote("StockMovement", movement.id, store_id)  # a sale: its own object
        await uow.commit()
    return movement


async def apply_movement(
    uow: UnitOfWork,
    *,
    actor: str,
    store_id: int,
    source: MovementSource,
    reference: str,
    lines: Sequence[MovementLine],
    reason: str,
    line_field: str | None,
    key_field: str,
    positions: Mapping[int, int] | None = None,
) -> Movement:
    """Apply one movement inside the caller's unit of work (a sale, or an order's hold).

    ``lines`` must be sorted by SKU (the lock order); ``positions`` maps a SKU to its index
    in the caller's input, for the field path of an error. An unknown store is
    ``NOT_FOUND``: its movement cannot be recorded.
    """
    print_ = fingerprint(lines, reason)
    kind = kind_of(source)
    # The key is claimed and the units of every line taken that can be, as one atomic
    # step; only the lines left alone (a made-to-order dish, a restock, an unknown SKU, a
    # short level) are read.
    claimed = await uow.stock.claim_and_take(
        store_id=store_id,
        source=source,
        reference=reference,
        fingerprint=print_,
        reason=reason,
        actor=actor,
        lines=tuple(lines),
        take=[line for line in lines if line.quantity < 0],
        kind=kind,
    )
    if claimed is None:
        return await _replay(uow, store_id, source, reference, print_, key_field)
    movement, taken = claimed
    left = [line.sku_id for line in lines if line.sku_id not in taken]
    found = await uow.stock.sku_stock(store_id, left) if left else {}
    changes: list[tuple[MovementLine, StockLevel]] = []
    for n, line in enumerate(lines):
        level = taken.get(line.sku_id)
        if level is None:
            at = positions.get(line.sku_id, n) if positions is not None else n
            field = [line_field, str(at)] if line_field else []
            level = await _untaken(uow, store_id, line, found.get(line.sku_id), field)
        if level is not None:
            changes.append((line, level))
    await uow.stock.add_ledger_rows(  # the lines taken have theirs already
        movement_id=movement.id,
        store_id=store_id,
        kind=kind,
        rows=[
            (line.sku_id, line.quantity, level.available or 0)
            for line, level in changes
            if line.sku_id not in taken
        ],
    )
    for line, level in changes:
        uow.record(tracked_changed(level))
        _record_shelf(uow, level, line.quantity)
        alert = low_stock_crossed((level.available or 0) - line.quantity, level)
        if alert is not None:
            uow.record(alert)
    return movement


async def _untaken(
    uow: UnitOfWork, store_id: int, line: MovementLine, stock: SkuStock | None, field: list[str]
) -> StockLevel | None:
    """A line the conditional take left alone: units put back on a tracked level, a
    made-to-order dish passed over (None), or why it cannot be taken."""
    if stock is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=[*field, "skuId"])
    if not stock.tracked:
        # Returning a made-to-order dish puts nothing back; selling one needs it on sale.
        if line.quantity < 0 and stock.sold_out:
            raise DomainError(ErrorCode.SOLD_OUT, field=[*field, "skuId"])
        return None
    level = (
        await uow.stock.change_level(store_id, line.sku_id, line.quantity)
        if line.quantity > 0
        else None
    )
    if level is None:
        available = stock.available or 0
        if available == 0:
            uow.board.saw_gone(shelf(store_id, line.sku_id))
        raise DomainError(ErrorCode.OUT_OF_STOCK, field=[*field, "quantity"], available=available)
    return level


def _record_shelf(uow: UnitOfWork, level: StockLevel, delta: int) -> None:
    """The shelf emptied, or got units back: every process's board hears it."""
    if delta > 0 or level.available == 0:
        supply = shelf(level.store_id, level.sku_id)
        uow.record(supply_changed(supply, gone=delta < 0, version=level.version))


async def _replay(
    repos: Repositories,
    store_id: int,
    source: MovementSource,
    reference: str,
    print_: str,
    key_field: str,
) -> Movement:
    movement = await repos.stock.movement_by_key(store_id, source, reference)
    if movement is None:  # the key was free: the store is unknown
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    if movement.fingerprint != print_:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=[key_field])
    return movement


async def _store(uow: UnitOfWork, store_id: int) -> None:
    if await uow.catalog.get_store(store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])


async def _sku(uow: UnitOfWork, sku_id: int, field: list[str]) -> Sku:
    sku = await uow.catalog.get_sku(sku_id)
    if sku is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=field)
    return sku
