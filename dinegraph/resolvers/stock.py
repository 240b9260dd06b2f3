"""Reads of stock: the ledger of a store's SKU and movements by id."""

from __future__ import annotations

import base64

from dinegraph.context import Context
from dinegraph.db.queries import LedgerRow
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import require_stock_reader
from dinegraph.domain.stock import Movement
from dinegraph.resolvers.pagination import Page

_PREFIX = "ledger:"


def _cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{row_id}".encode()).decode()


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"]) from exc
    number = raw.removeprefix(_PREFIX)
    if not raw.startswith(_PREFIX) or not number.isdigit():
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"])
    return int(number)


async def ledger_page(
    ctx: Context, *, store_id: int, sku_id: int | None, first: int | None, after: str | None
) -> Page[LedgerRow]:
    """Newest first; pages by row id, so rows added meanwhile never shift a page."""
    require_stock_reader(ctx.viewer, store_id)
    size = 20 if first is None else first
    limit = ctx.settings.max_page_size
    if not 0 <= size <= limit:
        raise DomainError(ErrorCode.PAGE_SIZE_TOO_LARGE, field=["first"], max=limit)
    before = _after(after)
    rows = await ctx.reads.ledger_rows(
        store_id=store_id, sku_id=sku_id, before_id=before, limit=size + 1
    )
    return Page(
        items=[(_cursor(r.id), r) for r in rows[:size]],
        has_next_page=len(rows) > size,
        has_previous_page=before is not None,
        total_count=None,
    )


async def visible_movements(ctx: Context, ids: list[int]) -> list[Movement | None]:
    found = {m.id: m for m in await ctx.reads.movements_by_ids(ids)}
    visible: list[Movement | None] = []
    for movement_id in ids:
        movement = found.get(movement_id)
        try:
            if movement is not None:
                require_stock_reader(ctx.viewer, movement.store_id)
        except DomainError:
            movement = None
        visible.append(movement)
    return visible
