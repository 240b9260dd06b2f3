"""Campaign rules without I/O: bargain steps, windows and states, choosing where a campaign
order is made, and share codes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.bargains import Bargain, BargainStatus, bargain_steps
from dinegraph.domain.campaigns import (
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignSpec,
    CampaignState,
    Fulfilment,
    GroupRules,
    check_spec,
    choose,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.group_buys import group_expiry
from dinegraph.domain.invites import Invite, InviteKind
from dinegraph.security import SignedShareCodes

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@given(
    total=st.integers(min_value=1, max_value=1_000_000),
    helps=st.integers(min_value=1, max_value=100),
    seed=st.integers(),
)
def test_bargain_steps_sum_exactly_to_the_room_and_each_cuts_something(
    total: int, helps: int, seed: int
) -> None:
    if total < helps:
        with pytest.raises(ValueError):
            bargain_steps(total, helps, random.Random(seed))
        return
    steps = bargain_steps(total, helps, random.Random(seed))
    assert len(steps) == helps
    assert sum(steps) == total
    assert min(steps) >= 1


def test_the_first_helps_cut_the_most_on_average() -> None:
    rng = random.Random(7)
    runs = [bargain_steps(7800, 10, rng) for _ in range(200)]
    first = sum(r[0] for r in runs) / len(runs)
    last = sum(r[-1] for r in runs) / len(runs)
    assert first > 3 * last


def _bargain(helps_done: int, order_id: int | None = None) -> Bargain:
    return Bargain(
        id=1,
        campaign_id=1,
        member_id=1,
        store_id=1,
        sku_id=1,
        start_price_fen=8800,
        floor_price_fen=1000,
        steps=(4000, 2000, 1000, 800),
        helps_done=helps_done,
        order_id=order_id,
        expires_at=NOW + timedelta(hours=1),
        created_at=NOW,
        version=1,
    )


def test_a_bargain_price_follows_its_helps_down_to_the_floor() -> None:
    assert [_bargain(n).price_fen for n in range(5)] == [8800, 4800, 2800, 1800, 1000]
    assert _bargain(3).status(NOW) is BargainStatus.OPEN
    assert _bargain(4).status(NOW) is BargainStatus.COMPLETE
    assert _bargain(4).next_cut_fen is None
    assert _bargain(2, order_id=9).status(NOW) is BargainStatus.PURCHASED
    assert _bargain(2).status(NOW + timedelta(hours=1)) is BargainStatus.EXPIRED


def _spec(**changes: object) -> CampaignSpec:
    values: dict[str, object] = {
        "kind": CampaignKind.GROUP_BUY,
        "name": " 三人团 ",
        "starts_at": NOW - timedelta(hours=1),
        "ends_at": NOW + timedelta(days=1),
        "items": (CampaignItem(10, 1990),),
        "store_ids": (1, 2),
        "channels": frozenset({Channel.PICKUP, Channel.DELIVERY}),
        "quota_per_store": 10,
        "per_member_limit": 1,
        "new_members_only": False,
        "group": GroupRules(3, 24),
    }
    values.update(changes)
    return CampaignSpec(**values)  # type: ignore[arg-type]


def _check(spec: CampaignSpec) -> CampaignSpec:
    return check_spec(
        spec,
        now=NOW,
        regular_prices={10: 2990, 11: 990},
        sku_channels={10: frozenset(), 11: frozenset({Channel.DINE_IN})},
        known_stores=frozenset({1, 2}),
    )


def test_a_valid_campaign_is_cleaned_and_keeps_only_its_kind_rules() -> None:
    cleaned = _check(_spec())
    assert cleaned.name == "三人团"
    flash = _check(_spec(kind=CampaignKind.FLASH_SALE))
    assert flash.group is None and flash.bargain is None


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"ends_at": NOW - timedelta(hours=2)}, ErrorCode.INVALID_WINDOW, ["endsAt"]),
        ({"starts_at": NOW.replace(tzinfo=None)}, ErrorCode.INVALID_WINDOW, ["startsAt"]),
        ({"ends_at": NOW + timedelta(days=100)}, ErrorCode.INVALID_WINDOW, ["endsAt"]),
        ({"items": (CampaignItem(10, 1990), CampaignItem(10, 990))}, ErrorCode.DUPLICATE, None),
        ({"items": (CampaignItem(99, 100),)}, ErrorCode.NOT_FOUND, ["items", "0", "skuId"]),
        ({"items": (CampaignItem(11, 100),)}, ErrorCode.NOT_ON_CHANNEL, None),
        ({"items": (CampaignItem(10, 0),)}, ErrorCode.OUT_OF_RANGE, ["items", "0", "price"]),
        ({"store_ids": (1, 1)}, ErrorCode.DUPLICATE, ["storeIds"]),
        ({"store_ids": (3,)}, ErrorCode.NOT_FOUND, ["storeIds", "0"]),
        ({"per_member_limit": 0}, ErrorCode.OUT_OF_RANGE, ["perMemberLimit"]),
        ({"group": GroupRules(21, 24)}, ErrorCode.OUT_OF_RANGE, ["groupSize"]),
        ({"group": GroupRules(3, 0)}, ErrorCode.OUT_OF_RANGE, ["groupHours"]),
    ],
)
def test_a_campaign_that_cannot_work_is_refused_naming_the_field(
    changes: dict[str, object], code: ErrorCode, field: list[str] | None
) -> None:
    with pytest.raises(DomainError) as refused:
        _check(_spec(**changes))
    assert refused.value.code is code
    if field is not None:
        assert refused.value.field == field


def _campaign(**changes: object) -> Campaign:
    return Campaign(id=1, spec=_spec(**changes), ended_at=None, closed=False, created_at=NOW)


def test_a_campaign_is_scheduled_running_then_ended_and_early_ends_count() -> None:
    campaign = _campaign()
    assert campaign.state(NOW - timedelta(hours=2)) is CampaignState.SCHEDULED
    assert campaign.state(NOW) is CampaignState.RUNNING
    assert campaign.state(NOW + timedelta(days=2)) is CampaignState.ENDED
    ended_early = Campaign(1, campaign.spec, NOW, False, NOW)
    assert ended_early.state(NOW) is CampaignState.ENDED
    # A group never outlives its campaign.
    assert group_expiry(_campaign(ends_at=NOW + timedelta(hours=2)), NOW) == NOW + timedelta(
        hours=2
    )


def test_a_campaign_order_takes_what_the_campaign_leaves_no_choice_about() -> None:
    one_store = _campaign(store_ids=(2,))
    chosen = choose(one_store, Fulfilment())
    assert (chosen.item.sku_id, chosen.store_id, chosen.channel) == (10, 2, Channel.PICKUP)
    with pytest.raises(DomainError) as refused:
        choose(_campaign(), Fulfilment())
    assert refused.value.field == ["order", "storeId"]
    with pytest.raises(DomainError) as refused:
        choose(one_store, Fulfilment(store_id=1))
    assert refused.value.code is ErrorCode.NOT_IN_CAMPAIGN
    delivery_only = _campaign(store_ids=(2,), channels=frozenset({Channel.DELIVERY}))
    assert choose(delivery_only, Fulfilment()).channel is Channel.DELIVERY
    two_ways = _campaign(store_ids=(2,), channels=frozenset({Channel.DINE_IN, Channel.DELIVERY}))
    with pytest.raises(DomainError) as refused:
        choose(two_ways, Fulfilment())
    assert refused.value.field == ["order", "channel"]


def test_share_codes_round_trip_and_refuse_tampering_and_other_keys() -> None:
    codes = SignedShareCodes(b"k" * 32)
    invite = Invite(InviteKind.GROUP, 3, 41, 7, NOW + timedelta(hours=1))
    code = codes.sign(invite)
    assert len(code) < 80  # fits a QR code and a share card's path
    assert codes.read(code) == invite
    assert codes.read(code).check(InviteKind.GROUP, NOW) == invite
    with pytest.raises(DomainError) as expired:
        codes.read(code).check(InviteKind.GROUP, NOW + timedelta(hours=1))
    assert expired.value.code is ErrorCode.SHARE_CODE_EXPIRED
    with pytest.raises(DomainError) as wrong_kind:
        codes.read(code).check(InviteKind.BARGAIN, NOW)
    assert wrong_kind.value.code is ErrorCode.INVALID_SHARE_CODE
    payload, _, signature = code.partition(".")
    forged = SignedShareCodes(b"other-key" * 4).sign(
        Invite(InviteKind.GROUP, 3, 41, 99, NOW + timedelta(days=9))
    )
    for bad in (
        payload + "." + signature[::-1],
        forged,
        "not a code",
        "",
        forged.partition(".")[0] + "." + signature,
    ):
        with pytest.raises(DomainError) as refused:
            codes.read(bad)
        assert refused.value.code is ErrorCode.INVALID_SHARE_CODE
