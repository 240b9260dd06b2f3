"""Calls out as head office sees them: pages of calls by status and kind, and a retry."""

from __future__ import annotations

from dinegraph.context import Context
from dinegraph.domain.calls import (
    KIND_MAX,
    OutboundCallStatus,
    RecordedCall,
    require_calls_operator,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


async def calls_page(
    ctx: Context,
    *,
    statuses: list[OutboundCallStatus] | None,
    kind: str | None,
    first: int | None,
    after: str | None,
) -> Page[RecordedCall]:
    """Newest first; pages by row id, so calls recorded meanwhile never shift a page."""
    require_calls_operator(ctx.viewer)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("call", after)
    if kind is not None and len(kind) > KIND_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["kind"], max=KIND_MAX)
    rows = await ctx.services.calls.page(
        statuses=statuses, kind=kind, before_id=before, limit=size + 1
    )
    return keyset_page(rows, size=size, kind="call", key=lambda r: r.id, after=before)


async def visible_calls(ctx: Context, ids: list[int]) -> list[RecordedCall | None]:
    try:
        require_calls_operator(ctx.viewer)
    except DomainError:
        return [None] * len(ids)
    return [await ctx.services.calls.get(i) for i in ids]


async def retry_call(ctx: Context, call_id: int) -> RecordedCall:
    """Put a FAILED call back to PENDING, due now; its attempts count afresh."""
    require_calls_operator(ctx.viewer)
    again = await ctx.services.calls.retry(call_id)
    if again is not None:
        return again
    if await ctx.services.calls.get(call_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
    raise DomainError(ErrorCode.INVALID_TRANSITION, field=["id"])
