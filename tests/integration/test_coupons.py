"""Coupons: the 领券中心, claiming under real concurrency, 裂变, the wallet and cart fit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import coupon_templates, coupons
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.shop import new_members

CENTRE = "query CouponCentre { claimableCoupons { id title kind } }"
CLAIM = """
mutation Claim($templateId: ID!) { claimCoupon(templateId: $templateId) { coupon { id } errors { code message } } }
"""  # noqa: E501
WALLET = """
query Wallet {
  viewer { member { id tier points coupons(status: AVAILABLE, first: 20) { edges { node { id title expiresAt } } } } }
}
"""  # noqa: E501
CREATE = """mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) {
    template { id remaining } errors { code field } } }"""


async def new_template(gql: GraphQLClient, credentials: Credentials, **fields: Any) -> str:
    values = {
        "title": f"测试券{uuid.uuid4().hex[:4]}",
        "kind": "NO_THRESHOLD",
        "amountOffFen": 300,
        "validDays": 7,
        "totalQuantity": 10,
        **fields,
    }
    body = await gql.execute(CREATE, {"i": values}, credentials.operator)
    payload = body["data"]["createCouponTemplate"]
    assert payload["errors"] == [], payload
    return str(payload["template"]["id"])


async def issued(engine: AsyncEngine, template: str) -> tuple[int, int]:
    """(the template's issued count, coupons that exist of it)."""
    template_id = decode_id(template, "CouponTemplate", ["t"])
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(coupon_templates.c.issued).where(coupon_templates.c.id == template_id)
        )
        rows = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(coupons)
            .where(coupons.c.template_id == template_id)
        )
    return int(count or 0), int(rows or 0)


async def test_the_demo_centre_offers_every_kind_and_a_member_claims_into_the_wallet(
    gql: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    (me,) = await new_members(settings, engine, 1)
    centre = (await gql.execute(CENTRE, headers=me))["data"]["claimableCoupons"]
    assert {c["kind"] for c in centre} == {"THRESHOLD", "NO_THRESHOLD", "PERCENT", "FREE_DELIVERY"}
    assert all("好友助力奖励" not in c["title"] for c in centre)  # earned by sharing only
    first = centre[0]
    claimed = (await gql.execute(CLAIM, {"templateId": first["id"]}, me))["data"]["claimCoupon"]
    assert claimed["errors"] == []
    wallet = (await gql.execute(WALLET, headers=me))["data"]["viewer"]["member"]
    nodes = [e["node"] for e in wallet["coupons"]["edges"]]
    assert [(n["id"], n["title"]) for n in nodes] == [(claimed["coupon"]["id"], first["title"])]
    assert datetime.fromisoformat(nodes[0]["expiresAt"]) > datetime.now(UTC)


async def test_500_concurrent_claims_never_issue_past_the_quantity(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    template = await new_template(gql, credentials, totalQuantity=100)
    members = await new_members(settings, engine, 500)
    results = await asyncio.gather(
        *(gql.execute(CLAIM, {"templateId": template}, m) for m in members)
    )
    payloads = [r["data"]["claimCoupon"] for r in results]
    won = [p for p in payloads if p["coupon"]]
    lost = [p["errors"][0]["code"] for p in payloads if not p["coupon"]]
    assert len(won) == 100
    assert lost == ["COUPON_SOLD_OUT"] * 400
    assert await issued(engine, template) == (100, 100)


async def test_one_members_concurrent_claims_stay_within_the_limit(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    template = await new_template(gql, credentials, totalQuantity=100, perMemberLimit=2)
    (me,) = await new_members(settings, engine, 1)
    results = await asyncio.gather(
        *(gql.execute(CLAIM, {"templateId": template}, me) for _ in range(30))
    )
    payloads = [r["data"]["claimCoupon"] for r in results]
    assert sum(1 for p in payloads if p["coupon"]) == 2
    assert {p["errors"][0]["code"] for p in payloads if not p["coupon"]} == {"CLAIM_LIMIT_REACHED"}
    assert await issued(engine, template) == (2, 2)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"minTier": "GOLD"}, "NOT_ELIGIBLE"),
        ({"claimStartsAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "CLAIM_NOT_OPEN"),
    ],
)
async def test_claims_outside_the_rules_are_refused(
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
    fields: dict[str, Any],
    code: str,
) -> None:
    template = await new_template(gql, credentials, **fields)
    (me,) = await new_members(settings, engine, 1)
    body = await gql.execute(CLAIM, {"templateId": template}, me)
    assert body["data"]["claimCoupon"]["errors"][0]["code"] == code
    assert await issued(engine, template) == (0, 0)


async def test_a_stopped_template_issues_no_more(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    template = await new_template(gql, credentials)
    stopped = await gql.execute(
        """mutation($i: UpdateCouponTemplateInput!) { updateCouponTemplate(input: $i) {
            template { status } errors { code } } }""",
        {"i": {"id": template, "stop": True}},
        credentials.operator,
    )
    assert stopped["data"]["updateCouponTemplate"]["template"] == {"status": "STOPPED"}
    (me,) = await new_members(settings, engine, 1)
    body = await gql.execute(CLAIM, {"templateId": template}, me)
    assert body["data"]["claimCoupon"]["errors"][0]["code"] == "TEMPLATE_STOPPED"


async def test_three_friends_claiming_through_a_share_code_earn_the_bonus(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    bonus = await new_template(gql, credentials, title="奖励券")
    template = await new_template(
        gql, credentials, fissionFriends=3, fissionBonusTemplateId=bonus, totalQuantity=50
    )
    sharer, *friends = await new_members(settings, engine, 4)
    mine = await gql.execute(
        """mutation($t: ID!) { claimCoupon(templateId: $t) { coupon { id shareCode } } }""",
        {"t": template},
        sharer,
    )
    code = mine["data"]["claimCoupon"]["coupon"]["shareCode"]
    claim = """mutation($t: ID!, $c: String) { claimCoupon(templateId: $t, shareCode: $c) {
        coupon { id } bonus { title } errors { code } } }"""
    forged_code = code[:-1] + ("1" if code[-1] == "0" else "0")  # one character off
    forged = await gql.execute(claim, {"t": template, "c": forged_code}, friends[0])
    assert forged["data"]["claimCoupon"]["errors"] == [{"code": "INVALID_SHARE_CODE"}]
    results = [
        (await gql.execute(claim, {"t": template, "c": code}, f))["data"]["claimCoupon"]
        for f in friends
    ]
    assert [r["bonus"] for r in results] == [None, None, {"title": "奖励券"}]
    wallet = (await gql.execute(WALLET, headers=sharer))["data"]["viewer"]["member"]
    assert sorted(e["node"]["title"] for e in wallet["coupons"]["edges"])[0] == "奖励券"
    assert await issued(engine, bonus) == (1, 1)


async def test_only_head_office_sets_coupons_up(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    values = {
        "title": "x",
        "kind": "NO_THRESHOLD",
        "amountOffFen": 100,
        "validDays": 1,
        "totalQuantity": 1,
    }
    for who, code in (
        (credentials.member, "FORBIDDEN"),
        (credentials.manager_store_1, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ):
        body = await gql.execute(CREATE, {"i": values}, who)
        assert body["data"]["createCouponTemplate"]["errors"][0]["code"] == code


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "THRESHOLD", "thresholdFen": 300}, ["thresholdFen"]),
        ({"kind": "PERCENT", "percentOff": 0, "amountOffFen": 0}, ["percentOff"]),
        ({"validDays": None}, ["validity"]),
        ({"totalQuantity": 0}, ["totalQuantity"]),
    ],
)
async def test_bad_templates_are_refused(
    gql: GraphQLClient, credentials: Credentials, fields: dict[str, Any], field: list[str]
) -> None:
    values = {
        "title": "坏券",
        "kind": "NO_THRESHOLD",
        "amountOffFen": 300,
        "validDays": 7,
        "totalQuantity": 10,
        **fields,
    }
    body = await gql.execute(CREATE, {"i": values}, credentials.operator)
    assert body["data"]["createCouponTemplate"]["errors"][0]["field"] == field


async def test_applicable_coupons_are_sorted_by_saving_with_reasons_for_the_rest(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    small = await new_template(gql, credentials, amountOffFen=300)
    large = await new_template(gql, credentials, amountOffFen=800)
    far = await new_template(
        gql, credentials, kind="THRESHOLD", amountOffFen=5000, thresholdFen=100_000
    )
    (me,) = await new_members(settings, engine, 1)
    for template in (small, large, far):
        await gql.execute(CLAIM, {"templateId": template}, me)
    body = await gql.execute(
        """query($cart: CartInput!) { applicableCoupons(cart: $cart) {
            coupon { template { id } } saving { fen } reason } }""",
        {
            "cart": {
                "storeId": encode_id("Store", 2),
                "channel": "DELIVERY",
                "lines": [{"skuId": encode_id("Sku", 1), "quantity": 2}],
            }
        },
        me,
    )
    fits = [
        (f["coupon"]["template"]["id"], f["saving"] and f["saving"]["fen"], f["reason"])
        for f in body["data"]["applicableCoupons"]
    ]
    assert fits == [(large, 800, None), (small, 300, None), (far, None, "BELOW_THRESHOLD")]


async def test_issuing_to_dormant_members_runs_in_the_background_and_skips_the_active(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=120)
    async with SqlUnitOfWork(engine) as uow:
        sleeping = [
            await uow.members.add(phone=None, openid=f"d-{uuid.uuid4().hex}", nickname="沉睡")
            for _ in range(7)
        ]
        awake = await uow.members.add(phone=None, openid=f"a-{uuid.uuid4().hex}", nickname="活跃")
        await uow.commit()
    async with engine.begin() as conn:
        from dinegraph.db.tables import members as members_table

        await conn.execute(
            members_table.update()
            .where(members_table.c.id.in_([m.id for m in [*sleeping, awake]]))
            .values(created_at=long_ago)
        )
    async with SqlUnitOfWork(engine) as uow:
        await uow.members.add_check_in(awake.id, datetime.now(UTC).date(), 1)
        await uow.commit()
    template = await new_template(gql, credentials, title="唤醒券", totalQuantity=100_000)
    body = await gql.execute(
        """mutation($i: IssueCouponToSegmentInput!) { issueCouponToSegment(input: $i) {
            job { id status } errors { code } } }""",
        {"i": {"templateId": template, "dormantDays": 90}},
        credentials.operator,
    )
    job = body["data"]["issueCouponToSegment"]["job"]
    assert job["status"] == "QUEUED"
    status: dict[str, Any] = {}
    for _ in range(100):
        status = (
            await gql.execute(
                """query($id: ID!) { node(id: $id) { ... on CouponIssueJob {
                    status issued skipped } } }""",
                {"id": job["id"]},
                credentials.operator,
            )
        )["data"]["node"]
        if status["status"] == "DONE":
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "DONE"
    template_id = decode_id(template, "CouponTemplate", ["t"])
    async with engine.connect() as conn:
        holders = set(
            await conn.scalars(
                sa.select(coupons.c.member_id).where(coupons.c.template_id == template_id)
            )
        )
    assert {m.id for m in sleeping} <= holders
    assert awake.id not in holders
    assert status["issued"] == len(holders)
    hidden = await gql.execute(
        """query($id: ID!) { node(id: $id) { ... on CouponIssueJob { status } } }""",
        {"id": job["id"]},
        credentials.member,
    )
    assert hidden["data"]["node"] is None


async def test_redemption_moves_available_locked_used_and_back_on_cancel(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    from dinegraph.domain.coupons import CouponStatus
    from dinegraph.domain.errors import DomainError
    from dinegraph.domain.services.coupons import change_coupon_status

    template = await new_template(gql, credentials)
    (me,) = await new_members(settings, engine, 1)
    claimed = await gql.execute(CLAIM, {"templateId": template}, me)
    coupon_id = decode_id(claimed["data"]["claimCoupon"]["coupon"]["id"], "Coupon", ["c"])

    async def move(target: CouponStatus, order: str | None) -> CouponStatus:
        async with SqlUnitOfWork(engine) as uow:
            moved = await change_coupon_status(coupon_id, target, order_ref=order, uow=uow)
            await uow.commit()
        return moved.status

    assert await move(CouponStatus.LOCKED, "order-1") is CouponStatus.LOCKED
    assert await move(CouponStatus.AVAILABLE, None) is CouponStatus.AVAILABLE  # cancelled
    assert await move(CouponStatus.LOCKED, "order-2") is CouponStatus.LOCKED
    assert await move(CouponStatus.USED, "order-2") is CouponStatus.USED
    with pytest.raises(DomainError) as err:
        await move(CouponStatus.LOCKED, "order-3")
    assert err.value.code.value == "INVALID_TRANSITION"
    wallet = (await gql.execute(WALLET, headers=me))["data"]["viewer"]["member"]
    assert wallet["coupons"]["edges"] == []  # a used coupon is no longer AVAILABLE


async def test_two_orders_cannot_lock_one_coupon(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    from dinegraph.domain.coupons import CouponStatus
    from dinegraph.domain.errors import DomainError
    from dinegraph.domain.services.coupons import change_coupon_status

    template = await new_template(gql, credentials)
    (me,) = await new_members(settings, engine, 1)
    claimed = await gql.execute(CLAIM, {"templateId": template}, me)
    coupon_id = decode_id(claimed["data"]["claimCoupon"]["coupon"]["id"], "Coupon", ["c"])

    async def lock(order: str) -> bool:
        try:
            async with SqlUnitOfWork(engine) as uow:
                await change_coupon_status(coupon_id, CouponStatus.LOCKED, order_ref=order, uow=uow)
                await uow.commit()
        except DomainError:
            return False
        return True

    results = await asyncio.gather(*(lock(f"order-{n}") for n in range(20)))
    assert sum(results) == 1


async def test_the_wallet_runs_the_same_number_of_statements_for_one_coupon_or_five(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    small, large = await new_members(settings, engine, 2)
    templates = [await new_template(gql, credentials) for _ in range(5)]
    await gql.execute(CLAIM, {"templateId": templates[0]}, small)
    for template in templates:
        await gql.execute(CLAIM, {"templateId": template}, large)

    async def statements(headers: dict[str, str]) -> int:
        response = await gql.http.post("/graphql", json={"query": WALLET}, headers=headers)
        assert "errors" not in response.json()
        return int(response.headers["server-timing"].split('"')[1].split()[0])

    assert await statements(small) == await statements(large)


async def test_a_coupon_past_its_validity_reads_expired_in_the_filter_and_the_field(
    gql: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    (me,) = await new_members(settings, engine, 1)
    template = await new_template(gql, credentials)
    claimed = (await gql.execute(CLAIM, {"templateId": template}, me))["data"]["claimCoupon"]
    coupon_id = decode_id(claimed["coupon"]["id"], "Coupon", ["id"])
    async with engine.begin() as conn:  # lapsed, and no sweep has stored EXPIRED yet
        await conn.execute(
            sa.update(coupons)
            .where(coupons.c.id == coupon_id)
            .values(valid_until=datetime.now(UTC) - timedelta(hours=1))
        )
    listed = """query($status: CouponStatus) { viewer { member {
        coupons(status: $status, first: 20) { edges { node { id status } } } } } }"""

    async def wallet(status: str | None) -> list[dict[str, str]]:
        body = await gql.execute(listed, {"status": status}, me)
        return [e["node"] for e in body["data"]["viewer"]["member"]["coupons"]["edges"]]

    expired = {"id": claimed["coupon"]["id"], "status": "EXPIRED"}
    assert await wallet("EXPIRED") == [expired]
    assert await wallet(None) == [expired]
    assert await wallet("AVAILABLE") == []
