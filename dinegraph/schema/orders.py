"""GraphQL types and queries of orders. Quoting a cart is in order_quotes.py, the order
mutations in order_mutations.py, the order feeds in order_subscriptions.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import orders as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.identity import can_read_member, sees_order_address, works_at
from dinegraph.resolvers import coupons as coupon_reads
from dinegraph.resolvers import orders as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.resolvers.pagination import Page
from dinegraph.schema.catalog import SkuNode, SpecOption, StoreNode, sku_at
from dinegraph.schema.common import DeliveryAddress, GeoPoint, Money, page_info
from dinegraph.schema.coupons import CouponNode
from dinegraph.schema.delivery import DeliveryNode
from dinegraph.schema.errors import raise_for_query

if TYPE_CHECKING:
    from dinegraph.schema.refunds import RefundNode

Info = strawberry.Info[Context, None]

strawberry.enum(domain.OrderStatus, name="OrderStatus")
strawberry.enum(
    domain.OrderSource,
    name="OrderChannel",
    description="Where an order was taken: the mini-program, the store's till or a platform.",
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

    @strawberry.field(description="A partner's note for this line (不要香菜); empty if none.")
    def note(self) -> str:
        return self.line.note

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

    # --- where it was taken (orders from partners) ---

    @strawberry.field(description="Where it was taken: MINI_PROGRAM, POS or a platform.")
    def source(self) -> domain.OrderSource:
        return self.order.source

    @strawberry.field(description="The order's id at its source (a partner's orders only).")
    def external_id(self) -> str | None:
        return self.order.external_id

    @strawberry.field(description="The table a partner's dine-in order is served at.")
    def table_no(self) -> str | None:
        return self.order.table_no

    @strawberry.field(description="When the customer or a platform's rider comes for it.")
    def pickup_at(self) -> datetime | None:
        return self.order.pickup_at

    @strawberry.field(description="Why a partner or its platform cancelled it.")
    def cancel_reason(self) -> str | None:
        return self.order.cancel_reason

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

    @strawberry.field(
        description="Its refunds, oldest first: each request, decision and step of the money "
        "back (the member's and the store's staff's to see)."
    )
    async def refunds(
        self, info: Info
    ) -> list[Annotated[RefundNode, strawberry.lazy("dinegraph.schema.refunds")]]:
        from dinegraph.schema.refunds import order_refunds  # it imports this module

        return await order_refunds(info, self.order.id)

    @strawberry.field(description="For the store's staff: the ticket to print; null for others.")
    async def kitchen_ticket(self, info: Info) -> KitchenTicket | None:
        if not works_at(info.context.viewer, self.order.store_id):
            return None
        return KitchenTicket(
            order_number=self.number(),
            channel=self.order.channel,
            pickup_code=self.order.pickup_code,
            placed_at=self.order.placed_at.astimezone(info.context.settings.timezone),
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


# --- queries --------------------------------------------------------------------------


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
    source: list[domain.OrderSource] | None = None,
) -> OrderConnection:
    with raise_for_query(info):
        page = await resolve.store_orders(
            info.context,
            decode_id(store_id, "Store", ["storeId"]),
            statuses=[s.value for s in status] if status else None,
            sources=[s.value for s in source] if source else None,
            first=first,
            after=after,
        )
    return _connection(page)
