"""What every campaign order shares, whether a flash sale, a group-buy or a bargain.

A campaign order is an ordinary order (the same payment, refund and feeds) with one line
at the campaign's price, drawn from the store's campaign quota instead of its shelf. Each
limit is a conditional write in the order's own transaction, so a refusal leaves nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from dinegraph.domain.campaigns import Campaign, Chosen, Deal, Fulfilment
from dinegraph.domain.checkout import Checkout, LineRequest, check_checkout, checkout_fingerprint
from dinegraph.domain.coupons import is_new_member
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, Viewer
from dinegraph.domain.invites import Invite
from dinegraph.domain.members import Member
from dinegraph.domain.orders import DeliveryAddress, Order, clean_idempotency_key
from dinegraph.domain.ports import Repositories, UnitOfWork
from dinegraph.domain.quotes import first_problem
from dinegraph.domain.services.checkout import Placed, build_quote, draft_order, insert_order
from dinegraph.domain.services.orders import OrderPolicy, order_changed
from dinegraph.domain.supplies import ExhaustionBoard, Supply, campaign_quota, supply_changed


@dataclass(frozen=True, slots=True)
class OrderOptions:
    """How the buyer wants a campaign order: each part optional where the campaign can
    choose (see ``campaigns.choose``)."""

    fulfilment: Fulfilment = field(default_factory=Fulfilment)
    address: DeliveryAddress | None = None
    idempotency_key: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Sale:
    """One campaign order being placed, with everything its write needs."""

    campaign: Campaign
    chosen: Chosen
    deal: Deal
    member_id: int
    options: OrderOptions
    now: datetime
    policy: OrderPolicy
    buyer: Member | None = None  # the member of ``member_id``, where read already
    key_checked: bool = False  # the order's key was looked up in this unit of work


def member_of(viewer: Viewer) -> int:
    if not isinstance(viewer, MemberViewer):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    return viewer.member_id


async def admit(uow: UnitOfWork, campaign: Campaign, member_id: int, now: datetime) -> bool:
    """Refuse a member the campaign is not for, or one who took part as often as allowed;
    counts this entry. Returns whether the member is new (for the invitation record)."""
    return is_new_member(await admit_member(uow, campaign, member_id, now), now)


async def admit_member(
    uow: UnitOfWork, campaign: Campaign, member_id: int, now: datetime
) -> Member:
    """``admit``, returning the member admitted."""
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
    return member


async def place(uow: UnitOfWork, sale: Sale, quantity: int = 1) -> Order:
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
    # A key of our own making is new; a buyer's, unless looked up already, may be reused.
    if options.idempotency_key is not None and not sale.key_checked:
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
        member=sale.buyer,
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
    quota = campaign_quota(deal.campaign_id, chosen.store_id, chosen.item.sku_id)
    taken = await uow.campaigns.take_quota(
        quota.campaign_id, quota.store_id, quota.sku_id, quantity
    )
    if taken is None:
        if quantity == 1:
            uow.board.saw_gone(quota)
        raise DomainError(ErrorCode.SOLD_OUT, field=["campaignId"])
    if taken.left == 0:
        uow.record(supply_changed(quota, gone=True))
    uow.record(order_changed(inserted))
    return inserted


async def get_campaign(repos: Repositories, campaign_id: int) -> Campaign:
    campaign = await repos.campaigns.get(campaign_id)
    if campaign is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
    return campaign


def quota_of(campaign: Campaign, chosen: Chosen) -> Supply:
    return campaign_quota(campaign.id, chosen.store_id, chosen.item.sku_id)


async def refuse_sold_out(
    repos: Repositories, board: ExhaustionBoard, campaign: Campaign, chosen: Chosen
) -> None:
    """A plain read, so that once the quota is gone a buyer is refused in one statement
    (and this process's board learns it).

    The conditional take in ``place`` decides; this only spares the work of a certain
    refusal to buyers who queued for the write while units were left.
    """
    quota = quota_of(campaign, chosen)
    if not await repos.campaigns.quota_left(quota.campaign_id, quota.store_id, quota.sku_id):
        board.saw_gone(quota)
        raise DomainError(ErrorCode.SOLD_OUT, field=["campaignId"])


async def record_invitation(uow: UnitOfWork, invite: Invite, invitee_id: int, new: bool) -> None:
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
