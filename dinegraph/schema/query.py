"""The query root."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.resolvers import catalog as resolve
from dinegraph.resolvers.ids import decode_any_id
from dinegraph.schema.audit import AuditEntryConnection, audit_log
from dinegraph.schema.calls import OutboundCallConnection, outbound_calls
from dinegraph.schema.campaigns import (
    BargainNode,
    CampaignNode,
    CampaignReport,
    GroupBuyNode,
    ShareInvite,
    bargain,
    campaign_report,
    campaigns,
    group_buy,
    share_invite,
)
from dinegraph.schema.catalog import CategoryNode, Channel, Menu, StoreNode
from dinegraph.schema.common import GeoPointInput, page_info
from dinegraph.schema.coupons import (
    CouponFit,
    CouponTemplateNode,
    applicable_coupons,
    claimable_coupons,
)
from dinegraph.schema.delivery import DeliveryNode, deliveries_in_progress, delivery
from dinegraph.schema.errors import raise_for_query
from dinegraph.schema.kitchen import KitchenQuery
from dinegraph.schema.members import MemberNode, Viewer, member_by_phone
from dinegraph.schema.order_quotes import OrderQuote, quote_order
from dinegraph.schema.orders import OrderConnection, OrderNode, order, store_orders
from dinegraph.schema.recommendations import RecommendationQuery
from dinegraph.schema.refunds import RefundConnection, store_refund_requests
from dinegraph.schema.search import SearchQuery
from dinegraph.schema.staff_admin import (
    ApiKeyConnection,
    StaffAccountConnection,
    api_keys,
    staff_accounts,
)
from dinegraph.schema.stock import StockLedgerConnection, StoreStock, stock_ledger, store_stock

Info = strawberry.Info[Context, None]


async def _resolve_nodes(info: Info, ids: list[strawberry.ID]) -> list[relay.Node | None]:
    """Each type resolves its own ids in one batch, with its own visibility rules.

    Every ID is decoded strictly first (``resolvers.ids``); a malformed one, or one naming no
    kind of object, refuses the field with ``INVALID_ID`` and the ID's place.
    """
    wanted: list[tuple[type[relay.Node], str]] = []
    with raise_for_query(info):
        for n, global_id in enumerate(ids):
            field = ["id"] if info.field_name == "node" else ["ids", str(n)]
            type_name, row_id = decode_any_id(global_id, field)
            definition = info.schema.get_type_by_name(type_name)
            origin = getattr(definition, "origin", None)
            if not (isinstance(origin, type) and issubclass(origin, relay.Node)):
                raise DomainError(ErrorCode.INVALID_ID, field=field)
            wanted.append((origin, str(row_id)))
    by_type: dict[type[relay.Node], list[str]] = {}
    for origin, node_id in wanted:
        by_type.setdefault(origin, []).append(node_id)
    found: dict[tuple[type[relay.Node], str], relay.Node | None] = {}
    for origin, node_ids in by_type.items():
        resolved = await cast(
            "Awaitable[list[relay.Node | None]]",
            origin.resolve_nodes(info=info, node_ids=node_ids, required=False),
        )
        found.update(zip(((origin, i) for i in node_ids), resolved, strict=True))
    return [found.get(key) for key in wanted]


@strawberry.type(description="Stores, ordered by distance when `near` is given.")
class StoreConnection(relay.Connection[StoreNode]):
    total_count: int


@strawberry.type
class Query(KitchenQuery, SearchQuery, RecommendationQuery):
    @strawberry.field(description="Any object by its global ID; null when not found or not yours.")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        (found,) = await _resolve_nodes(info, [id])
        return found

    @strawberry.field(description="Objects by global ID, in the order asked; null where unseen.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[relay.Node | None]:
        if len(ids) > info.context.settings.max_page_size:
            with raise_for_query(info):
                raise DomainError(
                    ErrorCode.PAGE_SIZE_TOO_LARGE, ["ids"], max=info.context.settings.max_page_size
                )
        return await _resolve_nodes(info, ids)

    @strawberry.field(description="The chain's stores; nearest first when `near` is given.")
    async def stores(
        self,
        info: Info,
        near: GeoPointInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> StoreConnection:
        with raise_for_query(info):
            point = GeoPoint.checked(near.lat, near.lng) if near is not None else None
            page = await resolve.stores_page(info.context, near=point, first=first, after=after)
        return StoreConnection(
            edges=[
                relay.Edge(cursor=cursor, node=StoreNode.of(store, distance))
                for cursor, (store, distance) in page.items
            ],
            page_info=page_info(page),
            total_count=page.total_count or 0,
        )

    audit_log: AuditEntryConnection = strawberry.field(
        resolver=audit_log,
        description="Staff, partner and CLI writes (and refused attempts), newest first "
        "(HQ_ADMIN).",
    )

    stock_ledger: StockLedgerConnection = strawberry.field(
        resolver=stock_ledger,
        description="Every change of a store's tracked stock, newest first (staff, partners).",
    )
    store_stock: list[StoreStock] = strawberry.field(
        resolver=store_stock,
        description="A store's stock board (its staff): tracked SKUs and made-to-order "
        "dishes, with 沽清 and low-stock thresholds.",
    )

    outbound_calls: OutboundCallConnection = strawberry.field(
        resolver=outbound_calls,
        description="Calls out (refunds, couriers, text messages), newest first, by status and "
        "kind: FAILED ones are stuck and need an operator (HQ_ADMIN).",
    )

    claimable_coupons: list[CouponTemplateNode] = strawberry.field(
        resolver=claimable_coupons, description="领券中心: what the viewer may claim now."
    )
    applicable_coupons: list[CouponFit] = strawberry.field(
        resolver=applicable_coupons,
        description="The member's coupons against a cart: those that fit first, by saving.",
    )

    quote_order: OrderQuote = strawberry.field(
        resolver=quote_order,
        description="Price a cart at the store that would serve it (routed for delivery), with "
        "the reason for every line or coupon that cannot apply.",
    )
    order: OrderNode | None = strawberry.field(
        resolver=order, description="An order; null when not found or not yours."
    )
    store_refund_requests: RefundConnection = strawberry.field(
        resolver=store_refund_requests,
        description="Refunds of a store's orders, newest first, for its staff: by default the "
        "requests waiting for a decision (REQUESTED).",
    )
    store_orders: OrderConnection = strawberry.field(
        resolver=store_orders,
        description="A store's orders from every source, newest first: the order board, for "
        "its staff and partners with orders:read.",
    )

    delivery: DeliveryNode | None = strawberry.field(
        resolver=delivery, description="A delivery; null when not found or not yours."
    )
    deliveries_in_progress: list[DeliveryNode] = strawberry.field(
        resolver=deliveries_in_progress,
        description="A store's deliveries on their way, for its live map (its staff).",
    )

    campaigns: list[CampaignNode] = strawberry.field(
        resolver=campaigns,
        description="Campaigns selling now, soonest to end first; of one kind, at one store.",
    )
    group_buy: GroupBuyNode | None = strawberry.field(
        resolver=group_buy, description="A group-buy, for its share page."
    )
    bargain: BargainNode | None = strawberry.field(
        resolver=bargain, description="A bargain, for its share page."
    )
    share_invite: ShareInvite = strawberry.field(
        resolver=share_invite,
        description="What a share code points at; INVALID_SHARE_CODE or SHARE_CODE_EXPIRED.",
    )
    campaign_report: CampaignReport = strawberry.field(
        resolver=campaign_report, description="How a campaign went (head office, operators)."
    )

    staff_accounts: StaffAccountConnection = strawberry.field(
        resolver=staff_accounts, description="Staff accounts, by id (head office only)."
    )
    api_keys: ApiKeyConnection = strawberry.field(
        resolver=api_keys, description="Partner API keys, revoked ones too (head office only)."
    )

    member_by_phone: MemberNode | None = strawberry.field(
        resolver=member_by_phone,
        description=(
            "Staff find a member by phone (blind index): head office and operators see the "
            "whole member; a store manager sees the card (tier, points, coupons) and the "
            "member's orders at their own stores, without birthday, addresses or points history."
        ),
    )

    @strawberry.field(description="Who is asking: a member, staff, or nobody.")
    def viewer(self) -> Viewer:
        return Viewer()

    @strawberry.field
    async def store(self, info: Info, id: strawberry.ID) -> StoreNode | None:
        with raise_for_query(info):
            store = await resolve.store_by_global_id(info.context, id)
        return StoreNode.of(store) if store else None

    @strawberry.field(description="Every category, top level first, for navigation and admin.")
    async def categories(self, info: Info) -> list[CategoryNode]:
        return [CategoryNode.of(c) for c in await resolve.all_categories(info.context)]

    @strawberry.field(
        description="What a store sells on a channel: listed products, store prices, live stock."
    )
    async def menu(self, info: Info, store_id: strawberry.ID, channel: Channel) -> Menu | None:
        with raise_for_query(info):
            store = await resolve.store_by_global_id(info.context, store_id, field="storeId")
        if store is None:
            return None
        return Menu(store=StoreNode.of(store), channel=channel, store_entity=store)
