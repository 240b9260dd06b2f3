"""GraphQL of calls out (head office): the calls that are stuck, and a retry of one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import calls as domain
from dinegraph.resolvers import calls as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.common import UserError, page_info
from dinegraph.schema.errors import attempt, raise_for_query

Info = strawberry.Info[Context, None]

OutboundCallStatus = domain.OutboundCallStatus
strawberry.enum(
    OutboundCallStatus,
    name="OutboundCallStatus",
    description="PENDING: to be made (again); DONE: the provider took it; FAILED: refused, "
    "or out of attempts, for an operator to look at.",
)


@strawberry.type(
    name="OutboundCall",
    description="A call to an outside system (a refund, a courier, a text message) recorded "
    "with the change that wanted it and made after it (head office).",
)
class OutboundCallNode(relay.Node):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description='"<provider>.<action>", e.g. "sms.login_code".')
    key: str = strawberry.field(description="The provider's idempotency key.")
    status: OutboundCallStatus
    attempts: int = strawberry.field(description="Attempts made since it was recorded or retried.")
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed, in short (no personal data)."
    )
    next_attempt_at: datetime = strawberry.field(description="When a PENDING call is tried next.")
    created_at: datetime
    done_at: datetime | None

    @classmethod
    def of(cls, call: domain.RecordedCall) -> OutboundCallNode:
        return cls(
            id=call.id,
            kind=call.kind,
            key=call.key,
            status=call.status,
            attempts=call.attempts,
            last_error=call.last_error,
            next_attempt_at=call.next_attempt_at,
            created_at=call.created_at,
            done_at=call.done_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[OutboundCallNode | None]:
        found = await resolve.visible_calls(info.context, node_row_ids(node_ids))
        return [cls.of(c) if c else None for c in found]


@strawberry.type(description="Calls out, newest first.")
class OutboundCallConnection(relay.Connection[OutboundCallNode]):
    pass


async def outbound_calls(
    info: Info,
    status: list[OutboundCallStatus] | None = None,
    kind: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> OutboundCallConnection:
    with raise_for_query(info):
        page = await resolve.calls_page(
            info.context, statuses=status, kind=kind, first=first, after=after
        )
    return OutboundCallConnection(
        edges=[relay.Edge(cursor=c, node=OutboundCallNode.of(r)) for c, r in page.items],
        page_info=page_info(page),
    )


@strawberry.input
class RetryOutboundCallInput:
    id: strawberry.ID


@strawberry.type
class RetryOutboundCallPayload:
    call: OutboundCallNode | None
    errors: list[UserError]


@strawberry.type
class CallsOutMutation:
    @strawberry.mutation(
        description="Put a FAILED call out back to PENDING, to be made now (head office)."
    )
    async def retry_outbound_call(
        self, info: Info, input: RetryOutboundCallInput
    ) -> RetryOutboundCallPayload:
        async def run() -> domain.RecordedCall:
            call_id = decode_id(input.id, "OutboundCall", ["id"])
            return await resolve.retry_call(info.context, call_id)

        call, errors = await attempt(info, run)
        return RetryOutboundCallPayload(
            call=OutboundCallNode.of(call) if call else None, errors=errors
        )
