"""Who carries an order, on its own, so the CLI names the platforms without loading the
delivery rules."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    """Who carries the order: the store's own riders, or a delivery platform."""

    OWN_RIDER = "OWN_RIDER"
    DADA = "DADA"  # 达达
    SF_INTRA_CITY = "SF_INTRA_CITY"  # 顺丰同城
    MEITUAN = "MEITUAN"  # 美团配送
