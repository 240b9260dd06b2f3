"""The coupon services on a fake unit of work: claiming, limits, share codes, issuing.

The 500 concurrent claims stay in ``tests/integration/test_coupons.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dinegraph.domain.coupons import (
    CouponStatus,
    CouponTemplate,
    JobStatus,
    Segment,
    share_code,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import ANONYMOUS, MemberViewer, StaffRole, StaffViewer
from dinegraph.domain.members import Member
from dinegraph.domain.pricing import CouponKind
from dinegraph.domain.services.coupons import (
    ClaimCoupon,
    IssueToSegment,
    UpdateTemplate,
    change_coupon_status,
    claim_coupon,
    create_template,
    run_issue_job,
    start_issue_job,
    update_template,
)
from dinegraph.domain.tiers import Tier
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)
SHARE_KEY = b"share-key-for-tests"
HEAD_OFFICE = StaffViewer(1, "运营", StaffRole.OPERATOR, frozenset())


def _template(**changes: object) -> CouponTemplate:
    base = CouponTemplate(
        id=0,
        title="满50减10",
        kind=CouponKind.THRESHOLD,
        amount_off_fen=1000,
        threshold_fen=5000,
        valid_days=7,
        total_quantity=100,
        per_member_limit=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


async def _claim(
    db: FakeDatabase, member: Member, template: CouponTemplate, code: str | None = None
) -> FakeUnitOfWork:
    uow = FakeUnitOfWork(db)
    await claim_coupon(
        ClaimCoupon(template.id, NOW, share_code=code, share_key=SHARE_KEY),
        uow=uow,
        viewer=MemberViewer(member.id),
    )
    return uow


async def _refusal(
    db: FakeDatabase, member: Member, template: CouponTemplate, code: str | None = None
) -> DomainError:
    with pytest.raises(DomainError) as refused:
        await _claim(db, member, template, code)
    return refused.value


def _issued(db: FakeDatabase, template: CouponTemplate) -> int:
    return db.tables.templates[template.id].issued


async def test_a_claimed_coupon_is_valid_for_the_templates_days_from_the_claim(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    template = db.add_template(_template(valid_days=7))

    uow = await _claim(db, member, template)

    assert uow.committed
    [coupon] = db.coupons_of(member.id)
    assert (coupon.status, coupon.valid_from, coupon.valid_until) == (
        CouponStatus.AVAILABLE,
        NOW,
        NOW + timedelta(days=7),
    )
    assert _issued(db, template) == 1


async def test_a_member_claims_no_more_than_the_per_member_limit(db: FakeDatabase) -> None:
    member = db.add_member()
    template = db.add_template(_template(per_member_limit=2))

    await _claim(db, member, template)
    await _claim(db, member, template)
    error = await _refusal(db, member, template)

    assert (error.code, error.field) == (ErrorCode.CLAIM_LIMIT_REACHED, ["templateId"])
    assert len(db.coupons_of(member.id)) == 2
    assert _issued(db, template) == 2


async def test_a_template_never_issues_past_its_quantity(db: FakeDatabase) -> None:
    template = db.add_template(_template(total_quantity=3))
    members = [db.add_member() for _ in range(5)]

    outcomes: list[ErrorCode | None] = []
    for member in members:
        try:
            await _claim(db, member, template)
            outcomes.append(None)
        except DomainError as error:
            outcomes.append(error.code)

    assert outcomes == [None, None, None, ErrorCode.COUPON_SOLD_OUT, ErrorCode.COUPON_SOLD_OUT]
    assert _issued(db, template) == 3
    assert len(db.tables.coupons) == 3


async def test_added_quantity_reopens_a_sold_out_template_but_never_drops_below_issued(
    db: FakeDatabase,
) -> None:
    template = db.add_template(_template(total_quantity=1))
    first, second = db.add_member(), db.add_member()
    await _claim(db, first, template)

    with pytest.raises(DomainError) as below:
        await update_template(
            UpdateTemplate(template.id, total_quantity=0),
            uow=FakeUnitOfWork(db),
            viewer=HEAD_OFFICE,
        )
    await update_template(
        UpdateTemplate(template.id, total_quantity=2), uow=FakeUnitOfWork(db), viewer=HEAD_OFFICE
    )
    await _claim(db, second, template)

    assert (below.value.code, below.value.params["min"]) == (ErrorCode.OUT_OF_RANGE, 1)
    assert _issued(db, template) == 2


async def test_a_stopped_template_issues_nothing_more(db: FakeDatabase) -> None:
    member = db.add_member()
    template = db.add_template(_template())
    await update_template(
        UpdateTemplate(template.id, stop=True), uow=FakeUnitOfWork(db), viewer=HEAD_OFFICE
    )

    error = await _refusal(db, member, template)

    assert error.code is ErrorCode.TEMPLATE_STOPPED
    assert _issued(db, template) == 0


@pytest.mark.parametrize(
    ("changes", "member_tier", "member_since", "code"),
    [
        ({"claim_starts_at": NOW + timedelta(hours=1)}, Tier.NORMAL, NOW, ErrorCode.CLAIM_NOT_OPEN),
        ({"claim_ends_at": NOW}, Tier.NORMAL, NOW, ErrorCode.CLAIM_NOT_OPEN),
        ({"min_tier": Tier.GOLD}, Tier.SILVER, NOW, ErrorCode.NOT_ELIGIBLE),
        (
            {"new_members_only": True},
            Tier.NORMAL,
            NOW - timedelta(days=31),
            ErrorCode.NOT_ELIGIBLE,
        ),
    ],
)
async def test_a_claim_outside_the_window_or_the_audience_is_refused(
    db: FakeDatabase,
    changes: dict[str, object],
    member_tier: Tier,
    member_since: datetime,
    code: ErrorCode,
) -> None:
    member = db.add_member(tier=member_tier, created_at=member_since)
    template = db.add_template(_template(**changes))

    error = await _refusal(db, member, template)

    assert error.code is code
    assert db.coupons_of(member.id) == []
    assert _issued(db, template) == 0


async def test_a_gold_member_claims_a_gold_coupon_and_a_new_member_a_welcome_one(
    db: FakeDatabase,
) -> None:
    gold = db.add_member(tier=Tier.GOLD, created_at=NOW - timedelta(days=400))
    newcomer = db.add_member(created_at=NOW - timedelta(days=2))
    for_gold = db.add_template(_template(min_tier=Tier.SILVER))
    welcome = db.add_template(_template(new_members_only=True))

    await _claim(db, gold, for_gold)
    await _claim(db, newcomer, welcome)

    assert [c.template_id for c in db.coupons_of(gold.id)] == [for_gold.id]
    assert [c.template_id for c in db.coupons_of(newcomer.id)] == [welcome.id]


async def test_nobody_signed_out_claims_a_coupon(db: FakeDatabase) -> None:
    template = db.add_template(_template())
    with pytest.raises(DomainError) as refused:
        await claim_coupon(ClaimCoupon(template.id, NOW), uow=FakeUnitOfWork(db), viewer=ANONYMOUS)
    assert refused.value.code is ErrorCode.UNAUTHENTICATED


# --- share codes (裂变) ----------------------------------------------------------------


async def _fission(
    db: FakeDatabase, friends: int = 2, bonus_quantity: int = 10, limit: int = 1
) -> tuple[CouponTemplate, CouponTemplate, Member, str]:
    bonus = db.add_template(
        _template(
            title="无门槛5元",
            kind=CouponKind.NO_THRESHOLD,
            amount_off_fen=500,
            threshold_fen=0,
            total_quantity=bonus_quantity,
        )
    )
    shared = db.add_template(
        _template(
            fission_friends=friends, fission_bonus_template_id=bonus.id, per_member_limit=limit
        )
    )
    sharer = db.add_member(nickname="分享者")
    await _claim(db, sharer, shared)
    [coupon] = db.coupons_of(sharer.id, shared.id)
    return shared, bonus, sharer, share_code(SHARE_KEY, coupon.id)


async def test_the_sharer_gets_one_bonus_once_enough_friends_claim_through_the_code(
    db: FakeDatabase,
) -> None:
    shared, bonus, sharer, code = await _fission(db, friends=2)

    await _claim(db, db.add_member(), shared, code)
    assert db.coupons_of(sharer.id, bonus.id) == []
    await _claim(db, db.add_member(), shared, code)
    await _claim(db, db.add_member(), shared, code)  # a third friend earns nothing more

    [reward] = db.coupons_of(sharer.id, bonus.id)
    assert reward.member_id == sharer.id
    assert _issued(db, bonus) == 1
    assert _issued(db, shared) == 4


async def test_a_bonus_coupon_does_not_count_against_the_bonus_templates_limit(
    db: FakeDatabase,
) -> None:
    shared, bonus, sharer, code = await _fission(db, friends=1)
    await _claim(db, db.add_member(), shared, code)

    await _claim(db, sharer, bonus)  # the sharer may still claim one of their own

    assert len(db.coupons_of(sharer.id, bonus.id)) == 2


async def test_when_the_bonus_has_run_out_the_friends_coupons_still_stand(
    db: FakeDatabase,
) -> None:
    shared, bonus, sharer, code = await _fission(db, friends=1, bonus_quantity=1)
    await _claim(db, db.add_member(), bonus)  # someone took the only bonus coupon
    friend = db.add_member()

    await _claim(db, friend, shared, code)

    assert len(db.coupons_of(friend.id, shared.id)) == 1
    assert db.coupons_of(sharer.id, bonus.id) == []


async def test_a_tampered_foreign_or_own_share_code_is_refused_and_issues_nothing(
    db: FakeDatabase,
) -> None:
    shared, _, sharer, code = await _fission(db, limit=2)
    other = db.add_template(_template(title="另一张"))
    stranger = db.add_member()
    await _claim(db, stranger, other)
    [foreign] = db.coupons_of(stranger.id, other.id)
    friend = db.add_member()

    tampered = await _refusal(db, friend, shared, code[:-1] + ("0" if code[-1] != "0" else "1"))
    wrong_template = await _refusal(db, friend, shared, share_code(SHARE_KEY, foreign.id))
    own = await _refusal(db, sharer, shared, code)

    for error in (tampered, wrong_template, own):
        assert (error.code, error.field) == (ErrorCode.INVALID_SHARE_CODE, ["shareCode"])
    assert db.coupons_of(friend.id) == []
    assert _issued(db, shared) == 1


# --- setting up and issuing -----------------------------------------------------------


async def test_head_office_sets_up_a_template_and_a_member_cannot(db: FakeDatabase) -> None:
    created = await create_template(
        _template(id=99, issued=50), uow=FakeUnitOfWork(db), viewer=HEAD_OFFICE
    )
    with pytest.raises(DomainError) as refused:
        await create_template(_template(), uow=FakeUnitOfWork(db), viewer=MemberViewer(1))

    assert created.id != 99 and created.issued == 0
    assert db.tables.templates[created.id] == created
    assert refused.value.code is ErrorCode.FORBIDDEN


async def test_a_template_with_a_missing_bonus_template_is_refused(db: FakeDatabase) -> None:
    with pytest.raises(DomainError) as refused:
        await create_template(
            _template(fission_friends=3, fission_bonus_template_id=404),
            uow=FakeUnitOfWork(db),
            viewer=HEAD_OFFICE,
        )
    assert (refused.value.code, refused.value.field) == (
        ErrorCode.NOT_FOUND,
        ["fissionBonusTemplateId"],
    )
    assert db.tables.templates == {}


async def test_a_template_time_without_an_offset_is_refused(db: FakeDatabase) -> None:
    with pytest.raises(DomainError) as refused:
        await create_template(
            _template(valid_from=datetime(9999, 12, 31, 23, 59)),
            uow=FakeUnitOfWork(db),
            viewer=HEAD_OFFICE,
        )
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_INPUT, ["validFrom"])
    assert db.tables.templates == {}


async def test_issuing_to_a_tier_skips_members_at_their_limit_and_stops_when_sold_out(
    db: FakeDatabase,
) -> None:
    template = db.add_template(_template(total_quantity=3))
    golds = [db.add_member(tier=Tier.GOLD) for _ in range(5)]
    db.add_member(tier=Tier.SILVER)
    await _claim(db, golds[0], template)  # already has one

    job = await start_issue_job(
        IssueToSegment(template.id, Segment(tier=Tier.GOLD)),
        uow=FakeUnitOfWork(db),
        viewer=HEAD_OFFICE,
    )
    done = await run_issue_job(job.id, new_uow=lambda: FakeUnitOfWork(db), now=NOW, batch=2)

    assert (done.status, done.issued, done.skipped) == (JobStatus.SOLD_OUT, 2, 1)
    assert [len(db.coupons_of(m.id)) for m in golds] == [1, 1, 1, 0, 0]
    assert _issued(db, template) == 3


async def test_a_coupon_is_locked_by_one_order_then_used_and_never_unlocked_by_another(
    db: FakeDatabase,
) -> None:
    member = db.add_member()
    template = db.add_template(_template())
    await _claim(db, member, template)
    [coupon] = db.coupons_of(member.id)

    uow = FakeUnitOfWork(db)
    async with uow:
        await change_coupon_status(coupon.id, CouponStatus.LOCKED, order_ref="order:1", uow=uow)
        await change_coupon_status(coupon.id, CouponStatus.USED, order_ref="order:1", uow=uow)
        await uow.commit()
    with pytest.raises(DomainError) as refused:
        async with uow:
            await change_coupon_status(coupon.id, CouponStatus.LOCKED, order_ref="order:2", uow=uow)

    assert refused.value.code is ErrorCode.INVALID_TRANSITION
    [used] = db.coupons_of(member.id)
    assert (used.status, used.order_ref) == (CouponStatus.USED, "order:1")
