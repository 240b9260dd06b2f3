"""Choosing the carrier: which of a store's platforms takes a delivery.

A store lists the platforms it may call, in its order of preference, and a rule: CHEAPEST
(the lowest quoted fee), FASTEST (the soonest quoted delivery) or PREFERRED (its own
order). At dispatch each platform is asked for a quote; those that quote are ranked by the
rule (ties and missing figures fall back to the store's order), those that refuse are not
tried. When the chosen platform refuses the order, or no rider takes it in time, the next
one in the ranking gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.providers import Provider


class CarrierRule(StrEnum):
    CHEAPEST = "CHEAPEST"
    FASTEST = "FASTEST"
    PREFERRED = "PREFERRED"


@dataclass(frozen=True, slots=True)
class Quote:
    """One platform's answer for one delivery."""

    provider: Provider
    fee_fen: int | None
    eta_seconds: int | None
    refused: str | None = None  # why it would not quote (its code)


def parse_platforms(text: str) -> tuple[Provider, ...]:
    """A store's ``delivery_platforms`` column: "DADA,SF_INTRA_CITY" → the platforms."""
    return tuple(Provider(p) for p in text.split(",") if p)


def check_platforms(platforms: Sequence[Provider]) -> tuple[Provider, ...]:
    """A store's list of platforms: no OWN_RIDER, none twice."""
    if Provider.OWN_RIDER in platforms or len(set(platforms)) != len(platforms):
        raise DomainError(ErrorCode.INVALID_INPUT, field=["platforms"])
    return tuple(platforms)


def ranked(quotes: Sequence[Quote], rule: CarrierRule) -> list[Quote]:
    """The platforms that quoted, best first by ``rule``; ``quotes`` in the store's order."""
    order = {q.provider: n for n, q in enumerate(quotes)}
    usable = [q for q in quotes if q.refused is None]
    big = 1 << 60
    if rule is CarrierRule.CHEAPEST:
        return sorted(
            usable, key=lambda q: (q.fee_fen if q.fee_fen is not None else big, order[q.provider])
        )
    if rule is CarrierRule.FASTEST:
        return sorted(
            usable,
            key=lambda q: (q.eta_seconds if q.eta_seconds is not None else big, order[q.provider]),
        )
    return usable
