"""Member tiers: what each is worth and what spend earns it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    NORMAL = "NORMAL"
    SILVER = "SILVER"
    GOLD = "GOLD"
    BLACK_DIAMOND = "BLACK_DIAMOND"


TIER_ORDER = (Tier.NORMAL, Tier.SILVER, Tier.GOLD, Tier.BLACK_DIAMOND)


def tier_rank(tier: Tier) -> int:
    return TIER_ORDER.index(tier)


@dataclass(frozen=True, slots=True)
class TierBenefits:
    discount_percent: int  # off the dishes' subtotal
    free_delivery: bool
    birthday_coupon: bool
    points_multiplier: float


BENEFITS: Mapping[Tier, TierBenefits] = {
    Tier.NORMAL: TierBenefits(0, False, False, 1.0),
    Tier.SILVER: TierBenefits(2, False, True, 1.2),
    Tier.GOLD: TierBenefits(5, True, True, 1.5),
    Tier.BLACK_DIAMOND: TierBenefits(8, True, True, 2.0),
}


@dataclass(frozen=True, slots=True)
class TierProgress:
    current: Tier
    next: Tier | None
    spend_to_next_fen: int


def tier_for_spend(spend_fen: int, thresholds: Mapping[Tier, int]) -> Tier:
    """The highest tier whose threshold the trailing 12 months' spend reaches."""
    reached = Tier.NORMAL
    for tier in TIER_ORDER:
        if spend_fen >= thresholds.get(tier, 0):
            reached = tier
    return reached


def tier_progress(spend_fen: int, thresholds: Mapping[Tier, int]) -> TierProgress:
    current = tier_for_spend(spend_fen, thresholds)
    rank = tier_rank(current)
    if rank + 1 >= len(TIER_ORDER):
        return TierProgress(current, None, 0)
    following = TIER_ORDER[rank + 1]
    return TierProgress(current, following, max(0, thresholds[following] - spend_fen))
