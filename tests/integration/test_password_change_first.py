"""A temporary password's holder may read who they are, change it and sign out; every other
call is refused with PASSWORD_CHANGE_REQUIRED and changes nothing, until they change it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.staff_accounts import create_account
from dinegraph.db.tables import audit_log, categories
from dinegraph.domain.identity import StaffRole
from dinegraph.passwords import Argon2Passwords
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.staffing import ME, REFRESH, bearer, login, staff_app, unique

TEMPORARY = "temporary-password-1"
STOCK = "query Stock($storeId: ID!) { storeStock(storeId: $storeId) { available } }"
CREATE_CATEGORY = """mutation Create($input: CreateCategoryInput!) {
  createCategory(input: $input) { category { id } errors { code field message } }
}"""
CHANGE = """mutation Change($current: String!, $new: String!) {
  changeMyPassword(input: {currentPassword: $current, newPassword: $new}) {
    staff { mustChangePassword } errors { code field }
  }
}"""


async def temporary_account(engine: AsyncEngine) -> str:
    username = unique("temp")
    await create_account(
        engine,
        username=username,
        display_name=None,
        role=StaffRole.HQ_ADMIN,
        store_ids=[],
        password_hash=Argon2Passwords().hash_now(TEMPORARY),
        must_change_password=True,
    )
    return username


async def category_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(categories)) or 0)


def refused(answer: dict[str, Any]) -> bool:
    return answer.get("data") is None and [e["extensions"]["code"] for e in answer["errors"]] == [
        "PASSWORD_CHANGE_REQUIRED"
    ]


async def test_a_temporary_password_may_only_be_changed(
    settings: Settings, engine: AsyncEngine
) -> None:
    # Following its broker as a server does: the change is heard, the account read afresh.
    async with staff_app(settings, engine, lifespan=True) as (gql, _):
        username = await temporary_account(engine)
        session = await login(gql, username, TEMPORARY)
        assert session["errors"] == [] and session["staff"]["mustChangePassword"] is True
        headers = bearer(session)
        store = {"storeId": encode_id("Store", 1)}

        me = await gql.execute(ME, headers=headers)
        assert me["data"]["viewer"]["staff"]["username"] == username

        assert refused(await gql.execute(STOCK, store, headers=headers))
        # Asking for it beside what is allowed, or through a fragment, changes nothing.
        mixed = """query Mixed($storeId: ID!) {
          viewer { __typename } storeStock(storeId: $storeId) { available }
        }"""
        assert refused(await gql.execute(mixed, store, headers=headers))
        spread = """query Spread($storeId: ID!) { ...Board }
          fragment Board on Query { storeStock(storeId: $storeId) { available } }"""
        assert refused(await gql.execute(spread, store, headers=headers))

        before = await category_count(engine)
        created = await gql.execute(CREATE_CATEGORY, {"input": {"name": "新类"}}, headers=headers)
        payload = created["data"]["createCategory"]
        assert payload["category"] is None
        assert [e["code"] for e in payload["errors"]] == ["PASSWORD_CHANGE_REQUIRED"]
        assert payload["errors"][0]["message"]
        assert await category_count(engine) == before

        refreshed = await gql.execute(REFRESH, {"input": {"refreshToken": session["refreshToken"]}})
        assert refreshed["data"]["refreshStaffSession"]["errors"] == []
        headers = bearer(refreshed["data"]["refreshStaffSession"])

        changed = await gql.execute(
            CHANGE, {"current": TEMPORARY, "new": "my-own-password-2"}, headers=headers
        )
        assert changed["data"]["changeMyPassword"] == {
            "staff": {"mustChangePassword": False},
            "errors": [],
        }
        # The same token may do everything at once: the server forgot the account it knew.
        board = await gql.execute(STOCK, store, headers=headers)
        assert "errors" not in board, board
        created = await gql.execute(CREATE_CATEGORY, {"input": {"name": "新类"}}, headers=headers)
        assert created["data"]["createCategory"]["errors"] == []
        assert await category_count(engine) == before + 1


async def test_a_refused_write_of_a_temporary_password_is_audited(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with staff_app(settings, engine) as (gql, _):
        session = await login(gql, await temporary_account(engine), TEMPORARY)
        answer = await gql.execute(
            CREATE_CATEGORY, {"input": {"name": "新类"}}, headers=bearer(session)
        )
        assert answer["data"]["createCategory"]["errors"][0]["code"] == "PASSWORD_CHANGE_REQUIRED"
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(audit_log.c.outcome, audit_log.c.error_code)
                    .where(audit_log.c.action == "createCategory")
                    .order_by(audit_log.c.id.desc())
                    .limit(1)
                )
            ).one()
        assert tuple(row) == ("DENIED", "PASSWORD_CHANGE_REQUIRED")


async def test_other_staff_are_not_held_back(settings: Settings, engine: AsyncEngine) -> None:
    async with staff_app(settings, engine) as (gql, _):
        username = unique("hq")
        await create_account(
            engine,
            username=username,
            display_name=None,
            role=StaffRole.HQ_ADMIN,
            store_ids=[],
            password_hash=Argon2Passwords().hash_now(TEMPORARY),
        )
        headers = bearer(await login(gql, username, TEMPORARY))
        answer = await gql.execute(STOCK, {"storeId": encode_id("Store", 1)}, headers=headers)
        assert "errors" not in answer, answer
