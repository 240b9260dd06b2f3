"""Campaigns: set up by operators, sold through group-buys, bargains and flash sales.

A campaign order is an ordinary order (the same payment, refund and feeds) with one line
at the campaign's price, drawn from the store's campaign quota instead of its shelf. Each
limit is a conditional write in the order's own transaction, so a refusal leaves nothing.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from dinegraph.domain.campaigns import (
    Bargain,
    BargainStatus,
    Campaign,
    CampaignKind,
    CampaignReport,
    CampaignSpec,
    Chosen,
    Deal,
    Fulfilment,
    GroupBuy,
    GroupStatus,
    Invite,
    InviteKind,
    bargain_expiry,
    bargain_steps,
    check_running,
    check_spec,
    choose,
    group_expiry,
    quota_lines,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.checkout import Checkout, LineRequest, check_checkout, checkout_fingerprint
from dinegraph.domain.coupons import is_new_member
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, Viewer, actor_of, require_catalog_editor
from dinegraph.domain.orders import DeliveryAddress, Order, OrderStatus, clean_idempotency_key
from dinegraph.domain.ports import Repositories, ShareCodes, UnitOfWork
from dinegraph.domain.quotes import first_problem
from dinegraph.domain.services.checkout import Placed, build_quote, draft_order, insert_order
from dinegraph.domain.services.orders import OrderPolicy, cancel_in, group_changed, order_changed
from dinegraph.domain.services.stock import apply_movement
from dinegraph.domain.stock import MovementLine, MovementSource

SWEEP_BATCH = 50
_rng = random.SystemRandom()


def campaign_reference(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


# --- set-up ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateCampaign:
    spec: CampaignSpec
    now: datetime


async def create_campaign(cmd: CreateCampaign, *, uow: UnitOfWork, viewer: Viewer) -> Campaign:
    """Head office and operators set up a campaign; each store's quota of each tracked SKU
    is held from its stock through the ledger at once, so nothing is promised that the
    shelf does not hold. A store short of stock refuses the whole campaign."""
    staff = require_catalog_editor(viewer)
    spec = cmd.spec
    async with uow:
        found = await uow.catalog.skus_with_kinds(item.sku_id for item in spec.items)
        prices: dict[int, int] = {}
        channels: dict[int, frozenset[Channel]] = {}
        for sku_id, (sku, _) in found.items():
            product = await uow.catalog.get_product(sku.product_id)
            if product is None or not product.listed:
                continue
            prices[sku_id] = sku.price_fen
            channels[sku_id] = product.channels
        stores = frozenset(
            [
                store_id
                for store_id in set(spec.store_ids)
                if await uow.catalog.get_store(store_id) is not None
            ]
        )
        spec = check_spec(
            spec, now=cmd.now, regular_prices=prices, sku_channels=channels, known_stores=stores
        )
        campaign = await uow.campaigns.add(spec, created_by=actor_of(staff), at=cmd.now)
        await uow.campaigns.add_quotas(campaign.id, quota_lines(spec))
        tracked = sorted(sku_id for sku_id, (sku, _) in found.items() if sku.tracked)
        for n, store_id in enumerate(spec.store_ids):
            lines = [MovementLine(sku_id, -spec.quota_per_store) for sku_id in tracked]
            if not lines:
                continue
            try:
                await apply_movement(
                    uow,
                    actor=actor_of(staff),
                    store_id=store_id,
                    source=MovementSource.CAMPAIGN_HOLD,
                    reference=campaign_reference(campaign.id),
                    lines=lines,
                    reason=spec.name,
                    line_field=None,
                    key_field="campaignId",
                )
            except DomainError as error:
                if error.code is not ErrorCode.OUT_OF_STOCK:
                    raise
                raise DomainError(
                    ErrorCode.OUT_OF_STOCK, field=["storeIds", str(n)], **error.params
                ) from error
        await uow.commit()
    return campaign


@dataclass(frozen=True, slots=True)
class EndCampaign:
    campaign_id: int
    now: datetime
    policy: OrderPolicy


async def end_campaign(cmd: EndCampaign, *, uow: UnitOfWork, viewer: Viewer) -> Campaign:
    """Stop a campaign now: nothing more is sold, its open groups fail (their members are
    refunded), and what is left of the quotas goes back on the shelves."""
    require_catalog_editor(viewer)
    async with uow:
        campaign = await uow.campaigns.get(cmd.campaign_id)
        if campaign is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
        if not await uow.campaigns.end(campaign.id, cmd.now):
            raise DomainError(ErrorCode.CAMPAIGN_ENDED, field=["campaignId"])
        await uow.campaigns.cut_groups_short(campaign.id, cmd.now)
        await uow.commit()
    while True:
        failed = await fail_expired_groups(cmd.now, cmd.policy, uow=uow)
        if len(failed.groups) < SWEEP_BATCH:
            break
    await close_campaigns(cmd.now, uow=uow)
    ended = replace(campaign, ended_at=cmd.now)
    return ended


async def close_campaigns(now: datetime, *, uow: UnitOfWork, batch: int = SWEEP_BATCH) -> int:
    """Ended campaigns give what is left of their quotas back to the shelves, once."""
    closed = 0
    async with uow:
        for campaign_id in await uow.campaigns.to_close(now, batch):
            left = await uow.campaigns.close(campaign_id)
            if left is None:
                continue
            closed += 1
            by_store: dict[int, list[MovementLine]] = {}
            for store_id, sku_id, units in left:
                if units > 0:
                    by_store.setdefault(store_id, []).append(MovementLine(sku_id, units))
            for store_id, lines in sorted(by_store.items()):
                await apply_movement(
                    uow,
                    actor="system:campaign-end",
                    store_id=store_id,
                    source=MovementSource.CAMPAIGN_RELEASE,
                    reference=campaign_reference(campaign_id),
                    lines=sorted(lines, key=lambda m: m.sku_id),
                    reason="",
                    line_field=None,
                    key_field="campaignId",
                )
        await uow.commit()
    return closed


async def campaign_report(campaign_id: int, *, uow: UnitOfWork, viewer: Viewer) -> CampaignReport:
    require_catalog_editor(viewer)
    async with uow.reading() as reads:
        if await reads.campaigns.get(campaign_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
        return await reads.campaigns.report(campaign_id)


# --- campaign orders ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderOptions:
    """How the buyer wants a campaign order: each part optional where the campaign can
    choose (see ``campaigns.choose``)."""

    fulfilment: Fulfilment = field(default_factory=Fulfilment)
    address: DeliveryAddress | None = None
    idempotency_key: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Sale:
    """One campaign order being placed, with everything its write needs."""

    campaign: Campaign
    chosen: Chosen
    deal: Deal
    member_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


def _member(viewer: Viewer) -> int:
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    return viewer.member_id


async def _admit(uow: UnitOfWork, campaign: Campaign, member_id: int, now: datetime) -> bool:
    """Refuse a member the campaign is not for, or one who took part as often as allowed;
    counts this entry. Returns whether the member is new (for the invitation record)."""
    member = await uow.members.get(member_id)
    if member is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    new = is_new_member(member, now)
    if campaign.spec.new_members_only and not new:
        raise DomainError(ErrorCode.NOT_ELIGIBLE, field=["campaignId"])
    if not await uow.campaigns.enter(campaign.id, member_id, campaign.spec.per_member_limit):
        raise DomainError(
            ErrorCode.CAMPAIGN_LIMIT_REACHED,
            field=["campaignId"],
            limit=campaign.spec.per_member_limit,
        )
    return new


async def _place(uow: UnitOfWork, sale: _Sale, quantity: int = 1) -> Order:
    """The campaign order in the open unit of work: priced at the store with the deal,
    its units taken from the quota last, so the hot quota row is locked the least."""
    chosen, options = sale.chosen, sale.options
    checkout = check_checkout(
        Checkout(
            channel=chosen.channel,
            lines=(LineRequest(chosen.item.sku_id, quantity),),
            store_id=chosen.store_id,
            address=options.address,
            note=options.note,
        )
    )
    key = clean_idempotency_key(options.idempotency_key or uuid.uuid4().hex)
    deal = sale.deal
    print_ = hashlib.sha256(
        f"{checkout_fingerprint(checkout)}:{deal.campaign_id}:{deal.group_id}:{deal.bargain_id}".encode()
    ).hexdigest()[:32]
    existing = await uow.orders.by_key(sale.member_id, key)
    if existing is not None:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["order", "idempotencyKey"])
    q = await build_quote(
        checkout,
        repos=uow,
        member_id=sale.member_id,
        policy=sale.policy,
        now=sale.now,
        deal=deal,
    )
    problem = first_problem(q)
    if problem is not None:
        raise problem
    draft = draft_order(
        q,
        checkout,
        member_id=sale.member_id,
        key=key,
        print_=print_,
        now=sale.now,
        timeout=sale.policy.payment_timeout,
    )
    draft = replace(
        draft, campaign_id=deal.campaign_id, group_id=deal.group_id, bargain_id=deal.bargain_id
    )
    inserted = await insert_order(uow, draft, print_)
    if isinstance(inserted, Placed):  # the same key committed meanwhile
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["order", "idempotencyKey"])
    if not await uow.campaigns.take_quota(
        deal.campaign_id, chosen.store_id, chosen.item.sku_id, quantity
    ):
        raise DomainError(ErrorCode.SOLD_OUT, field=["campaignId"])
    uow.record(order_changed(inserted))
    return inserted


async def _campaign(repos: Repositories, campaign_id: int) -> Campaign:
    campaign = await repos.campaigns.get(campaign_id)
    if campaign is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
    return campaign


async def _sold_out(repos: Repositories, campaign: Campaign, chosen: Chosen) -> None:
    """A plain read, so that once the quota is gone a buyer is refused in one statement.

    The conditional take in ``_place`` decides; this only spares the work of a certain
    refusal. Where writers queue for one lock (SQLite) it runs before taking the lock.
    """
    left = await repos.campaigns.quota_left(campaign.id, chosen.store_id, chosen.item.sku_id)
    if not left:
        raise DomainError(ErrorCode.SOLD_OUT, field=["campaignId"])


# --- flash sales (秒杀) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuyFlashSale:
    campaign_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


async def buy_flash_sale(cmd: BuyFlashSale, *, uow: UnitOfWork, viewer: Viewer) -> Order:
    """One unit at the flash price, within the member's limit, while the quota lasts."""
    member_id = _member(viewer)
    async with uow.reading() as reads:
        campaign = await _campaign(reads, cmd.campaign_id)
    check_running(campaign, CampaignKind.FLASH_SALE, cmd.now)
    chosen = choose(campaign, cmd.options.fulfilment)
    if uow.one_writer:
        async with uow.reading() as reads:
            await _sold_out(reads, campaign, chosen)
    deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen)
    sale = _Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
    async with uow:
        first = await _replayed(uow, member_id, cmd.options, campaign.id)
        if first is not None:
            return first
        # Again under the lock: buyers who queued for it while units were left are
        # refused in one statement once they are gone.
        await _sold_out(uow, campaign, chosen)
        await _admit(uow, campaign, member_id, cmd.now)
        order = await _place(uow, sale)
        await uow.commit()
    return order


async def _replayed(
    uow: UnitOfWork, member_id: int, options: OrderOptions, campaign_id: int
) -> Order | None:
    """A retry with the key of an order this campaign placed before: that order."""
    if options.idempotency_key is None:
        return None
    key = clean_idempotency_key(options.idempotency_key)
    existing = await uow.orders.by_key(member_id, key)
    if existing is None:
        return None
    if existing.campaign_id != campaign_id:
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_REUSED, field=["order", "idempotencyKey"])
    return existing


# --- group-buys (拼团) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartGroupBuy:
    campaign_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class GroupOrder:
    group: GroupBuy
    order: Order


async def start_group_buy(cmd: StartGroupBuy, *, uow: UnitOfWork, viewer: Viewer) -> GroupOrder:
    """Open a group with the viewer as its leader, and place the leader's order at the
    group price; friends join through the leader's share code."""
    member_id = _member(viewer)
    async with uow:
        campaign = await _campaign(uow, cmd.campaign_id)
        check_running(campaign, CampaignKind.GROUP_BUY, cmd.now)
        assert campaign.spec.group is not None
        chosen = choose(campaign, cmd.options.fulfilment)
        await _sold_out(uow, campaign, chosen)
        await _admit(uow, campaign, member_id, cmd.now)
        group = await uow.campaigns.add_group(
            campaign_id=campaign.id,
            leader_id=member_id,
            store_id=chosen.store_id,
            sku_id=chosen.item.sku_id,
            size=campaign.spec.group.size,
            expires_at=group_expiry(campaign, cmd.now),
            at=cmd.now,
        )
        deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen, group_id=group.id)
        sale = _Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await _place(uow, sale)
        await uow.campaigns.add_seat(group.id, member_id, order.id, cmd.now)
        uow.record(group_changed(group))
        await uow.commit()
    return GroupOrder(group, order)


@dataclass(frozen=True, slots=True)
class JoinGroupBuy:
    share_code: str
    options: OrderOptions
    now: datetime
    policy: OrderPolicy
    codes: ShareCodes


async def join_group_buy(cmd: JoinGroupBuy, *, uow: UnitOfWork, viewer: Viewer) -> GroupOrder:
    """Take a seat in a friend's group and place the joiner's order at the group price.

    The seat is a conditional update of the group (open, not expired, not full), so the
    last seats go to exactly as many joiners as there are; the (group, member) key keeps
    anyone from joining twice. The seat is held until the order's payment deadline.
    """
    member_id = _member(viewer)
    invite = cmd.codes.read(cmd.share_code).check(InviteKind.GROUP, cmd.now)
    async with uow:
        group = await uow.campaigns.get_group(invite.target_id)
        if group is None or group.campaign_id != invite.campaign_id:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        campaign = await _campaign(uow, group.campaign_id)
        check_running(campaign, CampaignKind.GROUP_BUY, cmd.now)
        if await uow.campaigns.seat(group.id, member_id) is not None:
            raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"])
        _check_open(group, cmd.now)
        wanted = cmd.options.fulfilment
        chosen = choose(
            campaign,
            Fulfilment(
                sku_id=group.sku_id,
                store_id=wanted.store_id or group.store_id,
                channel=wanted.channel,
            ),
        )
        await _sold_out(uow, campaign, chosen)
        try:
            new = await _admit(uow, campaign, member_id, cmd.now)
        except DomainError as error:
            # The entry was waiting on this member's own join of this group, committed
            # meanwhile (PostgreSQL): that join is the reason, not some other entry.
            if error.code is ErrorCode.CAMPAIGN_LIMIT_REACHED and (
                await uow.campaigns.seat(group.id, member_id) is not None
            ):
                raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"]) from error
            raise
        seated = await uow.campaigns.take_seat(group.id, cmd.now)
        if seated is None:
            current = await uow.campaigns.get_group(group.id)
            assert current is not None
            _check_open(current, cmd.now)
            raise DomainError(ErrorCode.GROUP_FULL, field=["shareCode"])  # pragma: no cover
        deal = Deal(campaign.id, chosen.item.sku_id, chosen.item.price_fen, group_id=group.id)
        sale = _Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await _place(uow, sale)
        if not await uow.campaigns.add_seat(group.id, member_id, order.id, cmd.now):
            raise DomainError(ErrorCode.ALREADY_JOINED, field=["shareCode"])
        await _invited(uow, invite, member_id, new)
        uow.record(group_changed(seated))
        await uow.commit()
    return GroupOrder(seated, order)


def _check_open(group: GroupBuy, now: datetime) -> None:
    if group.status is not GroupStatus.OPEN or now >= group.expires_at:
        raise DomainError(ErrorCode.GROUP_CLOSED, field=["shareCode"])
    if group.seats_left <= 0:
        raise DomainError(ErrorCode.GROUP_FULL, field=["shareCode"])


async def _invited(uow: UnitOfWork, invite: Invite, invitee_id: int, new: bool) -> None:
    """Who brought whom, for reports and later commission (not oneself)."""
    if invite.inviter_id == invitee_id:
        return
    await uow.campaigns.add_invitation(
        campaign_id=invite.campaign_id,
        kind=invite.kind,
        target_id=invite.target_id,
        inviter_id=invite.inviter_id,
        invitee_id=invitee_id,
        invitee_was_new=new,
    )


@dataclass(frozen=True, slots=True)
class FailedGroups:
    groups: list[int]
    refunds: list[tuple[Order, int]]  # orders refunded, with the amount


async def fail_expired_groups(
    now: datetime, policy: OrderPolicy, *, uow: UnitOfWork, batch: int = SWEEP_BATCH
) -> FailedGroups:
    """Groups not filled in time fail: every member's order is cancelled, paid ones with
    a full refund, their units back in the quota (or on the shelf once it has closed).

    Safe with several processes: each group is claimed by a conditional status update
    (and ``SKIP LOCKED`` on PostgreSQL), so a group is failed, and refunded, once.
    """
    failed: list[int] = []
    refunds: list[tuple[Order, int]] = []
    async with uow:
        for group_id in await uow.campaigns.expired_groups(now, batch):
            group = await uow.campaigns.set_group_status(
                group_id, GroupStatus.OPEN, GroupStatus.FAILED
            )
            if group is None:
                continue
            failed.append(group_id)
            for order in await uow.orders.in_group(group_id):
                if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.GROUPING):
                    cancelled, refunded = await cancel_in(uow, order, now, "system:group-failed")
                    if refunded:
                        refunds.append((cancelled, refunded))
            uow.record(group_changed(group))
        await uow.commit()
    for order, amount in refunds:
        await policy.payments.refund(order, amount, f"{order.reference}:group-failed")
    return FailedGroups(failed, refunds)


# --- bargains (砍价) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartBargain:
    campaign_id: int
    fulfilment: Fulfilment
    now: datetime


async def start_bargain(cmd: StartBargain, *, uow: UnitOfWork, viewer: Viewer) -> Bargain:
    """Open a bargain at the store's price; every help's cut is fixed now, so the number
    of helps to the floor is known (and shown) from the start."""
    member_id = _member(viewer)
    async with uow:
        campaign = await _campaign(uow, cmd.campaign_id)
        check_running(campaign, CampaignKind.BARGAIN, cmd.now)
        rules = campaign.spec.bargain
        assert rules is not None
        chosen = choose(campaign, replace(cmd.fulfilment, channel=None), need_channel=False)
        await _admit(uow, campaign, member_id, cmd.now)
        candidates = await uow.orders.candidates([chosen.item.sku_id], chosen.store_id)
        item = candidates.items.get((chosen.store_id, chosen.item.sku_id))
        if item is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=["order", "skuId"])
        start, floor = item.unit_price_fen, chosen.item.price_fen
        if start - floor < rules.helps:  # the store sells it below the campaign's room
            raise DomainError(ErrorCode.NOT_AVAILABLE, field=["order", "storeId"])
        bargain = await uow.campaigns.add_bargain(
            Bargain(
                id=0,
                campaign_id=campaign.id,
                member_id=member_id,
                store_id=chosen.store_id,
                sku_id=chosen.item.sku_id,
                start_price_fen=start,
                floor_price_fen=floor,
                steps=bargain_steps(start - floor, rules.helps, _rng),
                helps_done=0,
                order_id=None,
                expires_at=bargain_expiry(campaign, cmd.now),
                created_at=cmd.now,
                version=1,
            )
        )
        await uow.commit()
    return bargain


@dataclass(frozen=True, slots=True)
class HelpBargain:
    share_code: str
    now: datetime
    policy: OrderPolicy
    codes: ShareCodes


@dataclass(frozen=True, slots=True)
class Helped:
    bargain: Bargain
    cut_fen: int


async def help_bargain(cmd: HelpBargain, *, uow: UnitOfWork, viewer: Viewer) -> Helped:
    """A friend's help cuts the price by the next fixed step. Each member helps a bargain
    once, and helps at most the campaign's daily cap across bargains; nobody helps their
    own."""
    helper_id = _member(viewer)
    invite = cmd.codes.read(cmd.share_code).check(InviteKind.BARGAIN, cmd.now)
    async with uow:
        bargain = await uow.campaigns.get_bargain(invite.target_id)
        if bargain is None or bargain.campaign_id != invite.campaign_id:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        if bargain.member_id == helper_id:
            raise DomainError(ErrorCode.OWN_BARGAIN, field=["shareCode"])
        if await uow.campaigns.has_helped(bargain.id, helper_id):
            raise DomainError(ErrorCode.ALREADY_HELPED, field=["shareCode"])
        if bargain.status(cmd.now) is not BargainStatus.OPEN:
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["shareCode"])
        campaign = await _campaign(uow, bargain.campaign_id)
        rules = campaign.spec.bargain
        assert rules is not None
        helper = await uow.members.get(helper_id)
        if helper is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        day = cmd.now.astimezone(cmd.policy.time_zone).date()
        if not await uow.campaigns.count_help(helper_id, day, rules.daily_help_cap):
            raise DomainError(
                ErrorCode.HELP_LIMIT_REACHED, field=["shareCode"], limit=rules.daily_help_cap
            )
        cut = await uow.campaigns.cut(bargain.id, cmd.now)
        if cut is None:  # completed, bought or expired since it was read
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["shareCode"])
        step_no = cut.helps_done - 1
        cut_fen = cut.steps[step_no]
        if not await uow.campaigns.record_help(bargain.id, helper_id, step_no, cut_fen, cmd.now):
            raise DomainError(ErrorCode.ALREADY_HELPED, field=["shareCode"])
        await _invited(uow, invite, helper_id, is_new_member(helper, cmd.now))
        await uow.commit()
    return Helped(cut, cut_fen)


@dataclass(frozen=True, slots=True)
class BuyBargain:
    bargain_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class BargainOrder:
    bargain: Bargain
    order: Order


async def buy_bargain(cmd: BuyBargain, *, uow: UnitOfWork, viewer: Viewer) -> BargainOrder:
    """The bargain's owner buys at the price reached so far, or at the floor once every
    help is in; a bargain is bought once (again only if that order went unpaid)."""
    member_id = _member(viewer)
    async with uow:
        bargain = await uow.campaigns.get_bargain(cmd.bargain_id)
        if bargain is None or bargain.member_id != member_id:
            raise DomainError(ErrorCode.NOT_FOUND, field=["bargainId"])
        if bargain.status(cmd.now) in (BargainStatus.PURCHASED, BargainStatus.EXPIRED):
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["bargainId"])
        campaign = await _campaign(uow, bargain.campaign_id)
        check_running(campaign, CampaignKind.BARGAIN, cmd.now)
        wanted = cmd.options.fulfilment
        chosen = choose(
            campaign,
            Fulfilment(sku_id=bargain.sku_id, store_id=bargain.store_id, channel=wanted.channel),
        )
        deal = Deal(campaign.id, bargain.sku_id, bargain.price_fen, bargain_id=bargain.id)
        sale = _Sale(campaign, chosen, deal, member_id, cmd.options, cmd.now, cmd.policy)
        order = await _place(uow, sale)
        if not await uow.campaigns.purchase(bargain.id, order.id, cmd.now):
            raise DomainError(ErrorCode.BARGAIN_CLOSED, field=["bargainId"])
        await uow.commit()
    return BargainOrder(replace(bargain, order_id=order.id, version=bargain.version + 1), order)
