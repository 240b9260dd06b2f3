"""Stamps: names of what public reads show, moved by every committed change to it.

A public read (a store's menu, the stores, the campaigns running) depends on a few stamps;
a write marks the stamps of what it changes, and the unit of work publishes them with its
commit as one ``ReadsChanged``. Each process counts the moves it hears, so a cached answer
recorded under older counts is known to be stale (``dinegraph.read_cache``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CATALOG = "catalog"
"""Categories, products (their listing and channels), SKUs, base prices and combos."""
STORES = "stores"
"""The stores themselves: names, places, hours, delivery settings."""
CAMPAIGNS = "campaigns"
"""Campaigns: their set-up, an early end, closing; and the quotas they hold."""
SEARCH = "search"
"""What search reads besides the catalogue: the synonyms head office keeps."""
EVERYTHING = "*"
"""Every answer depends on it: moved for a change too wide to name (a campaign set up at
hundreds of stores: a broker message has a size limit), or when news may have been missed."""
MOST_NAMED = 64


def stock_stamp(store_id: int) -> str:
    """A store's stock levels and sold-out marks (沽清)."""
    return f"stock.{store_id}"


def price_stamp(store_id: int) -> str:
    """A store's own prices."""
    return f"price.{store_id}"


def quota_stamp(store_id: int) -> str:
    """What campaign orders draw on a store's campaign quotas (and give back)."""
    return f"quota.{store_id}"


def issue_job_stamp(job_id: int) -> str:
    """A coupon issue job's progress: each batch it commits, and its end."""
    return f"issue_job.{job_id}"


def is_quota_stamp(name: str) -> bool:
    """Whether ``name`` is some store's ``quota_stamp``."""
    return name.startswith("quota.")


@dataclass(frozen=True, slots=True)
class ReadsChanged:
    """A committed change moved these stamps: every process drops what depended on them."""

    stamps: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.stamps, tuple):  # decoded from JSON as a list
            object.__setattr__(self, "stamps", tuple(self.stamps))

    @property
    def version(self) -> int:
        """None of its own: a move is never superseded by a later one, each one counts."""
        return 0


def reads_changed(stamps: Iterable[str]) -> ReadsChanged:
    """The news of a commit that moved ``stamps``: named, unless they are too many."""
    names = sorted(set(stamps))
    return ReadsChanged(tuple(names) if len(names) <= MOST_NAMED else (EVERYTHING,))
