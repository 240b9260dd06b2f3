"""Refund mutations: the member asks, the store's staff approve or refuse (staff's direct
refund is ``refundOrder``, with the order mutations)."""

from __future__ import annotations

import strawberry

from dinegraph.context import Context
from dinegraph.domain.refunds import RefundLine
from dinegraph.domain.services import refunds as service
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import UserError
from dinegraph.schema.errors import attempt
from dinegraph.schema.order_mutations import RefundLineInput
from dinegraph.schema.orders import OrderNode
from dinegraph.schema.refunds import RefundNode

Info = strawberry.Info[Context, None]


@strawberry.input
class RequestRefundInput:
    order_id: strawberry.ID
    reason: str
    idempotency_key: str = strawberry.field(
        description="Made once per request by the client: a retry returns the same refund."
    )
    lines: list[RefundLineInput] | None = strawberry.field(
        default=None, description="Units to refund; everything not yet refunded when left out."
    )


@strawberry.input
class ApproveRefundInput:
    refund_id: strawberry.ID


@strawberry.input
class RefuseRefundInput:
    refund_id: strawberry.ID
    reason: str = strawberry.field(description="Shown to the member.")


@strawberry.type
class RefundPayload:
    refund: RefundNode | None
    order: OrderNode | None = strawberry.field(description="The order as the refund left it.")
    errors: list[UserError]


def _payload(found: service.RefundResult | None, errors: list[UserError]) -> RefundPayload:
    return RefundPayload(
        refund=RefundNode.of(found.refund) if found else None,
        order=OrderNode.of(found.order) if found else None,
        errors=errors,
    )


@strawberry.type
class RefundMutation:
    @strawberry.mutation(
        description="The order's member asks for a refund of a paid order, at any stage; the "
        "store's staff decide. One request of an order waits at a time (REFUND_PENDING)."
    )
    async def request_refund(self, info: Info, input: RequestRefundInput) -> RefundPayload:
        ctx = info.context

        async def run() -> service.RefundResult:
            cmd = service.RequestRefund(
                order_id=decode_id(input.order_id, "Order", ["orderId"]),
                lines=(
                    [RefundLine(line.line_id, line.quantity) for line in input.lines]
                    if input.lines is not None
                    else None
                ),
                reason=input.reason,
                idempotency_key=input.idempotency_key,
                now=ctx.now(),
            )
            return await ctx.run(service.request_refund, cmd)

        return _payload(*await attempt(info, run))

    @strawberry.mutation(
        description="Staff of the order's store approve a refund request: stock, coupon and "
        "points are given back as the order stands now, and the money is sent back."
    )
    async def approve_refund(self, info: Info, input: ApproveRefundInput) -> RefundPayload:
        ctx = info.context

        async def run() -> service.RefundResult:
            cmd = service.ApproveRefund(
                refund_id=decode_id(input.refund_id, "Refund", ["refundId"]),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(service.approve_refund, cmd)

        return _payload(*await attempt(info, run))

    @strawberry.mutation(
        description="Staff of the order's store refuse a refund request, with a reason."
    )
    async def refuse_refund(self, info: Info, input: RefuseRefundInput) -> RefundPayload:
        ctx = info.context

        async def run() -> service.RefundResult:
            cmd = service.RefuseRefund(
                refund_id=decode_id(input.refund_id, "Refund", ["refundId"]),
                reason=input.reason,
                now=ctx.now(),
            )
            return await ctx.run(service.refuse_refund, cmd)

        return _payload(*await attempt(info, run))
