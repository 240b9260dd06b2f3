"""Group-buys (拼团): a leader opens a group, friends take its seats through the leader's
share code, and the group succeeds once every seat is paid, or fails when its time is up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dinegraph.domain.campaigns import Campaign
from dinegraph.domain.identity import MemberViewer, Viewer


class GroupStatus(StrEnum):
    OPEN = "OPEN"
    SUCCEEDED = "SUCCEEDED"  # every seat paid: the members' orders go to the kitchen
    FAILED = "FAILED"  # expired first: every member refunded


class SeatStatus(StrEnum):
    HELD = "HELD"  # joined; held until the member's order must be paid
    PAID = "PAID"
    RELEASED = "RELEASED"  # the order was not paid in time, or the group failed


@dataclass(frozen=True, slots=True)
class GroupBuy:
    id: int
    campaign_id: int
    leader_id: int
    store_id: int
    sku_id: int
    size: int
    seats_taken: int
    seats_paid: int
    status: GroupStatus
    expires_at: datetime
    created_at: datetime
    version: int

    @property
    def seats_left(self) -> int:
        return self.size - self.seats_taken


@dataclass(frozen=True, slots=True)
class GroupSeat:
    group_id: int
    member_id: int
    order_id: int
    status: SeatStatus
    joined_at: datetime
    nickname: str


def group_expiry(campaign: Campaign, now: datetime) -> datetime:
    """A group has the campaign's hours to fill, never beyond the campaign's end."""
    assert campaign.spec.group is not None
    return min(now + timedelta(hours=campaign.spec.group.hours), campaign.ends_at)


@dataclass(frozen=True, slots=True)
class GroupBuyChanged:
    """A group's seats or status changed; versions grow with every change."""

    group_id: int
    campaign_id: int
    status: str
    seats_taken: int
    seats_paid: int
    version: int


# --- what a viewer sees of a group ----------------------------------------------------


def group_sharer(viewer: Viewer, group: GroupBuy, seats: Iterable[GroupSeat]) -> int | None:
    """The member who may share a link to ``group``: a member seated in it, while it is open."""
    if not isinstance(viewer, MemberViewer) or group.status is not GroupStatus.OPEN:
        return None
    if not any(s.member_id == viewer.member_id for s in seats):
        return None
    return viewer.member_id
