"""Campaign quotas as staff follow them: who may follow which stores, which commits may
have moved a quota, and what a quota reads as while running and once ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dinegraph.domain.campaign_quotas import (
    QuotaRow,
    ended_quota,
    moves_quotas,
    quota_stores,
    running_quotas,
)
from dinegraph.domain.campaigns import (
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignSpec,
    CampaignState,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    ANONYMOUS,
    MemberViewer,
    StaffRole,
    StaffViewer,
)
from dinegraph.domain.stamps import CAMPAIGNS, EVERYTHING, price_stamp, quota_stamp, stock_stamp

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
HQ = StaffViewer(1, "hq", StaffRole.HQ_ADMIN, frozenset())
OPERATOR = StaffViewer(2, "op", StaffRole.OPERATOR, frozenset())
MANAGER = StaffViewer(3, "m", StaffRole.STORE_MANAGER, frozenset({1, 2}))


def _campaign(stores: tuple[int, ...] = (1, 2, 3), skus: tuple[int, ...] = (10, 11)) -> Campaign:
    spec = CampaignSpec(
        kind=CampaignKind.FLASH_SALE,
        name="秒杀",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        items=tuple(CampaignItem(s, 990) for s in skus),
        store_ids=stores,
        channels=frozenset({Channel.PICKUP}),
        quota_per_store=5,
        per_member_limit=1,
        new_members_only=False,
    )
    return Campaign(id=7, spec=spec, ended_at=None, closed=False, created_at=NOW)


def test_head_office_follows_any_store_or_the_whole_chain() -> None:
    for viewer in (HQ, OPERATOR):
        assert quota_stores(viewer, 9) == frozenset({9})
        assert quota_stores(viewer, None) is None


def test_a_manager_follows_their_stores_and_is_refused_another() -> None:
    assert quota_stores(MANAGER, 2) == frozenset({2})
    assert quota_stores(MANAGER, None) == frozenset({1, 2})
    with pytest.raises(DomainError) as refused:
        quota_stores(MANAGER, 3)
    assert (refused.value.code, refused.value.field) == (ErrorCode.FORBIDDEN, ["storeId"])


@pytest.mark.parametrize(
    ("viewer", "code"),
    [(ANONYMOUS, ErrorCode.UNAUTHENTICATED), (MemberViewer(5), ErrorCode.FORBIDDEN)],
)
def test_no_one_but_staff_follows_quotas(viewer: object, code: ErrorCode) -> None:
    for store in (1, None):
        with pytest.raises(DomainError) as refused:
            quota_stores(viewer, store)  # type: ignore[arg-type]
        assert refused.value.code is code


def test_only_moves_that_may_touch_the_stores_quotas_count() -> None:
    assert moves_quotas([quota_stamp(1)], frozenset({1}))
    assert not moves_quotas([quota_stamp(2)], frozenset({1}))
    assert moves_quotas([quota_stamp(2)], None)
    assert not moves_quotas([stock_stamp(1), price_stamp(1)], frozenset({1}))
    assert not moves_quotas([stock_stamp(1)], None)
    for wide in (CAMPAIGNS, EVERYTHING):
        assert moves_quotas([wide], frozenset({1}))
        assert moves_quotas([wide], None)


def test_running_quotas_per_store_in_item_order_sold_being_what_is_not_left() -> None:
    campaign = _campaign()
    rows = [
        QuotaRow(7, 1, 11, 5, 5, False),
        QuotaRow(7, 1, 10, 5, 3, False),
        QuotaRow(7, 2, 10, 5, 0, False),
        QuotaRow(7, 2, 11, 5, 4, False),
    ]
    found = running_quotas([campaign], frozenset({1, 2}), rows)
    assert set(found) == {(7, 1), (7, 2)}  # store 3 is not followed
    at_1 = found[(7, 1)]
    assert at_1.state is CampaignState.RUNNING
    assert [(s.sku_id, s.sold, s.left) for s in at_1.skus] == [(10, 2, 3), (11, 0, 5)]
    assert (at_1.sold, at_1.left) == (2, 8)
    assert (found[(7, 2)].sold, found[(7, 2)].left) == (6, 4)


def test_an_ended_quota_has_nothing_left_and_keeps_what_was_sold() -> None:
    campaign = _campaign(stores=(1,), skus=(10,))
    (last,) = running_quotas([campaign], None, [QuotaRow(7, 1, 10, 5, 3, False)]).values()
    ended_early = Campaign(id=7, spec=campaign.spec, ended_at=NOW, closed=False, created_at=NOW)
    # Read before the quotas were closed: one more sold since.
    ended = ended_quota(last, ended_early, {10: QuotaRow(7, 1, 10, 5, 2, False)})
    assert ended.state is CampaignState.ENDED
    assert (ended.sold, ended.left) == (3, 0)
    assert ended.campaign.ends_at == NOW
    # Closed already (what was left went back on the shelf): as last sent.
    closed = ended_quota(last, None, {10: QuotaRow(7, 1, 10, 5, 0, True)})
    assert (closed.sold, closed.left, closed.campaign) == (2, 0, campaign)
    assert not closed.same_as(last) and last.same_as(last)
