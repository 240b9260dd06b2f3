"""猜你喜欢 (``recommendations``) and the behaviour events the mini-program reports
(``trackEvents``, ``myBehaviour``, ``clearMyBehaviour``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dinegraph.context import Context
from dinegraph.domain import behaviour as domain
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.recommendations import ReasonKind, Scene, Weather
from dinegraph.i18n import reason_text
from dinegraph.resolvers import recommendations as resolve
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.catalog import Channel, ProductNode
from dinegraph.schema.common import UserError
from dinegraph.schema.errors import attempt, raise_for_query

Info = strawberry.Info[Context, None]

strawberry.enum(
    Scene, name="RecommendationScene", description="The page: HOME, PRODUCT, CART, ORDER_DONE."
)
strawberry.enum(Weather, name="Weather", description="The weather where the member is.")
strawberry.enum(ReasonKind, name="RecommendationReasonKind")
strawberry.enum(
    domain.EventKind,
    name="BehaviourEventKind",
    description="VIEW_PRODUCT, SEARCH, FAVOURITE, ADD_TO_CART (orders are recorded as orders).",
)


@strawberry.input(description="Where and when the member is looking: position and weather.")
class RecommendationContextInput:
    lat: float | None = None
    lng: float | None = None
    weather: Weather | None = None


@strawberry.type(description="A product to show under 猜你喜欢, and why.")
class Recommendation:
    product: ProductNode
    reason: str = strawberry.field(description="For the page: 常与糖醋排骨一起购买, 雨天热汤.")
    reason_kind: ReasonKind
    score: float


@strawberry.input
class BehaviourEventInput:
    client_event_id: str = strawberry.field(
        description="The client's own id (8–64 of A-Z a-z 0-9 _ - : .): a replay is ignored."
    )
    kind: domain.EventKind
    product_id: strawberry.ID | None = None
    query: str | None = strawberry.field(default=None, description="SEARCH: what was searched.")
    store_id: strawberry.ID | None = None
    occurred_at: datetime | None = None


@strawberry.input
class TrackEventsInput:
    events: list[BehaviourEventInput] = strawberry.field(description="At most 50.")
    device_id: str | None = strawberry.field(
        default=None,
        description="Signed out: whose events these are. Signed in: that device's earlier "
        "events become the member's.",
    )


@strawberry.type
class TrackEventsPayload:
    accepted: int | None = strawberry.field(description="Events recorded by this call.")
    duplicates: int | None = strawberry.field(description="Events recorded before (replays).")
    merged: int | None = strawberry.field(description="The device's events now the member's.")
    errors: list[UserError]


@strawberry.type
class BehaviourEvent:
    client_event_id: str
    kind: domain.EventKind
    product: ProductNode | None
    query: str | None
    occurred_at: datetime


@strawberry.type
class ClearMyBehaviourPayload:
    cleared: int | None
    errors: list[UserError]


def _event(n: int, event: BehaviourEventInput) -> domain.NewEvent:
    at = ["events", str(n)]
    return domain.NewEvent(
        client_event_id=event.client_event_id,
        kind=event.kind,
        product_id=decode_id(event.product_id, "Product", [*at, "productId"])
        if event.product_id is not None
        else None,
        query=event.query,
        store_id=decode_id(event.store_id, "Store", [*at, "storeId"])
        if event.store_id is not None
        else None,
        occurred_at=event.occurred_at,
    )


@strawberry.type
class RecommendationQuery:
    @strawberry.field(
        description="猜你喜欢: products the store sells on the channel now, best first, each "
        "with a reason. Signed in, the member's history counts; signed out, the device's. "
        "Without `storeId`, the nearest open store to `context`'s position; for DELIVERY with "
        "a position, only a store that delivers there."
    )
    async def recommendations(
        self,
        info: Info,
        scene: Scene,
        store_id: strawberry.ID | None = None,
        channel: Channel = Channel.PICKUP,
        product_id: strawberry.ID | None = None,
        cart: list[strawberry.ID] | None = None,
        context: RecommendationContextInput | None = None,
        device_id: str | None = None,
        first: int = 10,
    ) -> list[Recommendation]:
        ctx = info.context
        with raise_for_query(info):
            found = await resolve.recommendations(
                ctx,
                scene=scene,
                channel=channel,
                store_id=store_id,
                product_id=product_id,
                cart=cart or [],
                lat=context.lat if context else None,
                lng=context.lng if context else None,
                weather=context.weather if context else None,
                device_id=device_id,
                first=first,
            )
        return [
            Recommendation(
                product=ProductNode.of(r.product, store_id=r.store_id),
                reason=reason_text(r.reason, ctx.locale),
                reason_kind=r.reason.kind,
                score=round(r.score, 4),
            )
            for r in found
        ]

    @strawberry.field(description="The member's own behaviour events, newest first.")
    async def my_behaviour(self, info: Info, first: int = 20) -> list[BehaviourEvent]:
        with raise_for_query(info):
            events = await resolve.my_behaviour(info.context, first)
        ids = [e.product_id for e in events if e.product_id is not None]
        products = dict(zip(ids, await info.context.loaders.product.load_many(ids), strict=True))
        return [
            BehaviourEvent(
                client_event_id=e.client_event_id,
                kind=e.kind,
                product=ProductNode.of(p)
                if e.product_id is not None and (p := products.get(e.product_id)) is not None
                else None,
                query=e.query,
                occurred_at=e.occurred_at,
            )
            for e in events
        ]


@strawberry.type
class RecommendationMutation:
    @strawberry.mutation(
        description="Report views, searches, favourites and add-to-cart in batches of at most "
        "50; a client event id sent again is ignored. Signed out, give `deviceId`."
    )
    async def track_events(self, info: Info, input: TrackEventsInput) -> TrackEventsPayload:
        async def run() -> domain.Tracked:
            if len(input.events) > domain.MAX_BATCH:
                raise DomainError(
                    ErrorCode.OUT_OF_RANGE, field=["events"], min=1, max=domain.MAX_BATCH
                )
            events = tuple(_event(n, e) for n, e in enumerate(input.events))
            cmd = domain.TrackEvents(events=events, device_id=input.device_id)
            return await resolve.track(info.context, cmd)

        result, errors = await attempt(info, run)
        if result is None:
            return TrackEventsPayload(accepted=None, duplicates=None, merged=None, errors=errors)
        return TrackEventsPayload(
            accepted=result.accepted,
            duplicates=result.duplicates,
            merged=result.merged,
            errors=errors,
        )

    @strawberry.mutation(description="Forget the member's behaviour events (orders stay).")
    async def clear_my_behaviour(self, info: Info) -> ClearMyBehaviourPayload:
        cleared, errors = await attempt(info, lambda: resolve.clear_my_behaviour(info.context))
        return ClearMyBehaviourPayload(cleared=cleared, errors=errors)
