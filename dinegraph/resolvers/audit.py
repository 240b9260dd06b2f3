"""The audit log from the GraphQL side: the entry a mutation will record, and its pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from dinegraph.context import Context
from dinegraph.domain.audit import (
    DENIED_CODES,
    AuditDraft,
    AuditEntry,
    AuditFilter,
    AuditRecord,
    Outcome,
    actor,
    require_audit_reader,
    summarise,
)
from dinegraph.domain.errors import DomainError
from dinegraph.resolvers.ids import decode_any_id
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size

# The argument that names what a mutation writes, most specific first (an order before its
# store); a service that creates its object names it instead (``UnitOfWork.wrote``).
_SUBJECTS = (
    "orderId",
    "deliveryId",
    "bargainId",
    "campaignId",
    "templateId",
    "skuId",
    "productId",
    "categoryId",
    "memberId",
    "riderId",
    "id",
    "storeId",
)


def _decoded(value: object) -> tuple[str, int] | None:
    if not isinstance(value, str):
        return None
    try:
        return decode_any_id(value, [])
    except DomainError:
        return None  # the mutation itself refuses it


def _subject(arguments: Mapping[str, object]) -> tuple[str | None, int | None, int | None]:
    """(object type, object id, store id) named by the arguments, or inside ``input``."""
    inner = arguments.get("input")
    fields = inner if isinstance(inner, Mapping) else arguments
    store = _decoded(fields.get("storeId"))
    store_id = store[1] if store is not None and store[0] == "Store" else None
    for name in _SUBJECTS:
        found = _decoded(fields.get(name))
        if found is not None:
            return found[0], found[1], store_id
    return None, None, store_id


def begin(
    ctx: Context, action: str, arguments: Callable[[], Mapping[str, object]]
) -> AuditDraft | None:
    """The entry a staff or partner mutation records when it commits; None for others
    (whose arguments are not even looked at)."""
    who = actor(ctx.viewer)
    if who is None:
        return None
    given = arguments()
    object_type, object_id, store_id = _subject(given)
    return AuditDraft(
        AuditEntry(
            at=ctx.now(),
            actor_kind=who.kind,
            credential=who.credential,
            staff_id=who.staff_id,
            api_key_id=who.api_key_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            store_id=store_id,
            client_address=ctx.client_ip[:64],
            summary=summarise(given),
        )
    )


async def record_refusal(ctx: Context, draft: AuditDraft, error: DomainError) -> None:
    """A write refused for want of rights is kept as DENIED, in a transaction of its own;
    other refusals are not kept (see ``domain.audit``)."""
    if draft.written or error.code not in DENIED_CODES:
        return
    denied = replace(draft.entry, outcome=Outcome.DENIED, error_code=error.code.value)
    await ctx.audit_log.append(denied)
    draft.written = True


async def audit_page(
    ctx: Context, where: AuditFilter, *, first: int | None, after: str | None
) -> Page[AuditRecord]:
    """Newest first (by id: pages never shift as entries arrive); head office only."""
    require_audit_reader(ctx.viewer)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("audit", after)
    rows = await ctx.audit_log.entries(where, before_id=before, limit=size + 1)
    return keyset_page(rows, size=size, kind="audit", key=lambda r: r.id, after=before)
