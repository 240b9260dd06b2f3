"""Orders from a store's till and the takeaway platforms: recording and cancelling them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dinegraph.context import Context
from dinegraph.domain import orders as domain
from dinegraph.domain import partner_orders as partner
from dinegraph.domain.catalog import Channel
from dinegraph.domain.services import partner_orders as service
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import UserError
from dinegraph.schema.errors import attempt
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]


@strawberry.input
class PartnerOrderLineInput:
    sku_id: strawberry.ID
    quantity: int
    unit_price_fen: int | None = strawberry.field(
        default=None,
        description="What the customer was charged per unit; the store's price when left out.",
    )
    note: str = strawberry.field(default="", description="For this line, e.g. 不要香菜.")


@strawberry.input
class RecordPartnerOrderInput:
    store_id: strawberry.ID
    source: domain.OrderSource = strawberry.field(description="The till (POS) or the platform.")
    external_id: str = strawberry.field(
        description="The order's id at the source; with the source it names one order, so a "
        "retry records nothing twice."
    )
    lines: list[PartnerOrderLineInput]
    fulfilment: Channel = strawberry.field(
        description="DINE_IN, PICKUP (自取/takeaway) or DELIVERY."
    )
    paid_fen: int = strawberry.field(description="What the customer paid, in fen.")
    table_no: str | None = None
    pickup_code: str | None = strawberry.field(default=None, description="The platform's 取餐号.")
    customer_note: str = ""
    pickup_at: datetime | None = strawberry.field(
        default=None, description="When the customer or the platform's rider comes for it."
    )
    placed_at: datetime | None = strawberry.field(
        default=None, description="When the customer ordered; now when left out."
    )


@strawberry.input
class CancelPartnerOrderInput:
    source: domain.OrderSource
    external_id: str
    reason: str = ""


@strawberry.type
class RecordPartnerOrderPayload:
    order: OrderNode | None
    replayed: bool = strawberry.field(
        description="True when this external order was recorded before."
    )
    errors: list[UserError]


@strawberry.type
class CancelPartnerOrderPayload:
    order: OrderNode | None
    errors: list[UserError]


@strawberry.type
class PartnerOrderMutation:
    @strawberry.mutation(
        description="A partner (API key with orders:write for the store) records an order taken "
        "at the till or on a takeaway platform: its stock is sold and it lands on the store's "
        "order board."
    )
    async def record_partner_order(
        self, info: Info, input: RecordPartnerOrderInput
    ) -> RecordPartnerOrderPayload:
        ctx = info.context

        async def run() -> service.Recorded:
            cmd = partner.RecordPartnerOrder(
                store_id=decode_id(input.store_id, "Store", ["storeId"]),
                source=input.source,
                external_id=input.external_id,
                lines=tuple(
                    partner.PartnerLine(
                        decode_id(line.sku_id, "Sku", ["lines", str(n), "skuId"]),
                        line.quantity,
                        line.unit_price_fen,
                        line.note,
                    )
                    for n, line in enumerate(input.lines)
                ),
                fulfilment=input.fulfilment,
                paid_fen=input.paid_fen,
                now=ctx.now(),
                table_no=input.table_no,
                pickup_code=input.pickup_code,
                customer_note=input.customer_note,
                pickup_at=input.pickup_at,
                placed_at=input.placed_at,
            )
            return await ctx.run(service.record_partner_order, cmd)

        recorded, errors = await attempt(info, run)
        return RecordPartnerOrderPayload(
            order=OrderNode.of(recorded.order) if recorded else None,
            replayed=recorded.replayed if recorded else False,
            errors=errors,
        )

    @strawberry.mutation(
        description="The platform (or the till) cancelled a partner's order: it leaves the "
        "board and its stock goes back. Cancelling it again changes nothing."
    )
    async def cancel_partner_order(
        self, info: Info, input: CancelPartnerOrderInput
    ) -> CancelPartnerOrderPayload:
        ctx = info.context

        async def run() -> domain.Order:
            cmd = partner.CancelPartnerOrder(
                source=input.source,
                external_id=input.external_id,
                reason=input.reason,
                now=ctx.now(),
            )
            return await ctx.run(service.cancel_partner_order, cmd)

        found, errors = await attempt(info, run)
        return CancelPartnerOrderPayload(
            order=OrderNode.of(found) if found else None, errors=errors
        )
