"""Orders: quote, place (idempotently), pay, move through the lifecycle, cancel, refund.

Placement is one transaction: route and price at the store, hold the stock through the
ledger (``ORDER_HOLD`` keyed by the order), lock the coupon and freeze the totals. Every
later change is a conditional status update, so two requests can never both move an order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from dinegraph.domain.campaigns import Deal, GroupBuy, GroupBuyChanged, GroupStatus
from dinegraph.domain.catalog import Channel
from dinegraph.domain.checkout import Checkout, check_checkout, checkout_fingerprint
from dinegraph.domain.coupons import CouponStatus, is_new_member, terms_of
from dinegraph.domain.delivery import Delivery
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import FeeRules
from dinegraph.domain.identity import MemberViewer, StaffViewer, Viewer, actor_of
from dinegraph.domain.members import PointsKind
from dinegraph.domain.orders import (
    Mover,
    Order,
    OrderChanged,
    OrderLine,
    OrderStatus,
    check_move,
    clean_idempotency_key,
    load_change,
    pickup_code,
)
from dinegraph.domain.ports import DispatchRequest, PaymentGateway, Repositories, UnitOfWork
from dinegraph.domain.pricing import Shopper
from dinegraph.domain.quotes import CouponOffer, CouponProblem, Quote, first_problem, quote
from dinegraph.domain.refunds import RefundLine, plan_refund, points_to_reverse
from dinegraph.domain.routing import CannotServe, RoutingWeights
from dinegraph.domain.services.coupons import change_coupon_status
from dinegraph.domain.services.dispatch import (
    DeliveryPolicy,
    call_platform,
    dispatch_request,
    open_delivery,
    should_dispatch,
    stop_delivery,
    tell_platform_stopped,
)
from dinegraph.domain.services.points import earn_points, record_spend
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine, MovementSource, clean_reason
from dinegraph.domain.tiers import Tier

log = logging.getLogger("dinegraph.orders")

SWEEP_BATCH = 100
ROUTING_ATTEMPTS = 2  # a routed order whose stock is taken meanwhile is routed once more


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """The chain's order settings, chosen once by the wiring."""

    fees: FeeRules
    weights: RoutingWeights
    nearby_m: int  # routing failures list the stores this close to the address
    payment_timeout: timedelta
    time_zone: tzinfo
    tier_thresholds: Mapping[Tier, int]
    points_expiry_days: int
    payments: PaymentGateway
    delivery: DeliveryPolicy


class StoresRefused(DomainError):
    """No store can take the order; ``refusals`` says why not, per nearby store."""

    def __init__(self, error: DomainError, refusals: Mapping[int, CannotServe]) -> None:
        super().__init__(error.code, error.field, **error.params)
        self.refusals = dict(refusals)


# --- quote and placement --------------------------------------------------------------


async def build_quote(
    checkout: Checkout,
    *,
    repos: Repositories,
    member_id: int | None,
    policy: OrderPolicy,
    now: datetime,
    deal: Deal | None = None,
) -> Quote:
    """Route (unless pinned) and price a checkout for a member, or for a guest's preview."""
    checkout = check_checkout(checkout)
    sku_ids = [line.sku_id for line in checkout.lines]
    candidates = await repos.orders.candidates(sku_ids, checkout.store_id)
    shopper = Shopper(Tier.NORMAL, is_new_member=True)
    if member_id is not None:
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
        existing = await repos.orders.by_key(member_id, key)
        if existing is not None:
            return replay(existing, print_)
        q = await build_quote(
            checkout, repos=repos, member_id=member_id, policy=cmd.policy, now=cmd.now
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
            name=_line_name(line.item.product.name, line.item.sku.name),
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


def _line_name(product: str, sku: str) -> str:
    return product if not sku or sku == product else f"{product}（{sku}）"


def order_changed(order: Order) -> OrderChanged:
    return OrderChanged(
        order_id=order.id,
        store_id=order.store_id,
        member_id=order.member_id,
        status=order.status.value,
        version=order.version,
    )


# --- payment --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmPayment:
    """The provider says the order was paid (a notification, or the development adapter)."""

    order_id: int
    provider: str
    transaction_id: str
    amount_fen: int
    at: datetime


async def confirm_payment(cmd: ConfirmPayment, *, uow: UnitOfWork) -> Order:
    """Mark the order PAID once; a repeated notification of the same transaction is a no-op.

    A payment that does not match the total, or that arrives after the order was cancelled,
    changes nothing and is refused with a code for the provider's reconciliation.
    """
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        seen = await uow.orders.payment_order(cmd.provider, cmd.transaction_id)
        if seen is not None:
            if seen != order.id:
                raise DomainError(ErrorCode.PAYMENT_MISMATCH, field=["transactionId"])
            return order
        if cmd.amount_fen != order.total_fen:
            raise DomainError(
                ErrorCode.PAYMENT_MISMATCH, field=["amount"], expected=order.total_fen
            )
        # A group-buy member's order waits for its group; the last seat paid fills it.
        target = OrderStatus.GROUPING if order.group_id is not None else OrderStatus.PAID
        check_move(order, target, Mover.SYSTEM)
        group = None
        if order.group_id is not None:
            group = await uow.campaigns.pay_seat(order.group_id, order.member_id, cmd.at)
            if group is None:
                raise DomainError(ErrorCode.GROUP_CLOSED, field=["orderId"])
        await uow.orders.add_payment(
            order_id=order.id,
            provider=cmd.provider,
            transaction_id=cmd.transaction_id,
            amount_fen=cmd.amount_fen,
            at=cmd.at,
        )
        # Pickup and dine-in orders get the number the counter calls (取餐号).
        code = pickup_code(order.id) if order.channel is not Channel.DELIVERY else None
        paid = await move_order(uow, order, target, cmd.at, paid_at=cmd.at, pickup_code=code)
        paid = replace(paid, paid_at=cmd.at, pickup_code=code)
        if order.coupon_id is not None:
            await change_coupon_status(
                order.coupon_id, CouponStatus.USED, order_ref=order.reference, uow=uow
            )
        if group is not None:
            uow.record(group_changed(group))
            if group.seats_paid == group.size:
                await _fill_group(uow, group, cmd.at)
                paid = replace(paid, status=OrderStatus.PAID, version=paid.version + 1)
        await uow.commit()
    return paid


async def _fill_group(uow: UnitOfWork, group: GroupBuy, at: datetime) -> None:
    """Every seat is paid: the group succeeds and its orders go to the store's kitchen."""
    filled = await uow.campaigns.set_group_status(group.id, GroupStatus.OPEN, GroupStatus.SUCCEEDED)
    if filled is None:  # pragma: no cover - the group row is locked by the payment
        raise DomainError(ErrorCode.GROUP_CLOSED, field=["orderId"])
    uow.record(group_changed(filled))
    for member_order in await uow.orders.in_group(group.id):
        if member_order.status is OrderStatus.GROUPING:
            await move_order(uow, member_order, OrderStatus.PAID, at)


def group_changed(group: GroupBuy) -> GroupBuyChanged:
    return GroupBuyChanged(
        group_id=group.id,
        campaign_id=group.campaign_id,
        status=group.status.value,
        seats_taken=group.seats_taken,
        seats_paid=group.seats_paid,
        version=group.version,
    )


@dataclass(frozen=True, slots=True)
class PayInDevelopment:
    order_id: int
    now: datetime


async def pay_in_development(cmd: PayInDevelopment, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """The development payment adapter: the order's member pays it at once. Paying twice is
    the same transaction told twice, so it changes nothing."""
    async with uow.reading() as reads:
        order = await reads.orders.get(cmd.order_id)
    if _mover(viewer, order) is not Mover.CUSTOMER:
        raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
    assert order is not None
    payment = ConfirmPayment(
        order_id=order.id,
        provider="development",
        transaction_id=f"dev-{order.id}",
        amount_fen=order.total_fen,
        at=cmd.now,
    )
    return await confirm_payment(payment, uow=uow)


async def move_order(
    uow: UnitOfWork, order: Order, target: OrderStatus, at: datetime, **changes: object
) -> Order:
    """The conditional status update: fails with INVALID_TRANSITION if another got there first."""
    version = await uow.orders.change_status(order.id, order.status, target, at=at, **changes)
    if version is None:
        raise DomainError(ErrorCode.INVALID_TRANSITION, field=["status"], current=order.status)
    delta = load_change(order.status, target)
    if delta:
        await uow.orders.change_load(order.store_id, delta)
    moved = replace(order, status=target, version=version)
    uow.record(order_changed(moved))
    return moved


# --- lifecycle ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpdateOrderStatus:
    order_id: int
    status: OrderStatus
    now: datetime
    policy: OrderPolicy


async def update_order_status(cmd: UpdateOrderStatus, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """Staff of the order's store move it along; its member may cancel before ACCEPTED.

    COMPLETED counts the amount paid toward the member's tier and earns points; a cancel
    releases the held stock, returns the coupon and refunds what was paid.
    """
    refund: tuple[Order, int] | None = None
    dispatched: tuple[Delivery, DispatchRequest] | None = None
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        mover = _mover(viewer, order)
        assert order is not None
        check_move(order, cmd.status, mover)
        if cmd.status is OrderStatus.CANCELLED:
            moved, refunded = await cancel_in(uow, order, cmd.now, actor_of(viewer))
            if refunded:
                refund = (moved, refunded)
        elif cmd.status is OrderStatus.COMPLETED:
            moved = await move_order(uow, order, cmd.status, cmd.now, completed_at=cmd.now)
            moved = replace(moved, completed_at=cmd.now)
            await _reward(uow, moved, cmd.policy, cmd.now)
        else:
            moved = await move_order(uow, order, cmd.status, cmd.now)
        if should_dispatch(order, cmd.status, cmd.policy.delivery):
            store = await uow.catalog.get_store(order.store_id)
            assert store is not None
            delivery = await open_delivery(uow, order, store, cmd.policy.delivery, cmd.now)
            dispatched = (delivery, dispatch_request(delivery, order, store))
        await uow.commit()
    if refund is not None:
        await cmd.policy.payments.refund(refund[0], refund[1], f"{order.reference}:cancel")
    if dispatched is not None:
        await call_platform(
            dispatched[0], dispatched[1], uow=uow, policy=cmd.policy.delivery, now=cmd.now
        )
    return moved


def _mover(viewer: Viewer, order: Order | None) -> Mover:
    """Who is asking about this order. A member is told another's order does not exist."""
    if isinstance(viewer, StaffViewer):
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
        if not viewer.manages(order.store_id):
            raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])
        return Mover.STAFF
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    if order is None or order.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, field=["orderId"])
    return Mover.CUSTOMER


async def _release(uow: UnitOfWork, order: Order, reference: str, units: Mapping[int, int]) -> None:
    """Put units (sku → quantity) back on the store's shelf, once per reference.

    A campaign order's units go back to the campaign's quota while it is open; once the
    campaign has closed, to the shelf like any other.
    """
    if order.campaign_id is not None:
        units = dict(units)
        for sku, qty in list(units.items()):
            if qty > 0 and await uow.campaigns.return_quota(
                order.campaign_id, order.store_id, sku, qty
            ):
                units[sku] = 0
    lines = sorted(
        (MovementLine(sku, qty) for sku, qty in units.items() if qty > 0), key=lambda m: m.sku_id
    )
    if not lines:
        return
    await apply_movement(
        uow,
        actor="system",
        store_id=order.store_id,
        source=MovementSource.ORDER_RELEASE,
        reference=reference,
        lines=lines,
        reason="",
        line_field=None,
        key_field="orderId",
    )


async def cancel_in(uow: UnitOfWork, order: Order, now: datetime, actor: str) -> tuple[Order, int]:
    """Cancel: stock released, coupon back if still valid, payment refunded in full.

    A campaign order also gives back its member's entry; a group seat is freed while the
    group is open; a bargain may be bought again.
    """
    was = order.status
    refunded = 0
    if was is not OrderStatus.PENDING_PAYMENT:
        refunded = order.total_fen - order.refunded_fen
        lines = [
            RefundLine(line.line_no, line.quantity - line.refunded_quantity)
            for line in order.lines
            if line.quantity > line.refunded_quantity
        ]
        await uow.orders.add_refund(
            order_id=order.id,
            reference="cancel",
            amount_fen=refunded,
            lines=lines,
            reason="cancelled",
            actor=actor,
            stock_returned=True,
            coupon_restored=order.coupon_id is not None,
        )
        version = await uow.orders.apply_refund(order.id, order.version, refunded, lines, now)
        if version is None:
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["status"], current=was)
        order = replace(order, refunded_fen=order.total_fen, version=version)
    moved = await move_order(uow, order, OrderStatus.CANCELLED, now)
    await _leave_campaign(uow, order, was)
    await _release(
        uow,
        order,
        order.reference,
        {line.sku_id: line.quantity - line.refunded_quantity for line in order.lines},
    )
    if order.coupon_id is not None:
        coupon = await uow.coupons.get_coupon(order.coupon_id)
        if coupon is not None and (was is OrderStatus.PENDING_PAYMENT or now < coupon.valid_until):
            await change_coupon_status(
                order.coupon_id, CouponStatus.AVAILABLE, order_ref=None, uow=uow
            )
    return moved, refunded


async def _leave_campaign(uow: UnitOfWork, order: Order, was: OrderStatus) -> None:
    """A cancelled campaign order gives back the member's entry and group seat, or lets
    its bargain be bought again.

    Rows are taken in the order every campaign write takes them (the member's entry, the
    group, then the quota in ``_release``), so a cancel racing a join cannot deadlock.
    """
    if order.campaign_id is None:
        return
    if order.bargain_id is None:
        # The member's entry was this order, or its group seat; a bargain's is the bargain.
        await uow.campaigns.leave(order.campaign_id, order.member_id)
    if order.group_id is not None:
        group = await uow.campaigns.release_seat(order.group_id, order.member_id)
        if group is not None:
            uow.record(group_changed(group))
    if order.bargain_id is not None and was is OrderStatus.PENDING_PAYMENT:
        await uow.campaigns.reopen(order.bargain_id, order.id)


async def _reward(uow: UnitOfWork, order: Order, policy: OrderPolicy, now: datetime) -> None:
    """A completed order earns points on what was paid, at the tier the member held while
    ordering, then counts toward the tier."""
    paid = order.paid_fen
    before = await uow.members.points_balance(order.member_id)
    after = await earn_points(
        order.member_id,
        order.reference,
        paid,
        now=now,
        expiry_days=policy.points_expiry_days,
        uow=uow,
    )
    await uow.orders.set_points_earned(order.id, after - before)
    await record_spend(
        order.member_id,
        order.reference,
        paid,
        at=now,
        thresholds=policy.tier_thresholds,
        uow=uow,
    )


async def cancel_expired(now: datetime, *, uow: UnitOfWork, batch: int = SWEEP_BATCH) -> list[int]:
    """Cancel unpaid orders past their deadline: stock released, coupons restored.

    Safe with several processes: each order is claimed once (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, the write lock on SQLite) and the status update is conditional anyway.
    Each order is cancelled in a transaction of its own: two sweepers holding several
    orders each would otherwise return their stock in crossing orders and deadlock.
    """
    cancelled: list[int] = []
    for _ in range(batch):
        async with uow:
            claimed = await uow.orders.expired_unpaid(now, 1)
            order = await uow.orders.get(claimed[0]) if claimed else None
            if order is None or order.status is not OrderStatus.PENDING_PAYMENT:
                return cancelled
            await cancel_in(uow, order, now, "system:payment-timeout")
            await uow.commit()
        cancelled.append(order.id)
    return cancelled


# --- refunds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundOrder:
    order_id: int
    lines: Sequence[RefundLine] | None  # None: everything not yet refunded
    reason: str
    idempotency_key: str
    now: datetime
    policy: OrderPolicy


async def refund_order(cmd: RefundOrder, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """Refund all of an order or some units (staff of its store).

    Units the kitchen had not started go back on the shelf; a full refund before
    preparation returns the coupon while it is valid; points earned are taken back in
    proportion and the refunded amount leaves the member's tier spend.
    """
    reason = clean_reason(cmd.reason, required=True)
    key = clean_idempotency_key(cmd.idempotency_key)
    stopped: Delivery | None = None
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        if _mover(viewer, order) is not Mover.STAFF:
            raise DomainError(ErrorCode.FORBIDDEN, field=["orderId"])
        assert order is not None
        if await uow.orders.has_refund(order.id, key):
            # The same key again: that refund happened; the order as it stands now.
            return order
        coupon_valid = False
        if order.coupon_id is not None:
            coupon = await uow.coupons.get_coupon(order.coupon_id)
            coupon_valid = coupon is not None and cmd.now < coupon.valid_until
        plan = plan_refund(order, cmd.lines, coupon_still_valid=coupon_valid)
        recorded = await uow.orders.add_refund(
            order_id=order.id,
            reference=key,
            amount_fen=plan.amount_fen,
            lines=plan.lines,
            reason=reason,
            actor=actor_of(viewer),
            stock_returned=plan.return_stock,
            coupon_restored=plan.restore_coupon,
        )
        if not recorded:  # pragma: no cover - has_refund ran in this transaction
            raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["idempotencyKey"])
        reference = f"{order.reference}:refund:{key}"
        if plan.return_stock:
            by_no = {line.line_no: line for line in order.lines}
            units: dict[int, int] = {}
            for part in plan.lines:
                sku = by_no[part.line_no].sku_id
                units[sku] = units.get(sku, 0) + part.quantity
            await _release(uow, order, reference, units)
        if plan.restore_coupon and order.coupon_id is not None:
            await change_coupon_status(
                order.coupon_id, CouponStatus.AVAILABLE, order_ref=None, uow=uow
            )
        if order.status is OrderStatus.COMPLETED:
            await _take_back_reward(uow, order, plan.amount_fen, reference, cmd)
        version = await uow.orders.apply_refund(
            order.id, order.version, plan.amount_fen, plan.lines, cmd.now
        )
        if version is None:  # another refund or move of this order won the race
            raise DomainError(ErrorCode.INVALID_TRANSITION, field=["orderId"])
        moved = replace(order, version=version)
        if plan.full:
            moved = await move_order(uow, moved, OrderStatus.REFUNDED, cmd.now)
            stopped = await stop_delivery(uow, order.id, cmd.policy.delivery, cmd.now)
        else:
            uow.record(order_changed(moved))
        await uow.commit()
        refunded = {line.line_no: line.quantity for line in plan.lines}
        result = replace(
            moved,
            refunded_fen=order.refunded_fen + plan.amount_fen,
            lines=tuple(
                replace(
                    line, refunded_quantity=line.refunded_quantity + refunded.get(line.line_no, 0)
                )
                for line in order.lines
            ),
        )
    await cmd.policy.payments.refund(result, plan.amount_fen, reference)
    if plan.full and stopped is not None:
        await tell_platform_stopped(stopped, cmd.policy.delivery)
    return result


async def _take_back_reward(
    uow: UnitOfWork, order: Order, amount_fen: int, reference: str, cmd: RefundOrder
) -> None:
    await record_spend(
        order.member_id,
        reference,
        -amount_fen,
        at=cmd.now,
        thresholds=cmd.policy.tier_thresholds,
        uow=uow,
    )
    earned = await uow.orders.points_earned(order.id)
    take = points_to_reverse(earned, amount_fen, order.total_fen)
    balance = await uow.members.points_balance(order.member_id)
    take = min(take, balance)  # points already spent cannot be taken back below zero
    if take > 0:
        await uow.members.change_points(
            member_id=order.member_id, kind=PointsKind.REFUND, reference=reference, delta=-take
        )
