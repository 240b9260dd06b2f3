"""Campaign mutations: creating and ending campaigns, starting and joining group-buys,
bargains and their helps, and flash-sale orders."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dinegraph.context import Context
from dinegraph.domain import bargains
from dinegraph.domain import campaigns as domain
from dinegraph.domain.catalog import Channel
from dinegraph.domain.orders import Order, clean_address
from dinegraph.domain.services import bargains as bargain_service
from dinegraph.domain.services import campaign_orders as campaign_order
from dinegraph.domain.services import campaigns as service
from dinegraph.domain.services import flash_sales as flash_sale_service
from dinegraph.domain.services import group_buys as group_service
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.campaigns import BargainNode, CampaignNode, GroupBuyNode
from dinegraph.schema.common import Money, UserError
from dinegraph.schema.errors import attempt
from dinegraph.schema.order_quotes import AddressInput
from dinegraph.schema.orders import OrderNode

Info = strawberry.Info[Context, None]


@strawberry.input(description="A SKU for the campaign and its price (a bargain's floor).")
class CampaignItemInput:
    sku_id: strawberry.ID
    price_fen: int


@strawberry.input
class CreateCampaignInput:
    kind: domain.CampaignKind
    name: str
    starts_at: datetime
    ends_at: datetime
    items: list[CampaignItemInput]
    store_ids: list[strawberry.ID]
    channels: list[Channel]
    quota_per_store: int = strawberry.field(
        description="Units of each SKU each store sets aside from its stock for the campaign."
    )
    per_member_limit: int = 1
    new_members_only: bool = False
    group_size: int | None = strawberry.field(default=None, description="GROUP_BUY: 2 to 20.")
    group_hours: int = strawberry.field(default=24, description="GROUP_BUY: time to fill.")
    bargain_helps: int | None = strawberry.field(default=None, description="BARGAIN: 1 to 100.")
    bargain_hours: int = strawberry.field(default=24, description="BARGAIN: time to buy.")
    daily_help_cap: int = strawberry.field(
        default=5, description="BARGAIN: helps one member may give per day."
    )


@strawberry.input(
    description="How to make a campaign order. Each part may be left out where the campaign "
    "allows only one (pickup is the default channel when allowed); a joiner gets the "
    "group's store."
)
class CampaignOrderInput:
    sku_id: strawberry.ID | None = None
    store_id: strawberry.ID | None = None
    channel: Channel | None = None
    address: AddressInput | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Made once per checkout: a retry returns the same order."
    )
    note: str | None = None


def _options(order: CampaignOrderInput | None) -> campaign_order.OrderOptions:
    if order is None:
        return campaign_order.OrderOptions()
    address = order.address
    return campaign_order.OrderOptions(
        fulfilment=domain.Fulfilment(
            sku_id=decode_id(order.sku_id, "Sku", ["order", "skuId"]) if order.sku_id else None,
            store_id=(
                decode_id(order.store_id, "Store", ["order", "storeId"]) if order.store_id else None
            ),
            channel=order.channel,
        ),
        address=(
            clean_address(
                lat=address.lat,
                lng=address.lng,
                detail=address.detail,
                contact_name=address.contact_name,
                contact_phone=address.contact_phone,
            )
            if address
            else None
        ),
        idempotency_key=order.idempotency_key,
        note=order.note or "",
    )


@strawberry.type
class CampaignPayload:
    campaign: CampaignNode | None
    errors: list[UserError]


@strawberry.type
class GroupBuyPayload:
    group: GroupBuyNode | None
    order: OrderNode | None
    errors: list[UserError]


@strawberry.type
class BargainPayload:
    bargain: BargainNode | None
    errors: list[UserError]


@strawberry.type
class HelpBargainPayload:
    bargain: BargainNode | None
    cut: Money | None = strawberry.field(description="What this help took off the price.")
    errors: list[UserError]


@strawberry.type
class BargainOrderPayload:
    bargain: BargainNode | None
    order: OrderNode | None
    errors: list[UserError]


@strawberry.type
class FlashSalePayload:
    order: OrderNode | None
    errors: list[UserError]


def _group_payload(
    found: group_service.GroupOrder | None, errors: list[UserError]
) -> GroupBuyPayload:
    return GroupBuyPayload(
        group=GroupBuyNode.of(found.group) if found else None,
        order=OrderNode.of(found.order) if found else None,
        errors=errors,
    )


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(
        description="Set up a campaign (head office, operators); each store's quota is held "
        "from its stock at once."
    )
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        ctx = info.context

        async def run() -> domain.Campaign:
            spec = domain.CampaignSpec(
                kind=input.kind,
                name=input.name,
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                items=tuple(
                    domain.CampaignItem(
                        decode_id(i.sku_id, "Sku", ["items", str(n), "skuId"]), i.price_fen
                    )
                    for n, i in enumerate(input.items)
                ),
                store_ids=tuple(
                    decode_id(s, "Store", ["storeIds", str(n)])
                    for n, s in enumerate(input.store_ids)
                ),
                channels=frozenset(input.channels),
                quota_per_store=input.quota_per_store,
                per_member_limit=input.per_member_limit,
                new_members_only=input.new_members_only,
                group=(
                    domain.GroupRules(input.group_size, input.group_hours)
                    if input.group_size is not None
                    else None
                ),
                bargain=(
                    domain.BargainRules(
                        input.bargain_helps, input.bargain_hours, input.daily_help_cap
                    )
                    if input.bargain_helps is not None
                    else None
                ),
            )
            cmd = service.CreateCampaign(spec=spec, now=ctx.now())
            return await ctx.run(service.create_campaign, cmd)

        found, errors = await attempt(info, run)
        return CampaignPayload(campaign=CampaignNode.of(found) if found else None, errors=errors)

    @strawberry.mutation(description="End a campaign now; what is left goes back on the shelves.")
    async def end_campaign(self, info: Info, campaign_id: strawberry.ID) -> CampaignPayload:
        ctx = info.context

        async def run() -> domain.Campaign:
            cmd = service.EndCampaign(
                campaign_id=decode_id(campaign_id, "Campaign", ["campaignId"]),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(service.end_campaign, cmd)

        found, errors = await attempt(info, run)
        return CampaignPayload(campaign=CampaignNode.of(found) if found else None, errors=errors)

    @strawberry.mutation(
        description="Open a group-buy as its leader: the leader's order at the group price, and "
        "a share code for friends."
    )
    async def start_group_buy(
        self, info: Info, campaign_id: strawberry.ID, order: CampaignOrderInput | None = None
    ) -> GroupBuyPayload:
        ctx = info.context

        async def run() -> group_service.GroupOrder:
            cmd = group_service.StartGroupBuy(
                campaign_id=decode_id(campaign_id, "Campaign", ["campaignId"]),
                options=_options(order),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(group_service.start_group_buy, cmd)

        return _group_payload(*await attempt(info, run))

    @strawberry.mutation(
        description="Join a friend's group through their share code: a seat, held until the "
        "order's payment deadline."
    )
    async def join_group_buy(
        self, info: Info, share_code: str, order: CampaignOrderInput | None = None
    ) -> GroupBuyPayload:
        ctx = info.context

        async def run() -> group_service.GroupOrder:
            cmd = group_service.JoinGroupBuy(
                share_code=share_code,
                options=_options(order),
                now=ctx.now(),
                policy=ctx.services.orders,
                codes=ctx.services.share_codes,
            )
            return await ctx.run(group_service.join_group_buy, cmd)

        return _group_payload(*await attempt(info, run))

    @strawberry.mutation(
        description="Start a bargain at the store's price; the helps to the floor are fixed."
    )
    async def start_bargain(
        self,
        info: Info,
        campaign_id: strawberry.ID,
        sku_id: strawberry.ID | None = None,
        store_id: strawberry.ID | None = None,
    ) -> BargainPayload:
        ctx = info.context

        async def run() -> bargains.Bargain:
            cmd = bargain_service.StartBargain(
                campaign_id=decode_id(campaign_id, "Campaign", ["campaignId"]),
                fulfilment=domain.Fulfilment(
                    sku_id=decode_id(sku_id, "Sku", ["order", "skuId"]) if sku_id else None,
                    store_id=(
                        decode_id(store_id, "Store", ["order", "storeId"]) if store_id else None
                    ),
                ),
                now=ctx.now(),
            )
            return await ctx.run(bargain_service.start_bargain, cmd)

        found, errors = await attempt(info, run)
        return BargainPayload(bargain=BargainNode.of(found) if found else None, errors=errors)

    @strawberry.mutation(description="Help a friend's bargain through their share code.")
    async def help_bargain(self, info: Info, share_code: str) -> HelpBargainPayload:
        ctx = info.context

        async def run() -> bargain_service.Helped:
            cmd = bargain_service.HelpBargain(
                share_code=share_code,
                now=ctx.now(),
                policy=ctx.services.orders,
                codes=ctx.services.share_codes,
            )
            return await ctx.run(bargain_service.help_bargain, cmd)

        found, errors = await attempt(info, run)
        return HelpBargainPayload(
            bargain=BargainNode.of(found.bargain) if found else None,
            cut=Money.of(found.cut_fen) if found else None,
            errors=errors,
        )

    @strawberry.mutation(
        description="Buy the bargained SKU at the price reached so far (the floor once complete)."
    )
    async def buy_bargain(
        self, info: Info, bargain_id: strawberry.ID, order: CampaignOrderInput | None = None
    ) -> BargainOrderPayload:
        ctx = info.context

        async def run() -> bargain_service.BargainOrder:
            cmd = bargain_service.BuyBargain(
                bargain_id=decode_id(bargain_id, "Bargain", ["bargainId"]),
                options=_options(order),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(bargain_service.buy_bargain, cmd)

        found, errors = await attempt(info, run)
        return BargainOrderPayload(
            bargain=BargainNode.of(found.bargain) if found else None,
            order=OrderNode.of(found.order) if found else None,
            errors=errors,
        )

    @strawberry.mutation(
        description="Buy one unit in a flash sale (秒杀) while the store's quota lasts."
    )
    async def buy_flash_sale(
        self, info: Info, campaign_id: strawberry.ID, order: CampaignOrderInput | None = None
    ) -> FlashSalePayload:
        ctx = info.context

        async def run() -> Order:
            cmd = flash_sale_service.BuyFlashSale(
                campaign_id=decode_id(campaign_id, "Campaign", ["campaignId"]),
                options=_options(order),
                now=ctx.now(),
                policy=ctx.services.orders,
            )
            return await ctx.run(flash_sale_service.buy_flash_sale, cmd)

        found, errors = await attempt(info, run)
        return FlashSalePayload(order=OrderNode.of(found) if found else None, errors=errors)
