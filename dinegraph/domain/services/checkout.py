"""Checkout: quote a cart and place it as an order, idempotently.

Placement is one transaction: route and price at the store, hold the stock through the
ledger (``ORDER_HOLD`` keyed by the order), lock the coupon and freeze the totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dinegraph.domain.campaigns import Deal
from dinegraph.domain.checkout import Checkout, check_checkout, checkout_fingerprint
from dinegraph.domain.coupons import CouponStatus, is_new_member, terms_of
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, Viewer, actor_of
from dinegraph.domain.members import Member
from dinegraph.domain.orders import (
    Order,
    OrderLine,
    OrderStatus,
    clean_idempotency_key,
)
from dinegraph.domain.ports import Repositories, UnitOfWork
from dinegraph.domain.pricing import Shopper
from dinegraph.domain.quotes import CouponOffer, CouponProblem, Quote, first_problem, quote
from dinegraph.domain.routing import CannotServe
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.orders import OrderPolicy, order_changed
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine, MovementSource
from dinegraph.domain.tiers import Tier

ROUTING_ATTEMPTS = 2  # a routed order whose stock is taken meanwhile is routed once more


class StoresRefused(DomainError):
    """No store can take the order; ``refusals`` says why not, per nearby store."""

    def __init__(self, error: DomainError, refusals: Mapping[int, CannotServe]) -> None:
        super().__init__(error.code, error.field, **error.params)
        self.refusals = dict(refusals)


async def build_quote(
    checkout: Checkout,
    *,
    repos: Repositories,
    member_id: int | None,
    policy: OrderPolicy,
    now: datetime,
    deal: Deal | None = None,
    member: Member | None = None,
) -> Quote:
    """Route (unless pinned) and price a checkout for a member, or for a guest's preview.

    ``member`` is the member of ``member_id`` where the caller has read it already.
    """
    checkout = check_checkout(checkout)
    sku_ids = [line.sku_id for line in checkout.lines]
    candidates = await repos.orders.candidates(sku_ids, checkout.store_id)
    shopper = Shopper(Tier.NORMAL, is_new_member=True)
    if member_id is not None:
        if member is None:
            member = await repos.members.get(member_id)
        if member is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        shopper = Shopper(member.tier, is_new_member(member, now))
    offer = None
    if checkout.coupon_id is not None:
        offer = await _coupon_offer(repos, checkout.coupon_id, member_id)
    return quote(
        checkout,
        candidates,
        at=now.astimezone(policy.time_zone).time(),
        shopper=shopper,
        coupon=offer,
        fees=policy.fees,
        weights=policy.weights,
        nearby_m=policy.nearby_m,
        now=now,
        deal=deal,
    )


async def _coupon_offer(repos: Repositories, coupon_id: int, member_id: int | None) -> CouponOffer:
    coupon = await repos.coupons.get_coupon(coupon_id)
    if coupon is None or coupon.member_id != member_id:
        return CouponOffer(coupon_id, None, CouponProblem.NOT_FOUND)
    if coupon.status is not CouponStatus.AVAILABLE:
        return CouponOffer(coupon_id, None, CouponProblem.NOT_AVAILABLE)
    template = await repos.coupons.get_template(coupon.template_id)
    assert template is not None  # a coupon's template is never deleted
    return CouponOffer(coupon_id, terms_of(template, coupon))


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    idempotency_key: str
    checkout: Checkout
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    replayed: bool  # the key was used before: this is the first request's order


async def place_order(cmd: PlaceOrder, *, uow: UnitOfWork, viewer: Viewer) -> Placed:
    """Place an order, or return the order its idempotency key placed before.

    The stock holds and the coupon lock are conditional updates, and they alone decide: the
    quote before them is only a read, so nothing is oversold whatever it saw. Where writers
    queue for one lock (SQLite) the quote is read before taking it, so a refusal never
    waits for the writer; elsewhere (PostgreSQL, where reads lock nothing) it is read in the
    write transaction, on one connection. A routed order whose stock is taken in between is
    routed once more on fresh levels.

    The same key with another payload is ``IDEMPOTENCY_KEY_REUSED``. A request that fails
    (out of stock, say) stores nothing, so retrying the key tries again.
    """
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    member_id = viewer.member_id
    key = clean_idempotency_key(cmd.idempotency_key)
    checkout = check_checkout(cmd.checkout)
    print_ = checkout_fingerprint(checkout)
    actor = actor_of(viewer)

    async def prepare(repos: Repositories) -> Order | Placed:
        member, existing = await repos.orders.placing(member_id, key)
        if existing is not None:
            return replay(existing, print_)
        if member is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        q = await build_quote(
            checkout,
            repos=repos,
            member_id=member_id,
            policy=cmd.policy,
            now=cmd.now,
            member=member,
        )
        problem = first_problem(q)
        if problem is not None:
            raise StoresRefused(problem, q.refusals) if q.refusals else problem
        return draft_order(
            q,
            checkout,
            member_id=member_id,
            key=key,
            print_=print_,
            now=cmd.now,
            timeout=cmd.policy.payment_timeout,
        )

    attempts = 1 if checkout.store_id is not None else ROUTING_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            if uow.one_writer:
                async with uow.reading() as reads:
                    draft = await prepare(reads)
                if isinstance(draft, Placed):
                    return draft
                async with uow:
                    return await _write(uow, draft, checkout, actor, print_)
            async with uow:
                draft = await prepare(uow)
                if isinstance(draft, Placed):
                    return draft
                return await _write(uow, draft, checkout, actor, print_)
        except DomainError as error:
            taken = error.code in (ErrorCode.OUT_OF_STOCK, ErrorCode.SOLD_OUT)
            if not taken or attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def draft_order(
    q: Quote,
    checkout: Checkout,
    *,
    member_id: int,
    key: str,
    print_: str,
    now: datetime,
    timeout: timedelta,
) -> Order:
    """The order a placeable quote makes, its totals frozen."""
    assert q.store is not None
    totals = q.totals
    lines = tuple(
        OrderLine(
            line_no=n + 1,
            sku_id=line.item.sku.id,
            product_id=line.item.product.id,
            name=line_name(line.item.product.name, line.item.sku.name),
            specs=dict(line.item.sku.specs),
            unit_price_fen=line.item.unit_price_fen,
            quantity=line.request.quantity,
        )
        for n, line in enumerate(q.lines)
        if line.item is not None
    )
    return Order(
        id=0,
        member_id=member_id,
        store_id=q.store.id,
        channel=checkout.channel,
        status=OrderStatus.PENDING_PAYMENT,
        idempotency_key=key,
        fingerprint=print_,
        subtotal_fen=totals.subtotal_fen,
        tier_discount_fen=totals.tier_discount_fen,
        coupon_discount_fen=totals.coupon_discount_fen,
        delivery_fee_fen=totals.delivery_fee_fen,
        delivery_discount_fen=totals.delivery_discount_fen,
        packaging_fee_fen=totals.packaging_fee_fen,
        total_fen=totals.total_fen,
        refunded_fen=0,
        coupon_id=checkout.coupon_id,
        address=checkout.address,
        distance_m=q.distance_m,
        note=checkout.note.strip(),
        pickup_code=None,
        placed_at=now,
        pay_by=now + timeout,
        paid_at=None,
        completed_at=None,
        version=1,
        lines=lines,
    )


async def _write(
    uow: UnitOfWork, draft: Order, checkout: Checkout, actor: str, print_: str
) -> Placed:
    """The order, its stock holds and its coupon lock, in the open unit of work; commits."""
    inserted = await insert_order(uow, draft, print_)
    if isinstance(inserted, Placed):
        return inserted
    order = inserted
    await apply_movement(
        uow,
        actor=actor,
        store_id=order.store_id,
        source=MovementSource.ORDER_HOLD,
        reference=order.reference,
        lines=sorted(
            (MovementLine(line.sku_id, -line.quantity) for line in order.lines),
            key=lambda m: m.sku_id,
        ),
        reason="",
        line_field="lines",
        key_field="idempotencyKey",
        positions={line.sku_id: n for n, line in enumerate(checkout.lines)},
    )
    if order.coupon_id is not None:
        try:
            await change_coupon_status(
                order.coupon_id, CouponStatus.LOCKED, order_ref=order.reference, uow=uow
            )
        except DomainError as error:  # another order locked it since the quote
            raise DomainError(
                ErrorCode.COUPON_NOT_APPLICABLE,
                field=["couponId"],
                reason=CouponProblem.NOT_AVAILABLE.value,
            ) from error
    uow.record(order_changed(order))
    await uow.commit()
    return Placed(order, replayed=False)


async def insert_order(uow: UnitOfWork, draft: Order, print_: str) -> Order | Placed:
    """The order and its lines; the first request's order when its key was used meanwhile."""
    order_id = await uow.orders.add(draft)
    if order_id is None:  # a request with the same key committed meanwhile
        assert draft.member_id is not None  # a member's order
        existing = await uow.orders.by_key(draft.member_id, draft.idempotency_key)
        assert existing is not None
        return replay(existing, print_)
    order = replace(draft, id=order_id)
    await uow.orders.add_lines(order_id, order.lines)
    return order


def replay(existing: Order, print_: str) -> Placed:
    if existing.fingerprint != print_:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["idempotencyKey"])
    return Placed(existing, replayed=True)


def line_name(product: str, sku: str) -> str:
    return product if not sku or sku == product else f"{product}（{sku}）"
