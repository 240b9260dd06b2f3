"""Supplies that run out, and the board each process keeps of the ones that are gone.

A campaign's quota of a SKU at a store, a coupon template and a tracked SKU's level at a
store are each taken by a conditional write, which alone decides who gets the last unit.
Once a supply is gone every later write for it is refused, so a process that knows it is
gone can refuse at once, before a write transaction and without waiting behind writers.

The write that takes the last unit records ``SupplyChanged(gone=True)``; every write that
gives units back (a restock, an adjustment, a released hold, a cancelled campaign order,
more coupons) records ``gone=False``. The unit of work tells its own process's board at
commit and the broker tells every other process. A board may lag in refusing (the write
still decides), never for long in the other direction: the replenishing commit clears it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from dinegraph.domain.campaigns import Campaign


class SupplyKind(StrEnum):
    QUOTA = "QUOTA"  # a campaign's quota of one SKU at one store
    CAMPAIGN = "CAMPAIGN"  # every quota of a campaign: given back when it ends early
    COUPON = "COUPON"  # a coupon template's quantity
    SHELF = "SHELF"  # a tracked SKU's level at one store


@dataclass(frozen=True, slots=True)
class Supply:
    """Which supply: the ids its kind uses, the others 0."""

    kind: SupplyKind
    campaign_id: int = 0
    store_id: int = 0
    sku_id: int = 0
    template_id: int = 0


def campaign_quota(campaign_id: int, store_id: int, sku_id: int) -> Supply:
    return Supply(SupplyKind.QUOTA, campaign_id=campaign_id, store_id=store_id, sku_id=sku_id)


def whole_campaign(campaign_id: int) -> Supply:
    """Every quota of a campaign. Given back when the campaign ends early: its buyers are
    refused ``CAMPAIGN_ENDED`` from then on, no longer ``SOLD_OUT``."""
    return Supply(SupplyKind.CAMPAIGN, campaign_id=campaign_id)


def coupon_template(template_id: int) -> Supply:
    return Supply(SupplyKind.COUPON, template_id=template_id)


def shelf(store_id: int, sku_id: int) -> Supply:
    return Supply(SupplyKind.SHELF, store_id=store_id, sku_id=sku_id)


@dataclass(frozen=True, slots=True)
class Taken:
    """A conditional take that succeeded, and what is left after it (0: it took the last)."""

    left: int


@dataclass(frozen=True, slots=True)
class SupplyChanged:
    """A committed write took the last of a supply (``gone``) or gave some back.

    Flat, as the broker carries it. ``version`` is the shelf level's (quotas and templates
    keep none); as every event's, it lets a mailbox drop repeats.
    """

    kind: str
    campaign_id: int
    store_id: int
    sku_id: int
    template_id: int
    gone: bool
    version: int = 0

    @property
    def supply(self) -> Supply:
        return Supply(
            SupplyKind(self.kind),
            campaign_id=self.campaign_id,
            store_id=self.store_id,
            sku_id=self.sku_id,
            template_id=self.template_id,
        )


def supply_changed(supply: Supply, *, gone: bool, version: int = 0) -> SupplyChanged:
    return SupplyChanged(
        kind=supply.kind.value,
        campaign_id=supply.campaign_id,
        store_id=supply.store_id,
        sku_id=supply.sku_id,
        template_id=supply.template_id,
        gone=gone,
        version=version,
    )


@dataclass(frozen=True, slots=True)
class KeptCampaign:
    """What a buyer refused for a campaign's quota read, kept for the next one: the
    campaign (its set-up never changes; an early end is heard), and the (member, key) of
    its orders, so that a retry of one still finds it while others need no read."""

    campaign: Campaign
    order_keys: frozenset[tuple[int, str]]


class GoneWhileQueued(Exception):
    """The board learnt the supply (the argument) was gone while this unit queued for the
    write lock."""


class ExhaustionBoard(Protocol):
    """The supplies this process knows are gone, as one unit of work sees them.

    Knowing nothing is always safe: the conditional write decides. A service asks before
    it opens its write transaction and answers the refusal the write would give.
    """

    def gone(self, supply: Supply) -> bool:
        """Known to be gone now: a write taking any of it would be refused."""
        ...

    def saw_gone(self, supply: Supply) -> None:
        """This unit read the supply as gone: a plain read, or the refusal of its write.

        Ignored if the supply was given back after the unit began, so a refusal that raced
        a restock never outlives it.
        """
        ...

    def committed(self, changes: Iterable[SupplyChanged]) -> None:
        """What this unit's commit changed, told to its own process at once."""
        ...

    def when_gone(self, supply: Supply) -> asyncio.Future[None] | None:
        """Done as soon as this process learns the supply is gone (None: this board never
        learns anything). Cancel it once it is no longer wanted."""
        ...

    def campaign(self, campaign_id: int) -> KeptCampaign | None:
        """What a refused buyer of the campaign read (``keep_campaign``): forgotten when
        any of its quotas is given back, or it ends early."""
        ...

    def keep_campaign(self, kept: KeptCampaign) -> None:
        """Keep what this unit read for a buyer a quota refused (ignored if a quota of the
        campaign was given back since the unit began)."""
        ...

    async def read_campaign(
        self, campaign_id: int, read: Callable[[], Awaitable[KeptCampaign]]
    ) -> KeptCampaign:
        """What is kept of the campaign, or else ``read()``, made once for every buyer who
        asks while it runs and kept as ``keep_campaign`` keeps: a crowd refused at the same
        moment makes one read, not one each."""
        ...


class NoBoard:
    """A board that knows nothing (one-shot commands, and units nobody gave a board)."""

    def gone(self, supply: Supply) -> bool:
        return False

    def saw_gone(self, supply: Supply) -> None:
        return None

    def committed(self, changes: Iterable[SupplyChanged]) -> None:
        return None

    def when_gone(self, supply: Supply) -> asyncio.Future[None] | None:
        return None

    def campaign(self, campaign_id: int) -> KeptCampaign | None:
        return None

    def keep_campaign(self, kept: KeptCampaign) -> None:
        return None

    async def read_campaign(
        self, campaign_id: int, read: Callable[[], Awaitable[KeptCampaign]]
    ) -> KeptCampaign:
        return await read()


NO_BOARD = NoBoard()
