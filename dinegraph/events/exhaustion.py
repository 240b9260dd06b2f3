"""The process's exhaustion board: which supplies are gone, from what it hears and sees.

Fed three ways: the broker's ``SupplyChanged`` events (other processes' commits, and this
process's own echoed back), this process's commits at once (``BoardUnit.committed``), and
what a unit of work read as gone (``BoardUnit.saw_gone``). It may only err towards
knowing nothing, and not for long the other way:

- a supply given back is forgotten at once, and a unit that began before it was given
  back may not mark it gone again (its read may predate the replenishing commit);
- a gone event heard right after the supply was given back is ignored, as brokers do not
  keep two processes' events in commit order (Redis); the next refused write marks it;
- nothing is trusted longer than ``trust_seconds``: a change that never announced itself
  (a hand edit in the database) costs one refused write per period, never a wrong refusal
  for longer;
- when the broker may have missed events (``lost``), everything is forgotten.

It also keeps what a refused flash-sale buyer read of the campaign (``KeptCampaign``), so
that the next one needs no read: a campaign's set-up never changes, an early end is heard
as a give-back of the whole campaign, and the orders' keys it holds are dropped whenever
one of its quotas is given back or newly gone (orders may have been placed meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from dinegraph.domain.events import Event
from dinegraph.domain.supplies import (
    ExhaustionBoard,
    KeptCampaign,
    Supply,
    SupplyChanged,
    SupplyKind,
    whole_campaign,
)

SETTLE_SECONDS = 2.0
"""How long after a supply is given back a heard gone event is not believed."""
_BACK_KEPT_SECONDS = 60.0  # how long a give-back is remembered for ``saw_gone`` (see _prune)
_PRUNE_AT = 4096  # entries kept before old ones are dropped


class Board:
    """One per process (``Services.board``); a unit of work sees it through ``unit()``.

    ``_count`` moves with every change a unit's reads may have missed (a give-back, a
    campaign's kept reads going out of date, a lost broker): a unit remembers the count it
    began at, and what it read is learnt only if nothing relevant moved since.
    """

    def __init__(
        self, *, trust_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._trust = trust_seconds
        self._clock = clock
        self._gone: dict[Supply, float] = {}  # supply → when it was known gone
        self._back: dict[Supply, tuple[int, float]] = {}  # supply → (count, when) given back
        self._campaigns: dict[int, tuple[float, KeptCampaign]] = {}  # for refused buyers
        self._campaign_moved: dict[int, int] = {}  # campaign → count its kept reads aged
        self._count = 0
        self._floor = 0  # units that began before this count may learn nothing
        self._waiting: dict[Supply, set[asyncio.Future[None]]] = {}  # see when_gone
        self._reading: dict[int, _Read] = {}  # campaign → the read of it under way

    def unit(self) -> BoardUnit:
        """The board as a unit of work that begins now sees it."""
        return BoardUnit(self, self._count)

    def gone(self, supply: Supply) -> bool:
        since = self._gone.get(supply)
        if since is None:
            return False
        if self._clock() - since > self._trust:
            del self._gone[supply]
            return False
        return True

    def campaign(self, campaign_id: int) -> KeptCampaign | None:
        kept = self._campaigns.get(campaign_id)
        if kept is None:
            return None
        if self._clock() - kept[0] > self._trust:
            del self._campaigns[campaign_id]
            return None
        return kept[1]

    def when_gone(self, supply: Supply) -> asyncio.Future[None]:
        """Done when the supply is next marked gone; cancelled by its taker once unwanted."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(supply, set())
        waiting.add(future)

        def unwatch(done: asyncio.Future[None]) -> None:
            waiting.discard(done)
            if not waiting and self._waiting.get(supply) is waiting:
                del self._waiting[supply]

        future.add_done_callback(unwatch)
        return future

    def hear(self, event: Event) -> None:
        """A ``SupplyChanged`` from the broker (other events of the topic are ignored)."""
        if not isinstance(event, SupplyChanged):
            return
        supply = event.supply
        if not event.gone:
            self.given_back(supply)
            return
        back = self._last_back(supply)
        if back is not None and self._clock() - back[1] < SETTLE_SECONDS:
            return
        self._mark(supply)

    def given_back(self, supply: Supply) -> None:
        self._count += 1
        self._back[supply] = (self._count, self._clock())
        self._gone.pop(supply, None)
        if supply.kind is SupplyKind.CAMPAIGN:
            for quota in [q for q in self._gone if _of_campaign(q, supply.campaign_id)]:
                del self._gone[quota]
        if supply.kind in (SupplyKind.QUOTA, SupplyKind.CAMPAIGN):
            self._campaign_aged(supply.campaign_id)
        if len(self._back) > _PRUNE_AT:
            self._prune()

    def learn(self, supply: Supply, began: int) -> None:
        """A unit that began at ``began`` read the supply as gone."""
        back = self._last_back(supply)
        if began >= self._floor and (back is None or back[0] <= began):
            self._mark(supply)

    def keep_campaign(self, kept: KeptCampaign, began: int) -> None:
        campaign_id = kept.campaign.id
        # Kept as first read: a buyer served from it does not make it last longer.
        if campaign_id in self._campaigns or began < self._floor:
            return
        if self._campaign_moved.get(campaign_id, 0) > began:
            return
        self._campaigns[campaign_id] = (self._clock(), kept)
        if len(self._campaigns) > _PRUNE_AT:
            self._prune()

    async def read_campaign(
        self, campaign_id: int, read: Callable[[], Awaitable[KeptCampaign]]
    ) -> KeptCampaign:
        """What is kept of the campaign, or the read of it under way, or a new one: a read
        is shared only while nothing of the campaign moved since it began."""
        kept = self.campaign(campaign_id)
        if kept is not None:
            return kept
        flight = self._reading.get(campaign_id)
        if flight is None or self._campaign_moved.get(campaign_id, 0) > flight[0]:
            flight = self._reading[campaign_id] = (self._count, asyncio.ensure_future(read()))
            flight[1].add_done_callback(partial(self._read, campaign_id, flight))
        return await asyncio.shield(flight[1])

    def _read(self, campaign_id: int, flight: _Read, task: asyncio.Future[KeptCampaign]) -> None:
        if self._reading.get(campaign_id) is flight:
            del self._reading[campaign_id]
        if not task.cancelled() and task.exception() is None:
            self.keep_campaign(task.result(), flight[0])

    def lost(self) -> None:
        """The broker may have missed events: forget everything, and what units that began
        before now saw."""
        self._count += 1
        self._floor = self._count
        self._gone.clear()
        self._back.clear()
        self._campaigns.clear()
        self._campaign_moved.clear()

    def _last_back(self, supply: Supply) -> tuple[int, float] | None:
        """When the supply was last given back: itself, or (a quota) its whole campaign."""
        backs = [self._back.get(supply)]
        if supply.kind is SupplyKind.QUOTA:
            backs.append(self._back.get(whole_campaign(supply.campaign_id)))
        found = [b for b in backs if b is not None]
        return max(found) if found else None

    def _mark(self, supply: Supply) -> None:
        if supply.kind is SupplyKind.QUOTA and supply not in self._gone:
            self._campaign_aged(supply.campaign_id)  # its orders' keys may lack the last ones
        self._gone[supply] = self._clock()
        for future in list(self._waiting.get(supply, ())):
            if not future.done():
                future.set_result(None)
        if len(self._gone) > _PRUNE_AT:
            self._prune()

    def _campaign_aged(self, campaign_id: int) -> None:
        """What was kept of the campaign may be out of date: drop it, and what units that
        began before now read of it."""
        self._count += 1
        self._campaign_moved[campaign_id] = self._count
        self._campaigns.pop(campaign_id, None)

    def _prune(self) -> None:
        """Drop what is no longer trusted, and give-backs older than any unit still running
        could have begun; units older than the last of those learn nothing."""
        now = self._clock()
        self._gone = {s: t for s, t in self._gone.items() if now - t <= self._trust}
        self._campaigns = {i: k for i, k in self._campaigns.items() if now - k[0] <= self._trust}
        kept: dict[Supply, tuple[int, float]] = {}
        for supply, (count, at) in self._back.items():
            if now - at <= _BACK_KEPT_SECONDS:
                kept[supply] = (count, at)
            else:
                self._floor = max(self._floor, count)
        self._back = kept
        if len(self._campaign_moved) > _PRUNE_AT:
            self._floor = self._count
            self._campaign_moved.clear()


_Read = tuple[int, "asyncio.Future[KeptCampaign]"]  # (the count it began at, the read)


def _of_campaign(supply: Supply, campaign_id: int) -> bool:
    return supply.kind is SupplyKind.QUOTA and supply.campaign_id == campaign_id


class BoardUnit(ExhaustionBoard):
    """The board as one unit of work sees it: it learns only what cannot predate a
    give-back it has not heard of."""

    def __init__(self, board: Board, began: int) -> None:
        self._board = board
        self._began = began

    def gone(self, supply: Supply) -> bool:
        return self._board.gone(supply)

    def saw_gone(self, supply: Supply) -> None:
        self._board.learn(supply, self._began)

    def committed(self, changes: Iterable[SupplyChanged]) -> None:
        for change in changes:
            if change.gone:
                self._board.learn(change.supply, self._began)
            else:
                self._board.given_back(change.supply)

    def when_gone(self, supply: Supply) -> asyncio.Future[None]:
        return self._board.when_gone(supply)

    def campaign(self, campaign_id: int) -> KeptCampaign | None:
        return self._board.campaign(campaign_id)

    def keep_campaign(self, kept: KeptCampaign) -> None:
        self._board.keep_campaign(kept, self._began)

    async def read_campaign(
        self, campaign_id: int, read: Callable[[], Awaitable[KeptCampaign]]
    ) -> KeptCampaign:
        return await self._board.read_campaign(campaign_id, read)
