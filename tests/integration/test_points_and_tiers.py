"""Points and tiers as orders will move them, through the domain services on a real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.services import points
from dinegraph.domain.tiers import Tier
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient


async def _member(engine: AsyncEngine) -> int:
    async with SqlUnitOfWork(engine) as uow:
        member = await uow.members.add(phone=None, openid=f"p-{uuid.uuid4().hex}", nickname="积分")
        await uow.commit()
    return member.id


async def _spend(
    engine: AsyncEngine, settings: Settings, member: int, ref: str, fen: int, at: datetime
) -> Tier:
    async with SqlUnitOfWork(engine) as uow:
        tier = await points.record_spend(
            member, ref, fen, at=at, thresholds=settings.tier_thresholds, uow=uow
        )
        await uow.commit()
    return tier


async def test_tier_follows_trailing_twelve_months_spend(
    engine: AsyncEngine, settings: Settings, gql: GraphQLClient
) -> None:
    member = await _member(engine)
    now = datetime.now(UTC)
    assert (
        await _spend(engine, settings, member, "o-1", 60_000, now - timedelta(days=400))
        is Tier.NORMAL
    )
    assert await _spend(engine, settings, member, "o-2", 120_000, now) is Tier.SILVER
    assert await _spend(engine, settings, member, "o-2", 120_000, now) is Tier.SILVER  # replay
    assert await _spend(engine, settings, member, "o-3", 400_000, now) is Tier.GOLD
    assert await _spend(engine, settings, member, "r-3", -400_000, now) is Tier.SILVER  # refund
    body = await gql.execute(
        "{ viewer { member { tier tierProgress { current next spendToNextFen } } } }",
        headers={"Authorization": f"Bearer {issue_member_token(settings, member)}"},
    )
    assert body["data"]["viewer"]["member"] == {
        "tier": "SILVER",
        "tierProgress": {"current": "SILVER", "next": "GOLD", "spendToNextFen": 380_000},
    }


async def test_points_are_earned_with_the_tier_multiplier_redeemed_and_never_negative(
    engine: AsyncEngine, settings: Settings
) -> None:
    member = await _member(engine)
    now = datetime.now(UTC)
    await _spend(engine, settings, member, "gold", 600_000, now)  # GOLD: 1.5 points a yuan
    async with SqlUnitOfWork(engine) as uow:
        balance = await points.earn_points(member, "o-9", 10_050, now=now, expiry_days=365, uow=uow)
        await uow.commit()
    assert balance == 150
    with pytest.raises(DomainError) as err:
        async with SqlUnitOfWork(engine) as uow:
            await points.redeem_points(member, 151, "o-10", uow=uow)
    assert err.value.code is ErrorCode.INSUFFICIENT_POINTS
    async with SqlUnitOfWork(engine) as uow:
        assert await points.redeem_points(member, 100, "o-10", uow=uow) == 50
        assert await points.redeem_points(member, 100, "o-10", uow=uow) == 50  # replay
        await uow.commit()


async def test_concurrent_redemptions_never_take_the_balance_below_zero(
    engine: AsyncEngine, settings: Settings
) -> None:
    member = await _member(engine)
    now = datetime.now(UTC)
    async with SqlUnitOfWork(engine) as uow:
        await points.earn_points(member, "seed", 10_000, now=now, expiry_days=365, uow=uow)
        await uow.commit()

    async def redeem(n: int) -> bool:
        try:
            async with SqlUnitOfWork(engine) as uow:
                await uow.members.get(member, lock=True)
                await points.redeem_points(member, 30, f"r-{n}", uow=uow)
                await uow.commit()
        except DomainError:
            return False
        return True

    results = await asyncio.gather(*(redeem(n) for n in range(20)))
    assert sum(results) == 3  # 100 points, 30 each
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.members.points_balance(member) == 10


async def test_earned_points_expire_once_and_only_what_is_left(
    engine: AsyncEngine, settings: Settings
) -> None:
    member = await _member(engine)
    then = datetime.now(UTC) - timedelta(days=400)
    async with SqlUnitOfWork(engine) as uow:
        await points.earn_points(member, "old", 5_000, now=then, expiry_days=365, uow=uow)
        await points.redeem_points(member, 20, "spent", uow=uow)
        await uow.commit()
    first = await points.expire_points(datetime.now(UTC), uow=SqlUnitOfWork(engine))
    again = await points.expire_points(datetime.now(UTC), uow=SqlUnitOfWork(engine))
    assert first[1] >= 30 and again[1] == 0
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.members.points_balance(member) == 0


async def test_head_office_adjusts_points_with_a_reference(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    member = await _member(engine)
    query = """mutation($i: AdjustMemberPointsInput!) { adjustMemberPoints(input: $i) {
        balance errors { code } } }"""
    variables = {
        "i": {
            "memberId": encode_id("Member", member),
            "delta": 40,
            "reference": "T-1",
            "reason": "客诉补偿",
        }
    }
    first = await gql.execute(query, variables, credentials.hq_admin)
    again = await gql.execute(query, variables, credentials.hq_admin)
    assert (
        first["data"]["adjustMemberPoints"]
        == again["data"]["adjustMemberPoints"]
        == {
            "balance": 40,
            "errors": [],
        }
    )
    refused = await gql.execute(query, variables, credentials.manager_store_1)
    assert refused["data"]["adjustMemberPoints"]["errors"] == [{"code": "FORBIDDEN"}]
