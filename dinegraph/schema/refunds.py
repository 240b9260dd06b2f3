"""GraphQL types and queries of refunds: what the member and the store see of each refund
of an order as it goes from request to money back. The mutations are in refund_mutations.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import refunds as domain
from dinegraph.domain.identity import works_at
from dinegraph.resolvers import refunds as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.resolvers.pagination import Page
from dinegraph.schema.common import Money, page_info
from dinegraph.schema.errors import raise_for_query
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]

strawberry.enum(
    domain.RefundStatus,
    name="RefundStatus",
    description="REQUESTED → APPROVED → SUBMITTED → REFUNDED; or REFUSED by the store, or "
    "FAILED at the payment provider.",
)
strawberry.enum(domain.Requester, name="RefundRequester")


@strawberry.type(name="RefundLine", description="Units of one order line the refund covers.")
class RefundLineView:
    line_id: int = strawberry.field(description="The order line's number (Order.lines.lineId).")
    quantity: int


@strawberry.type(name="Refund", description="A refund of an order, as it goes along.")
class RefundNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.RefundStatus
    amount_fen: int = strawberry.field(
        description="What goes back, in fen: as planned when asked, as granted once approved."
    )
    reason: str = strawberry.field(description="Why it was asked for.")
    refusal_reason: str | None = strawberry.field(
        description="The store's reason, if REFUSED; the payment provider's, if FAILED."
    )
    requested_by: domain.Requester
    requested_at: datetime
    updated_at: datetime = strawberry.field(description="When its status last changed.")
    refund: strawberry.Private[domain.Refund]

    @classmethod
    def of(cls, r: domain.Refund) -> RefundNode:
        return cls(
            id=r.id,
            status=r.status,
            amount_fen=r.amount_fen,
            reason=r.reason,
            refusal_reason=r.refusal_reason,
            requested_by=r.requester,
            requested_at=r.requested_at,
            updated_at=r.updated_at,
            refund=r,
        )

    @strawberry.field
    def amount(self) -> Money:
        return Money.of(self.refund.amount_fen)

    @strawberry.field
    def lines(self) -> list[RefundLineView]:
        return [RefundLineView(line_id=x.line_no, quantity=x.quantity) for x in self.refund.lines]

    @strawberry.field
    async def order(self, info: Info) -> OrderNode | None:
        found = await info.context.loaders.order.load(self.refund.order_id)
        return OrderNode.of(found) if found else None

    @strawberry.field(
        description="The payment provider's id of the refund, once it took it; for the "
        "store's staff (null for others)."
    )
    async def provider_refund_id(self, info: Info) -> str | None:
        order = await info.context.loaders.order.load(self.refund.order_id)
        if order is None or not works_at(info.context.viewer, order.store_id):
            return None
        return self.refund.provider_refund_id

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[RefundNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(r) if r else None for r in await resolve.visible_refunds(info.context, ids)]


@strawberry.type
class RefundEdge:
    cursor: str
    node: RefundNode


@strawberry.type
class RefundConnection:
    edges: list[RefundEdge]
    page_info: relay.PageInfo


def _connection(page: Page[domain.Refund]) -> RefundConnection:
    return RefundConnection(
        edges=[RefundEdge(cursor=c, node=RefundNode.of(r)) for c, r in page.items],
        page_info=page_info(page),
    )


async def order_refunds(info: Info, order_id: int) -> list[RefundNode]:
    return [RefundNode.of(r) for r in await resolve.refunds_of_order(info.context, order_id)]


# --- queries --------------------------------------------------------------------------


async def store_refund_requests(
    info: Info,
    store_id: strawberry.ID,
    status: list[domain.RefundStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> RefundConnection:
    with raise_for_query(info):
        page = await resolve.store_refunds(
            info.context,
            decode_id(store_id, "Store", ["storeId"]),
            statuses=status if status else [domain.RefundStatus.REQUESTED],
            first=first,
            after=after,
        )
    return _connection(page)
