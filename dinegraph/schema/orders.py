"""GraphQL types, queries, mutations and feeds of orders."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import orders as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.checkout import Checkout, LineRequest
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import DeliveryWaiver
from dinegraph.domain.identity import can_read_member, sees_order_address, works_at
from dinegraph.domain.quotes import CouponProblem, LineProblem, PricedLine, Quote
from dinegraph.domain.refunds import RefundLine
from dinegraph.domain.routing import CannotServe
from dinegraph.domain.services import orders as service
from dinegraph.domain.services.checkout import Placed, PlaceOrder, StoresRefused, place_order
from dinegraph.domain.services.payments import PayInDevelopment, pay_in_development
from dinegraph.domain.services.refunds import RefundOrder, refund_order
from dinegraph.resolvers import coupons as coupon_reads
from dinegraph.resolvers import orders as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.resolvers.pagination import Page
from dinegraph.schema.catalog import SkuNode, SpecOption, StoreNode, sku_at
from dinegraph.schema.common import DeliveryAddress, GeoPoint, Money, UserError, page_info
from dinegraph.schema.coupons import CouponNode
from dinegraph.schema.delivery import DeliveryNode
from dinegraph.schema.errors import attempt, live, raise_for_query

Info = strawberry.Info[Context, None]

strawberry.enum(domain.OrderStatus, name="OrderStatus")
strawberry.enum(LineProblem, name="OrderLineProblem", description="Why a line cannot be ordered.")
strawberry.enum(CouponProblem, name="OrderCouponProblem", description="Why the coupon is left out.")
strawberry.enum(DeliveryWaiver, name="DeliveryWaiver", description="Why delivery is free.")
strawberry.enum(CannotServe, name="StoreRefusalReason", description="Why a store cannot serve.")


# --- inputs ---------------------------------------------------------------------------


@strawberry.input(description="Where to deliver, and to whom.")
class AddressInput:
    lat: float
    lng: float
    detail: str
    contact_name: str
    contact_phone: str


@strawberry.input
class OrderLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input(description="A cart to price: routed to the best store unless one is given.")
class QuoteOrderInput:
    channel: Channel
    lines: list[OrderLineInput]
    store_id: strawberry.ID | None = None
    address: AddressInput | None = None
    coupon_id: strawberry.ID | None = None


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


def _checkout(
    channel: Channel,
    lines: list[OrderLineInput],
    store_id: strawberry.ID | None,
    address: AddressInput | None,
    coupon_id: strawberry.ID | None,
    note: str | None,
) -> Checkout:
    return Checkout(
        channel=channel,
        lines=tuple(
            LineRequest(decode_id(line.sku_id, "Sku", ["lines", str(n), "skuId"]), line.quantity)
            for n, line in enumerate(lines)
        ),
        store_id=decode_id(store_id, "Store", ["storeId"]) if store_id else None,
        address=(
            domain.clean_address(
                lat=address.lat,
                lng=address.lng,
                detail=address.detail,
                contact_name=address.contact_name,
                contact_phone=address.contact_phone,
            )
            if address
            else None
        ),
        coupon_id=decode_id(coupon_id, "Coupon", ["couponId"]) if coupon_id else None,
        note=note or "",
    )


# --- the order ------------------------------------------------------------------------


def _global_id(type_name: str, raw: int | None) -> strawberry.ID | None:
    return strawberry.ID(str(relay.GlobalID(type_name, str(raw)))) if raw is not None else None


@strawberry.type
class OrderLine:
    line_id: int = strawberry.field(description="The line's number within its order.")
    name: str = strawberry.field(description="As it was called when ordered.")
    quantity: int
    refunded_quantity: int
    line: strawberry.Private[domain.OrderLine]
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, line: domain.OrderLine, store_id: int) -> OrderLine:
        return cls(
            line_id=line.line_no,
            name=line.name,
            quantity=line.quantity,
            refunded_quantity=line.refunded_quantity,
            line=line,
            store_id=store_id,
        )

    @strawberry.field
    def specs(self) -> list[SpecOption]:
        return [SpecOption(name=k, value=v) for k, v in self.line.specs.items()]

    @strawberry.field
    def unit_price(self) -> Money:
        return Money.of(self.line.unit_price_fen)

    @strawberry.field
    def amount(self) -> Money:
        return Money.of(self.line.amount_fen)

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.line.sku_id, self.store_id)


@strawberry.type(description="What the store's printer prints for the kitchen and the bag.")
class KitchenTicket:
    order_number: str
    channel: Channel
    pickup_code: str | None
    placed_at: datetime
    note: str
    lines: list[OrderLine]

    @strawberry.field(description="The ticket as plain text, ready for a receipt printer.")
    def text(self) -> str:
        head = f"#{self.pickup_code or self.order_number} {self.channel.value}"
        rows = [
            f"{line.quantity} x {line.name}"
            + (f" [{domain.spec_text(line.line.specs)}]" if line.line.specs else "")
            for line in self.lines
        ]
        tail = [f"备注: {self.note}"] if self.note else []
        return "\n".join([head, f"{self.placed_at:%Y-%m-%d %H:%M}", *rows, *tail])


@strawberry.type(name="Order", description="A member's order, totals frozen when placed.")
class OrderNode(relay.Node):
    id: relay.NodeID[int]
    status: domain.OrderStatus
    channel: Channel
    note: str
    pickup_code: str | None = strawberry.field(description="取餐号, once paid (pickup, dine-in).")
    distance_meters: int | None
    placed_at: datetime
    pay_by: datetime = strawberry.field(description="Cancelled if not paid by then.")
    paid_at: datetime | None
    completed_at: datetime | None
    version: int = strawberry.field(description="Grows with every change.")
    order: strawberry.Private[domain.Order]

    @classmethod
    def of(cls, o: domain.Order) -> OrderNode:
        return cls(
            id=o.id,
            status=o.status,
            channel=o.channel,
            note=o.note,
            pickup_code=o.pickup_code,
            distance_meters=o.distance_m,
            placed_at=o.placed_at,
            pay_by=o.pay_by,
            paid_at=o.paid_at,
            completed_at=o.completed_at,
            version=o.version,
            order=o,
        )

    @strawberry.field(description="The campaign it was placed through (group-buy, ...).")
    def campaign_id(self) -> strawberry.ID | None:
        return _global_id("Campaign", self.order.campaign_id)

    @strawberry.field(description="The group-buy this order holds a seat in.")
    def group_buy_id(self) -> strawberry.ID | None:
        return _global_id("GroupBuy", self.order.group_id)

    @strawberry.field(description="The bargain this order bought.")
    def bargain_id(self) -> strawberry.ID | None:
        return _global_id("Bargain", self.order.bargain_id)

    @strawberry.field(description="The number on receipts, e.g. 20261122000123.")
    def number(self) -> str:
        return domain.order_number(self.order.id, self.order.placed_at)

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.order.store_id)
        return StoreNode.of(found) if found else None

    async def _lines(self, info: Info) -> list[OrderLine]:
        lines = self.order.lines or tuple(
            await info.context.loaders.order_lines.load(self.order.id)
        )
        return [OrderLine.of(line, self.order.store_id) for line in lines]

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        return await self._lines(info)

    @strawberry.field
    def subtotal(self) -> Money:
        return Money.of(self.order.subtotal_fen)

    @strawberry.field(description="The member tier's discount.")
    def tier_discount(self) -> Money:
        return Money.of(self.order.tier_discount_fen)

    @strawberry.field
    def coupon_discount(self) -> Money:
        return Money.of(self.order.coupon_discount_fen)

    @strawberry.field
    def delivery_fee(self) -> Money:
        return Money.of(self.order.delivery_fee_fen)

    @strawberry.field
    def delivery_discount(self) -> Money:
        return Money.of(self.order.delivery_discount_fen)

    @strawberry.field
    def packaging_fee(self) -> Money:
        return Money.of(self.order.packaging_fee_fen)

    @strawberry.field(description="subtotal − discounts + fees; frozen when placed.")
    def total(self) -> Money:
        return Money.of(self.order.total_fen)

    @strawberry.field
    def refunded(self) -> Money:
        return Money.of(self.order.refunded_fen)

    @strawberry.field(description="Seen by the order's member and its store's staff only.")
    def address(self, info: Info) -> DeliveryAddress | None:
        a = self.order.address
        o = self.order
        if a is None or not sees_order_address(info.context.viewer, o.member_id, o.store_id):
            return None
        return DeliveryAddress(
            location=GeoPoint(lat=a.location.lat, lng=a.location.lng),
            detail=a.detail,
            contact_name=a.contact_name,
            contact_phone=a.contact_phone,
        )

    @strawberry.field(description="The coupon used; seen by its member and head office.")
    async def coupon(self, info: Info) -> CouponNode | None:
        if self.order.coupon_id is None or not can_read_member(
            info.context.viewer, self.order.member_id
        ):
            return None
        (found,) = await coupon_reads.visible_coupons(info.context, [self.order.coupon_id])
        return CouponNode.of(found) if found else None

    @strawberry.field(description="Its latest delivery (delivery orders, once dispatched).")
    async def delivery(self, info: Info) -> DeliveryNode | None:
        found = await info.context.loaders.delivery_of_order.load(self.order.id)
        return DeliveryNode.of(found) if found else None

    @strawberry.field(description="For the store's staff: the ticket to print; null for others.")
    async def kitchen_ticket(self, info: Info) -> KitchenTicket | None:
        if not works_at(info.context.viewer, self.order.store_id):
            return None
        return KitchenTicket(
            order_number=self.number(),
            channel=self.order.channel,
            pickup_code=self.order.pickup_code,
            placed_at=self.order.placed_at,
            note=self.order.note,
            lines=await self._lines(info),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[OrderNode | None]:
        ids = node_row_ids(node_ids)
        return [cls.of(o) if o else None for o in await resolve.visible_orders(info.context, ids)]


@strawberry.type
class OrderEdge:
    cursor: str
    node: OrderNode


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: relay.PageInfo


def _connection(page: Page[domain.Order]) -> OrderConnection:
    return OrderConnection(
        edges=[OrderEdge(cursor=c, node=OrderNode.of(o)) for c, o in page.items],
        page_info=page_info(page),
    )


async def member_orders(
    info: Info,
    member_id: int,
    status: list[domain.OrderStatus] | None,
    first: int | None,
    after: str | None,
) -> OrderConnection:
    with raise_for_query(info):
        page = await resolve.member_orders(
            info.context,
            member_id,
            statuses=[s.value for s in status] if status else None,
            first=first,
            after=after,
        )
    return _connection(page)


# --- quote ----------------------------------------------------------------------------


@strawberry.type
class QuoteLine:
    quantity: int
    problem: LineProblem | None = strawberry.field(description="Null when it can be ordered.")
    line: strawberry.Private[PricedLine]
    store_id: strawberry.Private[int | None]

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.line.request.sku_id, self.store_id)

    @strawberry.field
    def unit_price(self) -> Money | None:
        item = self.line.item
        return Money.of(item.unit_price_fen) if item else None

    @strawberry.field
    def amount(self) -> Money:
        return Money.of(self.line.amount_fen if self.problem is None else 0)


@strawberry.type(description="A store that cannot take the order, and why.")
class StoreRefusal:
    reason: CannotServe
    store_id: strawberry.Private[int]

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.store_id)
        return StoreNode.of(found) if found else None


@strawberry.type(description="A cart priced at the store that would serve it.")
class OrderQuote:
    distance_meters: int | None
    lines: list[QuoteLine]
    delivery_waiver: DeliveryWaiver | None
    coupon_problem: CouponProblem | None = strawberry.field(
        description="Why the coupon asked for is left out of the total."
    )
    store_problem: CannotServe | None = strawberry.field(
        description="Why the store asked for cannot take the order now."
    )
    store_refusals: list[StoreRefusal] = strawberry.field(
        description="When no store can serve: the reason of each nearby store."
    )
    placeable: bool = strawberry.field(description="placeOrder would accept this cart now.")
    quote: strawberry.Private[Quote]

    @classmethod
    def of(cls, q: Quote) -> OrderQuote:
        store_id = q.store.id if q.store else None
        return cls(
            distance_meters=q.distance_m,
            lines=[
                QuoteLine(
                    quantity=line.request.quantity,
                    problem=line.problem,
                    line=line,
                    store_id=store_id,
                )
                for line in q.lines
            ],
            delivery_waiver=q.totals.delivery_waiver,
            coupon_problem=q.coupon_problem,
            store_problem=q.store_problem,
            store_refusals=[StoreRefusal(reason=r, store_id=s) for s, r in q.refusals.items()],
            placeable=q.placeable and q.coupon_problem is None,
            quote=q,
        )

    @strawberry.field
    def store(self) -> StoreNode | None:
        return StoreNode.of(self.quote.store, self.quote.distance_m) if self.quote.store else None

    @strawberry.field
    def subtotal(self) -> Money:
        return Money.of(self.quote.totals.subtotal_fen)

    @strawberry.field
    def tier_discount(self) -> Money:
        return Money.of(self.quote.totals.tier_discount_fen)

    @strawberry.field
    def coupon_discount(self) -> Money:
        return Money.of(self.quote.totals.coupon_discount_fen)

    @strawberry.field
    def delivery_fee(self) -> Money:
        return Money.of(self.quote.totals.delivery_fee_fen)

    @strawberry.field
    def delivery_discount(self) -> Money:
        return Money.of(self.quote.totals.delivery_discount_fen)

    @strawberry.field
    def packaging_fee(self) -> Money:
        return Money.of(self.quote.totals.packaging_fee_fen)

    @strawberry.field
    def total(self) -> Money:
        return Money.of(self.quote.totals.total_fen)


async def quote_order(info: Info, input: QuoteOrderInput) -> OrderQuote:
    with raise_for_query(info):
        checkout = _checkout(
            input.channel, input.lines, input.store_id, input.address, input.coupon_id, None
        )
        return OrderQuote.of(await resolve.quote_order(info.context, checkout))


async def order(info: Info, id: strawberry.ID) -> OrderNode | None:
    with raise_for_query(info):
        order_id = decode_id(id, "Order", ["id"])
    (found,) = await resolve.visible_orders(info.context, [order_id])
    return OrderNode.of(found) if found else None


async def store_orders(
    info: Info,
    store_id: strawberry.ID,
    status: list[domain.OrderStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> OrderConnection:
    with raise_for_query(info):
        page = await resolve.store_orders(
            info.context,
            decode_id(store_id, "Store", ["storeId"]),
            statuses=[s.value for s in status] if status else None,
            first=first,
            after=after,
        )
    return _connection(page)


# --- mutations ------------------------------------------------------------------------


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
                checkout=_checkout(
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
        description="Development payment adapter: mark the viewer's order paid. Real providers "
        "confirm through POST /payments/notify."
    )
    async def pay_order(self, info: Info, order_id: strawberry.ID) -> OrderPayload:
        ctx = info.context

        async def run() -> domain.Order:
            if not ctx.settings.pays_in_development:
                raise DomainError(ErrorCode.NOT_AVAILABLE)
            cmd = PayInDevelopment(
                order_id=decode_id(order_id, "Order", ["orderId"]), now=ctx.now()
            )
            return await ctx.run(pay_in_development, cmd)

        return _order_payload(*await attempt(info, run))

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


# --- subscriptions --------------------------------------------------------------------


@strawberry.type
class OrderSubscription:
    @strawberry.subscription(
        description="One order (its member, its store's staff): its state now, then each change."
    )
    async def order_updates(
        self, info: Info, order_id: strawberry.ID
    ) -> AsyncGenerator[OrderNode, None]:
        def feed() -> AsyncIterator[domain.Order]:
            return resolve.order_feed(info.context, decode_id(order_id, "Order", ["orderId"]))

        async for update in live(info, feed, OrderNode.of):
            yield update

    @strawberry.subscription(
        description="A store's order board (its staff): open orders now, then new orders and "
        "status changes."
    )
    async def store_order_feed(
        self, info: Info, store_id: strawberry.ID
    ) -> AsyncGenerator[OrderNode, None]:
        def feed() -> AsyncIterator[domain.Order]:
            return resolve.store_order_feed(info.context, decode_id(store_id, "Store", ["storeId"]))

        async for update in live(info, feed, OrderNode.of, may_start_empty=True):
            yield update
