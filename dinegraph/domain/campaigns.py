"""Campaigns (营销活动): group-buys, bargains and flash sales, set up by operators.

A campaign sells some SKUs at a campaign price in a time window, at some stores and on
some channels. Each store's quota is held from its stock through the ledger when the
campaign is created, so a campaign never sells what the store does not have; campaign
orders draw on that quota, and whatever is left goes back on the shelf when it ends.
Group-buys, bargains and the share codes that bring friends in have their own modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import StaffRole, StaffViewer, Viewer

NAME_MAX = 40
MAX_ITEMS = 20
MAX_STORES = 500
MAX_WINDOW = timedelta(days=92)
MAX_LEAD = timedelta(days=366)  # a campaign is planned at most a year ahead
QUOTA_MAX = 100_000
LIMIT_MAX = 100
GROUP_SIZE = (2, 20)
GROUP_HOURS = (1, 72)
BARGAIN_HELPS = (1, 100)
BARGAIN_HOURS = (1, 168)
DAILY_HELP_CAP = (1, 50)
FLASH_QUANTITY_MAX = 10


class CampaignKind(StrEnum):
    GROUP_BUY = "GROUP_BUY"  # 拼团
    BARGAIN = "BARGAIN"  # 砍价
    FLASH_SALE = "FLASH_SALE"  # 秒杀


class CampaignState(StrEnum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    ENDED = "ENDED"


@dataclass(frozen=True, slots=True)
class CampaignItem:
    """A SKU on offer: its group or flash price, or a bargain's floor."""

    sku_id: int
    price_fen: int


@dataclass(frozen=True, slots=True)
class GroupRules:
    size: int  # members, the leader included
    hours: int  # a group that is not full and paid by then fails


@dataclass(frozen=True, slots=True)
class BargainRules:
    helps: int  # friends needed to reach the floor: fixed, and shown up front
    hours: int  # a bargain can be helped and bought for this long
    daily_help_cap: int  # helps one member may give per day, across bargains


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What an operator configures; ``check_spec`` refuses what cannot work."""

    kind: CampaignKind
    name: str
    starts_at: datetime
    ends_at: datetime
    items: tuple[CampaignItem, ...]
    store_ids: tuple[int, ...]
    channels: frozenset[Channel]
    quota_per_store: int  # units of each SKU each store holds for the campaign
    per_member_limit: int  # campaign orders (groups joined, bargains started) per member
    new_members_only: bool
    group: GroupRules | None = None
    bargain: BargainRules | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    spec: CampaignSpec
    ended_at: datetime | None  # ended early by an operator
    closed: bool  # what was left of the quotas went back on the shelves
    created_at: datetime

    @property
    def kind(self) -> CampaignKind:
        return self.spec.kind

    @property
    def ends_at(self) -> datetime:
        return min(self.spec.ends_at, self.ended_at) if self.ended_at else self.spec.ends_at

    def state(self, now: datetime) -> CampaignState:
        if now >= self.ends_at:
            return CampaignState.ENDED
        if now < self.spec.starts_at:
            return CampaignState.SCHEDULED
        return CampaignState.RUNNING

    def next_change(self, now: datetime) -> datetime | None:
        """When ``state`` next changes after ``now``: it starts, or ends; None once ended."""
        if now < self.spec.starts_at:
            return self.spec.starts_at
        return self.ends_at if now < self.ends_at else None

    def item(self, sku_id: int) -> CampaignItem | None:
        return next((i for i in self.spec.items if i.sku_id == sku_id), None)


def running_now(
    campaigns: Iterable[Campaign], now: datetime, store_id: int | None = None
) -> list[Campaign]:
    """Campaigns selling at ``now`` (at ``store_id``, if given), soonest to end first."""
    return sorted(
        (
            c
            for c in campaigns
            if c.state(now) is CampaignState.RUNNING
            and (store_id is None or store_id in c.spec.store_ids)
        ),
        key=lambda c: (c.ends_at, c.id),
    )


def may_see_scheduled(viewer: Viewer) -> bool:
    """A campaign not started yet is for head office's eyes only (those who edit campaigns)."""
    return isinstance(viewer, StaffViewer) and viewer.role in (
        StaffRole.HQ_ADMIN,
        StaffRole.OPERATOR,
    )


def visible_to(campaign: Campaign, viewer: Viewer, now: datetime) -> bool:
    return may_see_scheduled(viewer) or campaign.state(now) is not CampaignState.SCHEDULED


# Complexity: One flat check per rule of a campaign, each refusing with its own code and field.
def check_spec(  # noqa: C901
    spec: CampaignSpec,
    *,
    now: datetime,
    regular_prices: Mapping[int, int],
    sku_channels: Mapping[int, frozenset[Channel]],
    known_stores: frozenset[int],
) -> CampaignSpec:
    """Refuse a campaign that cannot work, naming the field; returns it cleaned.

    ``regular_prices`` and ``sku_channels`` hold the SKUs found (by id): their list price
    and the channels their product sells on (empty: every channel).
    """
    name = spec.name.strip()
    if not name:
        raise DomainError(ErrorCode.REQUIRED, field=["name"])
    if len(name) > NAME_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["name"], max=NAME_MAX)
    for key, value in (("startsAt", spec.starts_at), ("endsAt", spec.ends_at)):
        if value.tzinfo is None:  # a window must be unambiguous: times carry an offset
            raise DomainError(ErrorCode.INVALID_WINDOW, field=[key])
    if spec.ends_at <= spec.starts_at or spec.ends_at <= now:
        raise DomainError(ErrorCode.INVALID_WINDOW, field=["endsAt"])
    if spec.ends_at - spec.starts_at > MAX_WINDOW:
        raise DomainError(ErrorCode.INVALID_WINDOW, field=["endsAt"])
    if spec.starts_at - now > MAX_LEAD:
        raise DomainError(ErrorCode.INVALID_WINDOW, field=["startsAt"])
    if not spec.items:
        raise DomainError(ErrorCode.REQUIRED, field=["items"])
    if len(spec.items) > MAX_ITEMS:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["items"], min=1, max=MAX_ITEMS)
    if not spec.channels:
        raise DomainError(ErrorCode.CHANNEL_REQUIRED, field=["channels"])
    seen: set[int] = set()
    for n, item in enumerate(spec.items):
        at = ["items", str(n)]
        if item.sku_id in seen:
            raise DomainError(ErrorCode.DUPLICATE, field=[*at, "skuId"])
        seen.add(item.sku_id)
        regular = regular_prices.get(item.sku_id)
        if regular is None:
            raise DomainError(ErrorCode.NOT_FOUND, field=[*at, "skuId"])
        sold_on = sku_channels.get(item.sku_id, frozenset())
        if sold_on and not (sold_on & spec.channels):
            raise DomainError(ErrorCode.NOT_ON_CHANNEL, field=[*at, "skuId"])
        lowest = 0 if spec.kind is CampaignKind.BARGAIN else 1
        # A campaign price is a discount: below the list price, and a bargain's floor
        # leaves room for every help to cut at least one fen.
        highest = regular - 1
        if spec.kind is CampaignKind.BARGAIN and spec.bargain is not None:
            highest = regular - spec.bargain.helps
        if not lowest <= item.price_fen <= highest:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE, field=[*at, "price"], min=lowest, max=max(highest, lowest)
            )
    if not spec.store_ids:
        raise DomainError(ErrorCode.REQUIRED, field=["storeIds"])
    if len(spec.store_ids) > MAX_STORES:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["storeIds"], min=1, max=MAX_STORES)
    if len(set(spec.store_ids)) != len(spec.store_ids):
        raise DomainError(ErrorCode.DUPLICATE, field=["storeIds"])
    for n, store_id in enumerate(spec.store_ids):
        if store_id not in known_stores:
            raise DomainError(ErrorCode.NOT_FOUND, field=["storeIds", str(n)])
    _in_range(spec.quota_per_store, 1, QUOTA_MAX, "quotaPerStore")
    _in_range(spec.per_member_limit, 1, LIMIT_MAX, "perMemberLimit")
    group, bargain = spec.group, spec.bargain
    if spec.kind is CampaignKind.GROUP_BUY:
        if group is None:
            raise DomainError(ErrorCode.REQUIRED, field=["groupSize"])
        _in_range(group.size, *GROUP_SIZE, "groupSize")
        _in_range(group.hours, *GROUP_HOURS, "groupHours")
        bargain = None
    elif spec.kind is CampaignKind.BARGAIN:
        if bargain is None:
            raise DomainError(ErrorCode.REQUIRED, field=["bargainHelps"])
        _in_range(bargain.helps, *BARGAIN_HELPS, "bargainHelps")
        _in_range(bargain.hours, *BARGAIN_HOURS, "bargainHours")
        _in_range(bargain.daily_help_cap, *DAILY_HELP_CAP, "dailyHelpCap")
        group = None
    else:
        group = bargain = None
    return CampaignSpec(
        kind=spec.kind,
        name=name,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        items=spec.items,
        store_ids=spec.store_ids,
        channels=spec.channels,
        quota_per_store=spec.quota_per_store,
        per_member_limit=spec.per_member_limit,
        new_members_only=spec.new_members_only,
        group=group,
        bargain=bargain,
    )


def _in_range(value: int, low: int, high: int, field: str) -> None:
    if not low <= value <= high:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=[field], min=low, max=high)


def check_running(campaign: Campaign, kind: CampaignKind, now: datetime) -> None:
    """Refuse to sell through a campaign of another kind, or outside its window."""
    if campaign.kind is not kind:
        raise DomainError(ErrorCode.NOT_FOUND, field=["campaignId"])
    state = campaign.state(now)
    if state is CampaignState.SCHEDULED:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_STARTED, field=["campaignId"])
    if state is CampaignState.ENDED:
        raise DomainError(ErrorCode.CAMPAIGN_ENDED, field=["campaignId"])


# --- where a campaign order is made ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """What the buyer chose, each part optional: the campaign fills in what it can."""

    sku_id: int | None = None
    store_id: int | None = None
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class Chosen:
    item: CampaignItem
    store_id: int
    channel: Channel


def choose(campaign: Campaign, wanted: Fulfilment, *, need_channel: bool = True) -> Chosen:
    """The SKU, store and channel of a campaign order.

    What the buyer left out is filled in when the campaign allows only one (pickup is the
    default channel where the campaign allows it, as the share page has no address). A
    bargain chooses its channel only when it is bought (``need_channel=False``).
    """
    spec = campaign.spec
    if wanted.sku_id is not None:
        item = campaign.item(wanted.sku_id)
        if item is None:
            raise DomainError(ErrorCode.NOT_IN_CAMPAIGN, field=["order", "skuId"])
    elif len(spec.items) == 1:
        item = spec.items[0]
    else:
        raise DomainError(ErrorCode.REQUIRED, field=["order", "skuId"])
    if wanted.store_id is not None:
        if wanted.store_id not in spec.store_ids:
            raise DomainError(ErrorCode.NOT_IN_CAMPAIGN, field=["order", "storeId"])
        store_id = wanted.store_id
    elif len(spec.store_ids) == 1:
        store_id = spec.store_ids[0]
    else:
        raise DomainError(ErrorCode.REQUIRED, field=["order", "storeId"])
    if wanted.channel is not None:
        if wanted.channel not in spec.channels:
            raise DomainError(ErrorCode.NOT_IN_CAMPAIGN, field=["order", "channel"])
        channel = wanted.channel
    elif Channel.PICKUP in spec.channels:
        channel = Channel.PICKUP
    elif len(spec.channels) == 1 or not need_channel:
        channel = min(spec.channels)
    else:
        raise DomainError(ErrorCode.REQUIRED, field=["order", "channel"])
    return Chosen(item, store_id, channel)


@dataclass(frozen=True, slots=True)
class Deal:
    """A campaign line: one SKU at the campaign's price, drawn from the campaign's quota."""

    campaign_id: int
    sku_id: int
    unit_price_fen: int
    group_id: int | None = None
    bargain_id: int | None = None


# --- reports --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    participants: int  # members who ordered, opened, joined or helped
    groups_formed: int
    groups_succeeded: int
    groups_failed: int
    bargains_started: int
    bargains_helped: int  # helps given
    orders: int  # campaign orders paid
    gmv_fen: int  # what those orders took, less refunds
    invitations: int  # joins and helps through someone's share code
    new_members: int  # invitees who were new members when they came


def quota_lines(spec: CampaignSpec) -> Sequence[tuple[int, int, int]]:
    """(store, SKU, units) each store holds for the campaign."""
    return [
        (store_id, item.sku_id, spec.quota_per_store)
        for store_id in spec.store_ids
        for item in spec.items
    ]
