"""Points on the map (GCJ-02, as the mini-program sends them) and distances between them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dinegraph.domain.errors import DomainError, ErrorCode

_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lng: float

    @classmethod
    def checked(cls, lat: float, lng: float, field: str = "near") -> GeoPoint:
        if not (math.isfinite(lat) and math.isfinite(lng)) or not (
            -90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0
        ):
            raise DomainError(ErrorCode.INVALID_COORDINATES, field=[field])
        return cls(lat, lng)


def distance_m(a: GeoPoint, b: GeoPoint) -> int:
    """Great-circle distance in whole metres (haversine; GCJ-02 offsets cancel locally)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lng - a.lng)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return round(2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))
