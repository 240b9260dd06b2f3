"""Staff serve a member: find them by phone (blind index), see what their role allows, and
head office adjusts their points with a reason, audited; bad input changes nothing."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_audit_log import entries, fresh_staff
from tests.integration.test_orders import claimed_coupon
from tests.integration.test_refunds import paid_order

CARD = """query($phone: String!) { memberByPhone(phone: $phone) {
  id nickname phone birthday tier points
  addresses { id }
  coupons(first: 20) { edges { node { id status } } }
  orders(first: 20) { edges { node { id store { id } } } }
} }"""
LEDGER = """query($phone: String!) { memberByPhone(phone: $phone) {
  pointsLedger(first: 10) { edges { node { kind reference delta balanceAfter } } } } }"""
ADJUST = """mutation($input: AdjustMemberPointsInput!) {
  adjustMemberPoints(input: $input) { balance errors { code field } } }"""


async def member_with_phone(
    settings: Settings, engine: AsyncEngine
) -> tuple[int, str, dict[str, str]]:
    phone = f"139{random.randrange(10**8):08d}"
    async with SqlUnitOfWork(engine) as uow:
        member = await uow.members.add(phone=phone, openid=None, nickname="熟客")
        await uow.commit()
    headers = {"Authorization": f"Bearer {issue_member_token(settings, member.id)}"}
    return member.id, phone, headers


async def card(client: GraphQLClient, phone: str, headers: dict[str, str]) -> dict[str, Any]:
    body = await client.execute(CARD, {"phone": phone}, headers)
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["memberByPhone"]
    return found


def error_code(body: dict[str, Any]) -> str:
    (error,) = body["errors"]
    return str(error["extensions"]["code"])


async def test_staff_find_a_member_by_phone_and_see_what_their_role_allows(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    member_id, phone, member = await member_with_phone(settings, engine)
    here = await paid_order(client, settings, engine, member=(member_id, member))
    elsewhere = await paid_order(client, settings, engine, member=(member_id, member))
    coupon = await claimed_coupon(client, gql, credentials, member)
    await client.execute(
        'mutation { updateProfile(input: {birthday: "1990-05-20"}) { errors { code } } }',
        {},
        member,
    )

    hq = await card(client, f"+86 {phone}", credentials.hq_admin)
    assert hq["id"] == encode_id("Member", member_id)
    assert (hq["nickname"], hq["phone"], hq["birthday"], hq["tier"]) == (
        "熟客",
        f"{phone[:3]}****{phone[-4:]}",
        "1990-05-20",
        "NORMAL",
    )
    assert [e["node"]["id"] for e in hq["coupons"]["edges"]] == [coupon]
    assert {e["node"]["id"] for e in hq["orders"]["edges"]} == {here.order_id, elsewhere.order_id}
    operator = await card(client, phone, credentials.operator)
    assert len(operator["orders"]["edges"]) == 2

    # The manager of one store: the card and coupons, only that store's orders, no birthday.
    manager = await card(client, phone, here.staff)
    assert (manager["points"], manager["tier"], manager["birthday"]) == (
        hq["points"],
        "NORMAL",
        None,
    )
    assert manager["addresses"] == []
    assert [e["node"]["id"] for e in manager["coupons"]["edges"]] == [coupon]
    assert [e["node"]["id"] for e in manager["orders"]["edges"]] == [here.order_id]
    ledger = await client.execute(LEDGER, {"phone": phone}, here.staff)
    assert error_code(ledger) == "FORBIDDEN"
    assert "errors" not in await client.execute(LEDGER, {"phone": phone}, credentials.hq_admin)

    # Nobody else finds members; a phone nobody has finds nothing; a bad phone is refused.
    assert error_code(await client.execute(CARD, {"phone": phone}, credentials.member)) == (
        "FORBIDDEN"
    )
    assert error_code(await client.execute(CARD, {"phone": phone}, credentials.partner)) == (
        "FORBIDDEN"
    )
    assert error_code(await client.execute(CARD, {"phone": phone}, {})) == "UNAUTHENTICATED"
    assert await card(client, "13700000000", credentials.hq_admin) is None
    bad = await client.execute(CARD, {"phone": "12345"}, credentials.hq_admin)
    assert error_code(bad) == "INVALID_PHONE"


async def test_head_office_adjusts_points_with_a_reason_and_bad_input_changes_nothing(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    member_id, phone, _member = await member_with_phone(settings, engine)
    staff_id, hq = await fresh_staff(settings, engine, StaffRole.HQ_ADMIN, ())
    member = encode_id("Member", member_id)

    async def adjust(headers: dict[str, str], **values: Any) -> dict[str, Any]:
        given = {"memberId": member, "delta": 30, "reference": "K-1", "reason": "客诉补偿"}
        body = await client.execute(ADJUST, {"input": {**given, **values}}, headers)
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["adjustMemberPoints"]
        return payload

    async def points() -> int:
        return int((await card(client, phone, credentials.hq_admin))["points"])

    assert await adjust(hq) == {"balance": 30, "errors": []}
    assert await adjust(hq) == {"balance": 30, "errors": []}  # the key makes a retry harmless
    assert await points() == 30

    refusals: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"reason": "  "}, "REQUIRED", ["reason"]),
        ({"reason": "因" * 201}, "TOO_LONG", ["reason"]),
        ({"delta": 0}, "OUT_OF_RANGE", ["delta"]),
        ({"delta": -31, "reference": "K-2"}, "INSUFFICIENT_POINTS", ["delta"]),
        ({"reference": ""}, "REQUIRED", ["reference"]),
        ({"memberId": encode_id("Member", 10**9)}, "NOT_FOUND", ["memberId"]),
        ({"memberId": "bm9wZQ=="}, "INVALID_ID", ["memberId"]),
    ]
    for values, code, field in refusals:
        given = {"reference": f"K-{code}", **values}
        assert await adjust(hq, **given) == {
            "balance": None,
            "errors": [{"code": code, "field": field}],
        }, values
    manager_id, manager = await fresh_staff(settings, engine, StaffRole.STORE_MANAGER, (1,))
    refused = await adjust(manager, reference="K-3")
    assert refused == {"balance": None, "errors": [{"code": "FORBIDDEN", "field": None}]}
    assert await points() == 30

    written = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    done = [e for e in written if e["action"] == "adjustMemberPoints" and e["outcome"] == "DONE"]
    assert done and all("客诉补偿" in e["summary"] for e in done)
    denied = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", manager_id))
    assert [e["outcome"] for e in denied] == ["DENIED"]
