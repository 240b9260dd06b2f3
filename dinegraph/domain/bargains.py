"""Bargains (砍价): a member opens a bargain at the store's price, friends' helps cut it
step by step towards the campaign's floor, and the member buys at the price reached."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dinegraph.domain.campaigns import Campaign
from dinegraph.domain.identity import MemberViewer, Viewer


class BargainStatus(StrEnum):
    OPEN = "OPEN"  # friends can still help
    COMPLETE = "COMPLETE"  # at the floor
    PURCHASED = "PURCHASED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class Bargain:
    id: int
    campaign_id: int
    member_id: int
    store_id: int
    sku_id: int
    start_price_fen: int
    floor_price_fen: int
    steps: tuple[int, ...]  # each help's cut, fixed when the bargain starts
    helps_done: int
    order_id: int | None  # the purchase, once bought
    expires_at: datetime
    created_at: datetime
    version: int

    @property
    def helps_needed(self) -> int:
        return len(self.steps)

    @property
    def price_fen(self) -> int:
        return self.start_price_fen - sum(self.steps[: self.helps_done])

    @property
    def next_cut_fen(self) -> int | None:
        return self.steps[self.helps_done] if self.helps_done < len(self.steps) else None

    def status(self, now: datetime) -> BargainStatus:
        if self.order_id is not None:
            return BargainStatus.PURCHASED
        if now >= self.expires_at:
            return BargainStatus.EXPIRED
        if self.helps_done >= len(self.steps):
            return BargainStatus.COMPLETE
        return BargainStatus.OPEN


def bargain_steps(total_fen: int, helps: int, rng: random.Random) -> tuple[int, ...]:
    """Split ``total_fen`` into ``helps`` cuts of at least one fen that sum to it exactly.

    The first friends cut the most (a bargain should start fast), with some variety so
    each help feels like a roll of the dice; the whole path is fixed before anyone helps.
    """
    if helps < 1 or total_fen < helps:
        raise ValueError("every help must cut at least one fen")
    weights = [(helps - n) * rng.uniform(0.7, 1.3) for n in range(helps)]
    spare = total_fen - helps  # above the one fen each help cuts anyway
    whole = sum(weights)
    shares = [int(spare * w / whole) for w in weights]
    for n in range(spare - sum(shares)):  # what rounding left, to the first helps
        shares[n % helps] += 1
    return tuple(1 + s for s in shares)


def bargain_expiry(campaign: Campaign, now: datetime) -> datetime:
    assert campaign.spec.bargain is not None
    return min(now + timedelta(hours=campaign.spec.bargain.hours), campaign.ends_at)


# --- what a viewer sees of a bargain --------------------------------------------------


def may_share_bargain(viewer: Viewer, bargain: Bargain, now: datetime) -> bool:
    """The owner shares a bargain for friends to help, while help can still cut the price."""
    return (
        isinstance(viewer, MemberViewer)
        and viewer.member_id == bargain.member_id
        and bargain.status(now) is BargainStatus.OPEN
    )


def sees_bargain_order(viewer: Viewer, order_member_id: int | None) -> bool:
    """A bargain's purchase is shown to the member who bought it, and to no one else."""
    return isinstance(viewer, MemberViewer) and viewer.member_id == order_member_id
