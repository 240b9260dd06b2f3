"""Order mutations: placing, paying (development adapter), moving along and refunding."""

from __future__ import annotations

import strawberry

from dinegraph.context import Context
from dinegraph.domain import orders as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.payments import PaymentRequest
from dinegraph.domain.refunds import RefundLine
from dinegraph.domain.services import orders as service
from dinegraph.domain.services.checkout import Placed, PlaceOrder, StoresRefused, place_order
from dinegraph.domain.services.checkout_payments import (
    PaymentStarted,
    StartPayment,
    start_payment,
)
from dinegraph.domain.services.payments import PayInDevelopment, pay_in_development
from dinegraph.domain.services.refunds import RefundOrder, refund_order
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import UserError
from dinegraph.schema.errors import attempt
from dinegraph.schema.order_quotes import AddressInput, OrderLineInput, StoreRefusal, to_checkout
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]


@strawberry.input
class PlaceOrderInput:
    idempotency_key: str = strawberry.field(
        description="Made once per checkout by the client: a retry returns the same order."
    )
    channel: Channel
    lines: list[OrderLineInput]
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Pins the store (pickup, dine-in); delivery is routed without."
    )
    address: AddressInput | None = None
    coupon_id: strawberry.ID | None = None
    note: str | None = None


@strawberry.type
class PlaceOrderPayload:
    order: OrderNode | None
    replayed: bool = strawberry.field(
        description="True when this idempotency key placed the order before."
    )
    store_refusals: list[StoreRefusal] = strawberry.field(
        description="With NO_STORE_CAN_SERVE: why each nearby store cannot."
    )
    errors: list[UserError]


@strawberry.type
class OrderPayload:
    order: OrderNode | None
    errors: list[UserError]


@strawberry.input
class UpdateOrderStatusInput:
    order_id: strawberry.ID
    status: domain.OrderStatus


@strawberry.input
class RefundLineInput:
    line_id: int
    quantity: int


@strawberry.input
class RefundOrderInput:
    order_id: strawberry.ID
    reason: str
    idempotency_key: str = strawberry.field(description="A retry with it refunds nothing more.")
    lines: list[RefundLineInput] | None = strawberry.field(
        default=None, description="Units to refund; everything not yet refunded when left out."
    )


@strawberry.type(description="What wx.requestPayment takes, signed: pass it as it is.")
class WechatPayment:
    app_id: str
    time_stamp: str
    nonce_str: str
    package: str = strawberry.field(description='"prepay_id=…"')
    sign_type: str
    pay_sign: str

    @classmethod
    def of(cls, request: PaymentRequest) -> WechatPayment:
        return cls(
            app_id=request.app_id,
            time_stamp=request.time_stamp,
            nonce_str=request.nonce_str,
            package=request.package,
            sign_type=request.sign_type,
            pay_sign=request.pay_sign,
        )


@strawberry.type
class PayOrderPayload:
    order: OrderNode | None
    wechat_payment: WechatPayment | None = strawberry.field(
        description="With WeChat Pay: call wx.requestPayment with it; the order turns PAID "
        "when WeChat Pay tells the server (follow orderUpdates)."
    )
    errors: list[UserError]


def _order_payload(found: domain.Order | None, errors: list[UserError]) -> OrderPayload:
    return OrderPayload(order=OrderNode.of(found) if found else None, errors=errors)


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Place an order: routed, priced, stock held and coupon locked, at once."
    )
    async def place_order(self, info: Info, input: PlaceOrderInput) -> PlaceOrderPayload:
        ctx = info.context
        refusals: list[StoreRefusal] = []

        async def run() -> Placed:
            cmd = PlaceOrder(
                idempotency_key=input.idempotency_key,
                checkout=to_checkout(
                    input.channel,
                    input.lines,
                    input.store_id,
                    input.address,
                    input.coupon_id,
                    input.note,
                ),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            try:
                return await ctx.run(place_order, cmd)
            except StoresRefused as error:
                refusals.extend(
                    StoreRefusal(reason=r, store_id=s) for s, r in error.refusals.items()
                )
                raise

        placed, errors = await attempt(info, run)
        return PlaceOrderPayload(
            order=OrderNode.of(placed.order) if placed else None,
            replayed=placed.replayed if placed else False,
            store_refusals=refusals,
            errors=errors,
        )

    @strawberry.mutation(
        description="Pay the viewer's order. With WeChat Pay: the signed parameters of "
        "wx.requestPayment (a still-valid prepay is handed out again). The development "
        "payment adapter marks the order paid at once."
    )
    async def pay_order(self, info: Info, order_id: strawberry.ID) -> PayOrderPayload:
        ctx = info.context

        async def run() -> PaymentStarted | domain.Order:
            order = decode_id(order_id, "Order", ["orderId"])
            payments = ctx.checkout_payments()
            if payments is not None:
                started = StartPayment(order_id=order, now=ctx.now(), payments=payments)
                return await ctx.run(start_payment, started)
            if not ctx.settings.pays_in_development:
                raise DomainError(ErrorCode.NOT_AVAILABLE)
            return await ctx.run(pay_in_development, PayInDevelopment(order, ctx.now()))

        result, errors = await attempt(info, run)
        if isinstance(result, PaymentStarted):
            return PayOrderPayload(
                order=OrderNode.of(result.order),
                wechat_payment=WechatPayment.of(result.request),
                errors=errors,
            )
        order = OrderNode.of(result) if result is not None else None
        return PayOrderPayload(order=order, wechat_payment=None, errors=errors)

    @strawberry.mutation(
        description="Staff of the store move an order along; its member may cancel it before "
        "it is ACCEPTED."
    )
    async def update_order_status(self, info: Info, input: UpdateOrderStatusInput) -> OrderPayload:
        ctx = info.context

        async def run() -> domain.Order:
            cmd = service.UpdateOrderStatus(
                order_id=decode_id(input.order_id, "Order", ["orderId"]),
                status=input.status,
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(service.update_order_status, cmd)

        return _order_payload(*await attempt(info, run))

    @strawberry.mutation(description="Refund an order in full or some of its units (store staff).")
    async def refund_order(self, info: Info, input: RefundOrderInput) -> OrderPayload:
        ctx = info.context

        async def run() -> domain.Order:
            cmd = RefundOrder(
                order_id=decode_id(input.order_id, "Order", ["orderId"]),
                lines=(
                    [RefundLine(line.line_id, line.quantity) for line in input.lines]
                    if input.lines is not None
                    else None
                ),
                reason=input.reason,
                idempotency_key=input.idempotency_key,
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(refund_order, cmd)

        return _order_payload(*await attempt(info, run))
