"""Fees of an order: delivery by distance band, packaging per unit, and waivers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dinegraph.domain.catalog import Channel


@dataclass(frozen=True, slots=True)
class FeeRules:
    """Delivery fee by distance band, waived above a subtotal; packaging per unit, capped."""

    bands: tuple[tuple[int, int], ...]  # (up to metres, fee fen), ascending
    free_delivery_from_fen: int | None
    packaging_fen_per_unit: int
    packaging_cap_fen: int

    def delivery_fee(self, distance_m: int) -> int:
        for up_to, fee in self.bands:
            if distance_m <= up_to:
                return fee
        return self.bands[-1][1] if self.bands else 0

    def packaging_fee(self, channel: Channel, units: int) -> int:
        """Takeaway food is packed; dine-in and retail goods are not."""
        if channel not in (Channel.DELIVERY, Channel.PICKUP):
            return 0
        return min(units * self.packaging_fen_per_unit, self.packaging_cap_fen)


def parse_bands(raw: str) -> tuple[tuple[int, int], ...]:
    """``3000:400,5000:600``: up to 3 km ¥4, up to 5 km ¥6 (and beyond, the last band)."""
    bands: list[tuple[int, int]] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        metres, fee = part.split(":")
        bands.append((int(metres), int(fee)))
    bands.sort()
    if any(m <= 0 or f < 0 for m, f in bands):
        raise ValueError("delivery fee bands need positive distances and fees >= 0")
    return tuple(bands)


class DeliveryWaiver(StrEnum):
    """Why the delivery fee was not charged."""

    ABOVE_THRESHOLD = "ABOVE_THRESHOLD"
    TIER = "TIER"
    COUPON = "COUPON"
