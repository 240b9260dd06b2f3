"""Quoting a cart (the quoteOrder query) and the cart inputs placeOrder shares with it."""

from __future__ import annotations

import strawberry

from dinegraph.context import Context
from dinegraph.domain import orders as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.checkout import Checkout, LineRequest
from dinegraph.domain.fees import DeliveryWaiver
from dinegraph.domain.quotes import CouponProblem, LineProblem, PricedLine, Quote
from dinegraph.domain.routing import CannotServe
from dinegraph.resolvers import orders as resolve
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.catalog import SkuNode, StoreNode, sku_at
from dinegraph.schema.common import Money
from dinegraph.schema.errors import raise_for_query

Info = strawberry.Info[Context, None]

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


def to_checkout(
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
        checkout = to_checkout(
            input.channel, input.lines, input.store_id, input.address, input.coupon_id, None
        )
        return OrderQuote.of(await resolve.quote_order(info.context, checkout))
