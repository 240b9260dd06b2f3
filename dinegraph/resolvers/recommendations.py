"""猜你喜欢 and behaviour events: recommendations at a store, trackEvents, a member's own
history and clearing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dinegraph.domain.behaviour import Actor, BehaviourEvent, Tracked, TrackEvents, track_events
from dinegraph.domain.catalog import Channel, Product, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import MemberViewer
from dinegraph.domain.recommendation_blend import Request
from dinegraph.domain.recommendations import (
    Reason,
    Scene,
    Weather,
    check_ask,
    meal_period,
    nearest_serving,
    serves,
)
from dinegraph.domain.services.recommendations import recommend_for
from dinegraph.resolvers.catalog import priced_menu
from dinegraph.resolvers.ids import decode_id

if TYPE_CHECKING:
    from dinegraph.context import Context

HISTORY_MAX_FIRST = 100


@dataclass(frozen=True, slots=True)
class Recommendation:
    product: Product
    store_id: int  # where it is offered: its SKUs are priced and stocked there
    reason: Reason
    score: float


def _member_id(ctx: Context) -> int | None:
    return ctx.viewer.member_id if isinstance(ctx.viewer, MemberViewer) else None


async def _store(
    ctx: Context, store_id: int | None, near: GeoPoint | None, channel: Channel
) -> Store | None:
    """The store asked for, else the nearest open one serving ``near``; None: nothing to
    recommend (unknown, or not serving there)."""
    if store_id is not None:
        store = await ctx.loaders.store.load(store_id)
        return store if store is not None and serves(store, channel, near) else None
    if near is None:
        raise DomainError(ErrorCode.REQUIRED, field=["storeId"])
    return nearest_serving(await ctx.reads.all_stores(), channel, near)


async def available_products(ctx: Context, store: Store, channel: Channel) -> dict[int, Product]:
    """What the store sells on the channel now, by the menu's own rules: listed, on the
    channel, with at least one SKU not sold out there (a combo's components included)."""
    sections = await priced_menu(ctx, store.id, channel)
    return {
        item.product.id: item.product for _, group in sections for item in group if item.on_sale
    }


async def recommendations(
    ctx: Context,
    *,
    scene: Scene,
    channel: Channel,
    store_id: str | None,
    product_id: str | None,
    cart: Sequence[str],
    lat: float | None,
    lng: float | None,
    weather: Weather | None,
    device_id: str | None,
    first: int,
) -> list[Recommendation]:
    """Up to ``first`` products the store can sell now, each with its reason. An unknown
    store or product is an empty answer; malformed input is a coded error."""
    asked = check_ask(
        scene=scene,
        first=first,
        lat=lat,
        lng=lng,
        device_id=device_id,
        cart_size=len(cart),
        has_product=product_id is not None,
    )
    near, device = asked.near, asked.device
    cart_ids = frozenset(decode_id(c, "Product", ["cart", str(n)]) for n, c in enumerate(cart))
    shown = decode_id(product_id, "Product", ["productId"]) if product_id is not None else None
    wanted = decode_id(store_id, "Store", ["storeId"]) if store_id is not None else None
    store = await _store(ctx, wanted, near, channel)
    if store is None:
        return []
    if shown is not None and await ctx.loaders.product.load(shown) is None:
        return []
    available = await available_products(ctx, store, channel)
    member_id = _member_id(ctx)
    actor = (
        Actor(member_id, None)
        if member_id is not None
        else (Actor(None, device) if device is not None else None)
    )
    now = ctx.now()
    request = Request(
        scene=scene,
        store_id=store.id,
        period=meal_period(now.astimezone(ctx.settings.timezone).time()),
        weather=weather,
        product_id=shown,
        cart=cart_ids,
        first=first,
    )
    categories = {c.id: c for c in await ctx.reads.all_categories()}
    ranked = await recommend_for(
        request,
        actor=actor,
        source=ctx.recommendation_source(),
        recommender=ctx.services.recommender,
        available=available,
        categories=categories,
        now=now,
    )
    return [Recommendation(available[r.product_id], store.id, r.reason, r.score) for r in ranked]


async def track(ctx: Context, cmd: TrackEvents) -> Tracked:
    member_id = _member_id(ctx)
    tracked = await track_events(cmd, log=ctx.behaviour_log(), member_id=member_id, now=ctx.now())
    ctx.services.recommender.histories_changed(member_id, cmd.device_id)
    return tracked


def _require_member(ctx: Context) -> int:
    member_id = _member_id(ctx)
    if member_id is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    return member_id


async def my_behaviour(ctx: Context, first: int) -> list[BehaviourEvent]:
    if not 1 <= first <= HISTORY_MAX_FIRST:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["first"], min=1, max=HISTORY_MAX_FIRST)
    member_id = _require_member(ctx)
    return await ctx.behaviour_log().recent(Actor(member_id, None), first)


async def clear_my_behaviour(ctx: Context) -> int:
    actor = Actor(_require_member(ctx), None)
    cleared = await ctx.behaviour_log().clear(actor)
    ctx.services.recommender.forget(actor)
    return cleared
