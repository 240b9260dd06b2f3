"""The exhaustion board: it may lag in refusing, never refuse for long what came back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dinegraph.domain.campaigns import Campaign, CampaignItem, CampaignKind, CampaignSpec
from dinegraph.domain.catalog import Channel
from dinegraph.domain.stock import StockChanged
from dinegraph.domain.supplies import (
    KeptCampaign,
    campaign_quota,
    coupon_template,
    shelf,
    supply_changed,
    whole_campaign,
)
from dinegraph.events.codec import SUPPLIES_TOPIC, decode, encode, routed
from dinegraph.events.exhaustion import SETTLE_SECONDS, Board

QUOTA = campaign_quota(7, 1, 98)
COUPON = coupon_template(3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def a_campaign(campaign_id: int) -> Campaign:
    start = datetime(2030, 6, 1, 11, tzinfo=UTC)
    spec = CampaignSpec(
        kind=CampaignKind.FLASH_SALE,
        name="秒杀",
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        items=(CampaignItem(98, 900),),
        store_ids=(1,),
        channels=frozenset({Channel.PICKUP}),
        quota_per_store=10,
        per_member_limit=1,
        new_members_only=False,
    )
    return Campaign(id=campaign_id, spec=spec, ended_at=None, closed=False, created_at=start)


def board(trust: float = 10.0) -> tuple[Board, FakeClock]:
    clock = FakeClock()
    return Board(trust_seconds=trust, clock=clock), clock


def test_a_new_board_knows_nothing_gone() -> None:
    b, _ = board()
    assert not b.gone(QUOTA) and not b.unit().gone(COUPON)


def test_a_heard_gone_refuses_until_the_supply_comes_back() -> None:
    b, clock = board()
    b.hear(supply_changed(QUOTA, gone=True))
    assert b.gone(QUOTA) and not b.gone(COUPON)
    clock.now += 5
    b.hear(supply_changed(QUOTA, gone=False))
    assert not b.gone(QUOTA)


def test_nothing_is_trusted_longer_than_the_setting() -> None:
    b, clock = board(trust=10)
    b.hear(supply_changed(COUPON, gone=True))
    clock.now += 9.9
    assert b.gone(COUPON)
    clock.now += 0.2
    assert not b.gone(COUPON)


def test_a_gone_heard_right_after_a_give_back_is_not_believed() -> None:
    """Brokers do not keep two processes' events in commit order: a gone that arrives just
    after a give-back may be the older of the two."""
    b, clock = board()
    b.hear(supply_changed(QUOTA, gone=False))
    clock.now += SETTLE_SECONDS / 2
    b.hear(supply_changed(QUOTA, gone=True))
    assert not b.gone(QUOTA)
    clock.now += SETTLE_SECONDS
    b.hear(supply_changed(QUOTA, gone=True))
    assert b.gone(QUOTA)


def test_a_unit_learns_what_it_read_gone_unless_it_came_back_since_the_unit_began() -> None:
    b, _ = board()
    early = b.unit()
    b.hear(supply_changed(QUOTA, gone=False))  # a restock commits while `early` reads
    early.saw_gone(QUOTA)
    assert not b.gone(QUOTA)
    late = b.unit()
    late.saw_gone(QUOTA)
    assert b.gone(QUOTA)
    early.saw_gone(COUPON)  # what came back meanwhile was another supply
    assert b.gone(COUPON)


def test_a_units_commit_tells_its_own_process_at_once() -> None:
    b, _ = board()
    unit = b.unit()
    unit.committed([supply_changed(QUOTA, gone=True)])
    assert b.gone(QUOTA)
    b.unit().committed([supply_changed(QUOTA, gone=False)])
    assert not b.gone(QUOTA)


def test_a_lost_broker_forgets_everything_and_what_older_units_saw() -> None:
    b, _ = board()
    before = b.unit()
    b.hear(supply_changed(QUOTA, gone=True))
    b.lost()
    assert not b.gone(QUOTA)
    before.saw_gone(COUPON)  # it may have missed a give-back while the broker was away
    assert not b.gone(COUPON)
    b.unit().saw_gone(COUPON)
    assert b.gone(COUPON)


def test_other_events_of_the_topic_are_ignored() -> None:
    b, _ = board()
    b.hear(StockChanged(store_id=1, sku_id=98, available=0, sold_out=True, version=3))
    assert not b.gone(shelf(1, 98))


def test_supply_changes_travel_on_one_topic_and_survive_the_codec() -> None:
    event = supply_changed(shelf(4, 12), gone=True, version=9)
    assert routed([event]) == [(SUPPLIES_TOPIC, event)]
    assert decode(encode(event)) == event
    assert event.supply == shelf(4, 12)


def test_a_board_with_many_supplies_prunes_what_it_no_longer_trusts() -> None:
    b, clock = board(trust=10)
    old = b.unit()
    for n in range(5000):
        b.hear(supply_changed(campaign_quota(n, 1, 1), gone=False))
    clock.now += 120
    for n in range(5000):
        b.hear(supply_changed(coupon_template(n), gone=False))
    # The first give-backs were dropped; a unit that began before them learns nothing.
    old.saw_gone(campaign_quota(1, 1, 1))
    assert not b.gone(campaign_quota(1, 1, 1))
    b.unit().saw_gone(campaign_quota(1, 1, 1))
    assert b.gone(campaign_quota(1, 1, 1))


def kept(campaign_id: int, *orders: tuple[int, str]) -> KeptCampaign:
    return KeptCampaign(a_campaign(campaign_id), frozenset(orders))


def test_what_a_refused_buyer_read_is_kept_until_the_campaign_ends_early() -> None:
    b, clock = board(trust=10)
    read = kept(7, (1, "k"))
    b.hear(supply_changed(QUOTA, gone=True))
    b.unit().keep_campaign(read)
    assert b.campaign(7) is read
    b.unit().keep_campaign(kept(7))  # a later buyer served from it keeps the first read
    assert b.campaign(7) is read
    b.hear(supply_changed(whole_campaign(7), gone=False))  # ended early
    assert b.campaign(7) is None and not b.gone(QUOTA)
    b.unit().keep_campaign(read)
    clock.now += 11
    assert b.campaign(7) is None  # no longer trusted


def test_a_campaigns_kept_reads_go_when_a_quota_of_it_comes_back_or_newly_goes() -> None:
    """The orders' keys kept with the campaign must hold every order of a gone quota: a
    quota given back (new orders may follow) or newly gone drops them, and what a unit
    read before that is not kept."""
    b, _ = board()
    b.hear(supply_changed(QUOTA, gone=True))
    b.unit().keep_campaign(kept(7))
    b.hear(supply_changed(campaign_quota(7, 2, 98), gone=True))  # another store sells out
    assert b.campaign(7) is None
    before = b.unit()
    b.hear(supply_changed(QUOTA, gone=False))  # a cancelled order gives a unit back
    before.keep_campaign(kept(7))
    assert b.campaign(7) is None
    b.unit().keep_campaign(kept(7))
    assert b.campaign(7) is not None


def test_a_gone_quota_heard_right_after_its_campaign_ended_is_not_believed() -> None:
    b, clock = board()
    before = b.unit()
    b.hear(supply_changed(whole_campaign(7), gone=False))
    before.saw_gone(QUOTA)
    assert not b.gone(QUOTA)
    clock.now += SETTLE_SECONDS / 2
    b.hear(supply_changed(QUOTA, gone=True))  # may predate the end
    assert not b.gone(QUOTA)


async def test_a_wait_for_a_supply_ends_when_it_is_marked_gone_and_only_then() -> None:
    b, _ = board()
    before = b.unit()
    waiting, other = b.when_gone(QUOTA), b.when_gone(COUPON)
    b.hear(supply_changed(QUOTA, gone=False))  # given back: a unit that began before
    before.saw_gone(QUOTA)  # learns nothing, and ends no wait
    assert not waiting.done()
    b.unit().saw_gone(QUOTA)
    assert waiting.done() and not other.done()
    other.cancel()  # unwanted: forgotten
    await asyncio.sleep(0)
    assert b._waiting == {}


async def test_buyers_refused_together_make_one_read_of_the_campaign() -> None:
    b, _ = board()
    b.hear(supply_changed(QUOTA, gone=True))
    reads: list[int] = []
    release = asyncio.Event()

    async def read() -> KeptCampaign:
        reads.append(1)
        await release.wait()
        return kept(7, (1, "k"))

    crowd = [asyncio.ensure_future(b.unit().read_campaign(7, read)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*crowd)
    assert len(reads) == 1 and all(a is answers[0] for a in answers)
    assert b.campaign(7) is answers[0]
    assert await b.unit().read_campaign(7, read) is answers[0] and len(reads) == 1


async def test_a_read_of_the_campaign_begun_before_it_moved_is_neither_shared_nor_kept() -> None:
    """Orders may have been placed after a read began if a quota came back meanwhile: a buyer
    asking after that makes a read of its own, and only that one is kept."""
    b, _ = board()
    b.hear(supply_changed(QUOTA, gone=True))
    first_release, reads = asyncio.Event(), []

    async def old_read() -> KeptCampaign:
        reads.append("old")
        await first_release.wait()
        return kept(7)

    async def new_read() -> KeptCampaign:
        reads.append("new")
        return kept(7, (1, "k"))

    old = asyncio.ensure_future(b.unit().read_campaign(7, old_read))
    await asyncio.sleep(0)
    b.hear(supply_changed(QUOTA, gone=False))  # a cancelled order gives a unit back
    b.hear(supply_changed(QUOTA, gone=True))
    new = await b.unit().read_campaign(7, new_read)
    first_release.set()
    await old
    assert reads == ["old", "new"] and b.campaign(7) is new


async def test_a_failed_read_of_the_campaign_reaches_every_asker_and_is_not_kept() -> None:
    b, _ = board()

    async def read() -> KeptCampaign:
        await asyncio.sleep(0)
        raise RuntimeError("database gone")

    crowd = [b.unit().read_campaign(7, read) for _ in range(3)]
    answers = await asyncio.gather(*crowd, return_exceptions=True)
    assert [type(a) for a in answers] == [RuntimeError] * 3
    assert b.campaign(7) is None and b._reading == {}
