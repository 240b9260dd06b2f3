"""The audit log as GraphQL: its entries, their filter, and the ``auditLog`` connection."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import audit as domain
from dinegraph.resolvers import audit as resolve
from dinegraph.resolvers.ids import decode_any_id, decode_id, encode_id
from dinegraph.schema.common import ErrorCode, page_info
from dinegraph.schema.errors import raise_for_query

Info = strawberry.Info[Context, None]

strawberry.enum(domain.ActorKind, name="AuditActorKind", description="Who made a change.")
strawberry.enum(domain.Outcome, name="AuditOutcome", description="Done, or refused for rights.")


def _gid(type_name: str | None, row_id: int | None) -> strawberry.ID | None:
    if type_name is None or row_id is None:
        return None
    return strawberry.ID(encode_id(type_name, row_id))


@strawberry.type(description="One staff, partner or CLI write (or refused attempt).")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor_kind: domain.ActorKind
    credential: str = strawberry.field(
        description='The credential used: "staff:<id>", "api_key:<id>" or "cli".'
    )
    staff_id: strawberry.ID | None = strawberry.field(description="The staff account (Staff).")
    api_key_id: strawberry.ID | None = strawberry.field(description="The API key (ApiKey).")
    action: str = strawberry.field(
        description="The mutation (restock) or CLI command (create-api-key)."
    )
    outcome: domain.Outcome
    error_code: ErrorCode | None = strawberry.field(description="Why it was DENIED.")
    object_type: str | None
    object_id: strawberry.ID | None = strawberry.field(description="The object written.")
    store_id: strawberry.ID | None
    client_address: str | None
    summary: str = strawberry.field(
        description="The input, short; secrets and personal data are ***."
    )

    @classmethod
    def of(cls, record: domain.AuditRecord) -> AuditEntry:
        e = record.entry
        return cls(
            id=strawberry.ID(encode_id("AuditEntry", record.id)),
            at=e.at,
            actor_kind=e.actor_kind,
            credential=e.credential,
            staff_id=_gid("Staff", e.staff_id),
            api_key_id=_gid("ApiKey", e.api_key_id),
            action=e.action,
            outcome=e.outcome,
            error_code=ErrorCode(e.error_code) if e.error_code in _CODES else None,
            object_type=e.object_type,
            object_id=_gid(e.object_type, e.object_id),
            store_id=_gid("Store", e.store_id),
            client_address=e.client_address,
            summary=e.summary,
        )


_CODES = {code.value for code in ErrorCode}


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntry


@strawberry.type(description="Audit entries, newest first.")
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: relay.PageInfo


@strawberry.input(description="Every filter given must hold.")
class AuditLogFilter:
    actor_kind: domain.ActorKind | None = None
    staff_id: strawberry.ID | None = None
    api_key_id: strawberry.ID | None = None
    action: str | None = None
    object_id: strawberry.ID | None = strawberry.field(
        default=None, description="The global ID of the object written (an order, a SKU)."
    )
    store_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(name="from", default=None, description="Inclusive.")
    to: datetime | None = strawberry.field(default=None, description="Exclusive.")

    def decoded(self) -> domain.AuditFilter:
        object_type, object_id = (
            decode_any_id(self.object_id, ["filter", "objectId"])
            if self.object_id
            else (None, None)
        )
        return domain.AuditFilter(
            actor_kind=self.actor_kind,
            staff_id=decode_id(self.staff_id, "Staff", ["filter", "staffId"])
            if self.staff_id
            else None,
            api_key_id=decode_id(self.api_key_id, "ApiKey", ["filter", "apiKeyId"])
            if self.api_key_id
            else None,
            action=self.action,
            object_type=object_type,
            object_id=object_id,
            store_id=decode_id(self.store_id, "Store", ["filter", "storeId"])
            if self.store_id
            else None,
            since=self.from_,
            until=self.to,
        )


async def audit_log(
    info: Info,
    filter: AuditLogFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> AuditEntryConnection:
    with raise_for_query(info):
        domain.require_audit_reader(info.context.viewer)
        where = domain.check_filter(filter.decoded() if filter else domain.AuditFilter())
        page = await resolve.audit_page(info.context, where, first=first, after=after)
    return AuditEntryConnection(
        edges=[AuditEntryEdge(cursor=c, node=AuditEntry.of(r)) for c, r in page.items],
        page_info=page_info(page),
    )
