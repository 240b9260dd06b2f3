"""Points, check-ins and tiers on a fake unit of work: the points ledger's rules.

Points racing each other stay in ``tests/integration/test_points_and_tiers.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, StaffRole, StaffViewer
from dinegraph.domain.members import Member, PointsKind
from dinegraph.domain.services.members import CheckIn, check_in
from dinegraph.domain.services.points import (
    AdjustPoints,
    adjust_points,
    earn_points,
    expire_points,
    record_spend,
    redeem_points,
)
from dinegraph.domain.tiers import Tier
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)
HEAD_OFFICE = StaffViewer(1, "总部", StaffRole.HQ_ADMIN, frozenset())
THRESHOLDS = {
    Tier.NORMAL: 0,
    Tier.SILVER: 100_000,
    Tier.GOLD: 500_000,
    Tier.BLACK_DIAMOND: 2_000_000,
}


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


def _balance(db: FakeDatabase, member: Member) -> int:
    return db.tables.points[member.id]


def _ledger_sum(db: FakeDatabase, member: Member) -> int:
    return sum(row.delta for row in db.points_rows(member.id))


async def _earn(db: FakeDatabase, member: Member, reference: str, paid_fen: int) -> int:
    uow = FakeUnitOfWork(db)
    async with uow:
        balance = await earn_points(
            member.id, reference, paid_fen, now=NOW, expiry_days=365, uow=uow
        )
        await uow.commit()
    return balance


async def _redeem(db: FakeDatabase, member: Member, points: int, reference: str) -> int:
    uow = FakeUnitOfWork(db)
    async with uow:
        balance = await redeem_points(member.id, points, reference, uow=uow)
        await uow.commit()
    return balance


async def test_the_balance_is_always_the_sum_of_the_points_ledger(db: FakeDatabase) -> None:
    member = db.add_member()

    await _earn(db, member, "order:1", 12_345)  # ¥123.45 → 123 points
    await _redeem(db, member, 23, "order:2")
    await adjust_points(
        AdjustPoints(member.id, 50, "客诉补偿-7", "客诉补偿"),
        uow=FakeUnitOfWork(db),
        viewer=HEAD_OFFICE,
    )
    await check_in(
        CheckIn(date(2030, 6, 1)), uow=FakeUnitOfWork(db), viewer=MemberViewer(member.id)
    )

    assert _balance(db, member) == 123 - 23 + 50 + 5
    assert _ledger_sum(db, member) == _balance(db, member)
    assert [r.kind for r in db.points_rows(member.id)] == [
        PointsKind.EARN,
        PointsKind.REDEEM,
        PointsKind.ADJUST,
        PointsKind.CHECK_IN,
    ]


async def test_a_gold_member_earns_one_and_a_half_points_per_yuan(db: FakeDatabase) -> None:
    gold = db.add_member(tier=Tier.GOLD)

    balance = await _earn(db, gold, "order:1", 10_099)  # ¥100.99: 100 yuan counted

    assert balance == 150
    [row] = db.points_rows(gold.id)
    assert row.expires_at == NOW + timedelta(days=365)


async def test_the_same_earning_replayed_adds_points_once(db: FakeDatabase) -> None:
    member = db.add_member()

    await _earn(db, member, "order:1", 5_000)
    again = await _earn(db, member, "order:1", 5_000)

    assert again == 50
    assert _balance(db, member) == 50
    assert len(db.points_rows(member.id)) == 1


async def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    await _earn(db, member, "order:1", 3_000)

    with pytest.raises(DomainError) as refused:
        await _redeem(db, member, 31, "order:2")

    assert (refused.value.code, refused.value.field) == (ErrorCode.INSUFFICIENT_POINTS, ["points"])
    assert _balance(db, member) == 30
    assert _ledger_sum(db, member) == 30


async def test_an_adjustment_never_takes_points_below_zero_and_a_retry_counts_once(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    await _earn(db, member, "order:1", 4_000)

    with pytest.raises(DomainError) as refused:
        await adjust_points(
            AdjustPoints(member.id, -41, "纠错-1", "纠错"),
            uow=FakeUnitOfWork(db),
            viewer=HEAD_OFFICE,
        )
    for _ in range(2):
        await adjust_points(
            AdjustPoints(member.id, -15, "纠错-2", "纠错"),
            uow=FakeUnitOfWork(db),
            viewer=HEAD_OFFICE,
        )

    assert (refused.value.code, refused.value.field) == (ErrorCode.INSUFFICIENT_POINTS, ["delta"])
    assert _balance(db, member) == 25
    assert _ledger_sum(db, member) == 25


async def test_only_head_office_adjusts_points(db: FakeDatabase) -> None:
    member = db.add_member()
    manager = StaffViewer(2, "店长", StaffRole.STORE_MANAGER, frozenset({1}))
    for viewer in (MemberViewer(member.id), manager):
        with pytest.raises(DomainError) as refused:
            await adjust_points(
                AdjustPoints(member.id, 1_000, "送我", "送我"),
                uow=FakeUnitOfWork(db),
                viewer=viewer,
            )
        assert refused.value.code is ErrorCode.FORBIDDEN
    assert _balance(db, member) == 0


async def test_expiry_takes_only_what_is_left_of_an_earning_and_only_once(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    await _earn(db, member, "order:1", 10_000)  # 100 points, expiring a year on
    await _redeem(db, member, 70, "order:2")
    later = NOW + timedelta(days=365)

    first = await expire_points(later, uow=FakeUnitOfWork(db))
    second = await expire_points(later + timedelta(days=1), uow=FakeUnitOfWork(db))

    assert first == (1, 30)
    assert second == (0, 0)
    assert _balance(db, member) == 0
    assert _ledger_sum(db, member) == 0


async def test_points_not_yet_due_do_not_expire(db: FakeDatabase) -> None:
    member = db.add_member()
    await _earn(db, member, "order:1", 10_000)

    swept = await expire_points(NOW + timedelta(days=364), uow=FakeUnitOfWork(db))

    assert swept == (0, 0)
    assert _balance(db, member) == 100


async def test_a_check_in_streak_earns_a_bonus_on_the_third_day_and_restarts_after_a_gap(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    viewer = MemberViewer(member.id)
    days = [date(2030, 6, d) for d in (1, 2, 3, 5)]

    results = [await check_in(CheckIn(d), uow=FakeUnitOfWork(db), viewer=viewer) for d in days]

    assert [(r.streak, r.points_earned) for r in results] == [(1, 5), (2, 5), (3, 15), (1, 5)]
    assert results[-1].balance == _balance(db, member) == 30


async def test_a_second_check_in_on_the_same_day_is_refused(db: FakeDatabase) -> None:
    member = db.add_member()
    viewer = MemberViewer(member.id)
    await check_in(CheckIn(date(2030, 6, 1)), uow=FakeUnitOfWork(db), viewer=viewer)

    with pytest.raises(DomainError) as refused:
        await check_in(CheckIn(date(2030, 6, 1)), uow=FakeUnitOfWork(db), viewer=viewer)

    assert refused.value.code is ErrorCode.ALREADY_CHECKED_IN
    assert _balance(db, member) == 5


async def _spend(db: FakeDatabase, member: Member, reference: str, fen: int, at: datetime) -> Tier:
    uow = FakeUnitOfWork(db)
    async with uow:
        tier = await record_spend(member.id, reference, fen, at=at, thresholds=THRESHOLDS, uow=uow)
        await uow.commit()
    return tier


async def test_the_tier_follows_twelve_months_of_spend_counted_once_per_order(
    db: FakeDatabase,
) -> None:
    member = db.add_member()

    assert await _spend(db, member, "order:1", 60_000, NOW - timedelta(days=400)) is Tier.NORMAL
    assert await _spend(db, member, "order:2", 60_000, NOW) is Tier.NORMAL
    assert await _spend(db, member, "order:2", 60_000, NOW) is Tier.NORMAL  # a replay
    assert await _spend(db, member, "order:3", 40_000, NOW) is Tier.SILVER
    assert db.tables.members[member.id].tier is Tier.SILVER
    assert await _spend(db, member, "order:3:refund", -40_000, NOW) is Tier.NORMAL
    assert db.tables.members[member.id].tier is Tier.NORMAL
