"""Stock as a menu shows it: counted levels of tracked SKUs, sold-out flags of the rest."""

from __future__ import annotations

from dataclasses import dataclass

from dinegraph.domain.catalog import Sku


@dataclass(frozen=True, slots=True)
class StockView:
    available: int | None  # None: made to order, not counted
    sold_out: bool
    version: int


def stock_view(sku: Sku, available: int | None, sold_out_flag: bool, version: int) -> StockView:
    """What a customer sees of a SKU's stock at one store.

    A tracked SKU the store has never stocked has 0; it is sold out when nothing is left or
    when staff marked it so. An untracked dish is sold out only when marked (沽清).
    """
    if sku.tracked:
        level = available or 0
        return StockView(available=level, sold_out=sold_out_flag or level == 0, version=version)
    return StockView(available=None, sold_out=sold_out_flag, version=version)
