"""Staff sign-in: passwords, lockout (also under racing guesses), sessions, TOTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import staff
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.staffing import (
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    bearer,
    login,
    new_staff,
    staff_app,
)


def codes(payload: dict[str, object]) -> list[object]:
    errors = payload["errors"]
    assert isinstance(errors, list)
    return [e["code"] for e in errors]


async def test_a_manager_signs_in_and_the_access_token_is_a_staff_token(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[2, 1])
    async with staff_app(settings, engine) as (gql, _):
        before = datetime.now(UTC)
        session = await login(gql, name)
        assert session["errors"] == []
        expires = datetime.fromisoformat(session["expiresAt"])
        assert before + timedelta(minutes=14) < expires <= before + timedelta(minutes=15, seconds=1)
        account = session["staff"]
        assert account["username"] == name
        assert account["displayName"] == f"{name} 的名字"
        assert account["role"] == "STORE_MANAGER"
        assert [s["id"] for s in account["stores"]] == [
            encode_id("Store", 1),
            encode_id("Store", 2),
        ]
        assert account["totpEnabled"] is False
        me = await gql.execute(ME, headers=bearer(session))
        assert me["data"]["viewer"]["staff"] == account
        anonymous = await gql.execute(ME)
        assert anonymous["data"]["viewer"]["staff"] is None


async def test_head_office_acts_on_every_store(settings: Settings, engine: AsyncEngine) -> None:
    name = await new_staff(engine, role=StaffRole.HQ_ADMIN)
    async with staff_app(settings, engine) as (gql, _):
        session = await login(gql, name)
        async with engine.connect() as conn:
            count = await conn.scalar(sa.text("SELECT count(*) FROM stores"))
        assert len(session["staff"]["stores"]) == count > 2


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        wrong = await login(gql, name, "not-the-password")
        unknown = await login(gql, "nobody-" + name, PASSWORD)
        for answer in (wrong, unknown):
            assert answer["accessToken"] is None and answer["staff"] is None
            assert answer["errors"] == unknown["errors"]
        assert codes(wrong) == ["INVALID_CREDENTIALS"]


async def test_repeated_failures_lock_the_account_until_the_lock_ends(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine, staff_login_max_failures=3) as (gql, services):
        assert codes(await login(gql, name, "wrong-1")) == ["INVALID_CREDENTIALS"]
        assert codes(await login(gql, name, "wrong-2")) == ["INVALID_CREDENTIALS"]
        third = await login(gql, name, "wrong-3")
        assert codes(third) == ["ACCOUNT_LOCKED"]
        # The right password does not open a locked account.
        locked = await login(gql, name)
        assert codes(locked) == ["ACCOUNT_LOCKED"]
        assert locked["accessToken"] is None
        services.clock.advance(timedelta(minutes=15, seconds=1))
        assert (await login(gql, name))["errors"] == []
        # Success forgets the failures: two more wrong ones lock nothing.
        for _ in range(2):
            assert codes(await login(gql, name, "wrong")) == ["INVALID_CREDENTIALS"]
        assert (await login(gql, name))["errors"] == []


async def test_failures_out_of_the_window_do_not_count(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine, staff_login_max_failures=2) as (gql, services):
        assert codes(await login(gql, name, "wrong")) == ["INVALID_CREDENTIALS"]
        services.clock.advance(timedelta(minutes=16))
        assert codes(await login(gql, name, "wrong")) == ["INVALID_CREDENTIALS"]
        assert (await login(gql, name))["errors"] == []


async def test_racing_wrong_guesses_cannot_beat_the_lock(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine, staff_login_max_failures=3) as (gql, _):
        guesses = [login(gql, name, f"guess-{n}") for n in range(12)]
        answers = await asyncio.gather(*guesses)
        found = [c for a in answers for c in codes(a)]
        # Only the first three guesses were ever checked; the rest met the lock.
        assert found.count("INVALID_CREDENTIALS") <= 2
        assert found.count("ACCOUNT_LOCKED") >= 10
        assert len(found) == 12
        assert codes(await login(gql, name)) == ["ACCOUNT_LOCKED"]
    async with engine.connect() as conn:
        until = await conn.scalar(sa.select(staff.c.locked_until).where(staff.c.username == name))
    assert until is not None and until > datetime.now(UTC)


async def test_one_address_failing_too_often_is_refused_for_every_account(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    other = await new_staff(engine)
    ip = "10.77.0.1"
    async with staff_app(settings, engine, client_ip=ip, staff_login_failures_per_address=3) as (
        gql,
        _,
    ):
        for n in range(3):
            assert codes(await login(gql, f"nobody-{n}-{name}")) == ["INVALID_CREDENTIALS"]
        refused = await login(gql, other)
        assert codes(refused) == ["RATE_LIMITED"]
        assert refused["accessToken"] is None
    async with staff_app(settings, engine, client_ip="10.77.0.2") as (gql, _):
        assert (await login(gql, other))["errors"] == []


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_family(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        first = await login(gql, name)

        async def refresh(token: str) -> dict[str, object]:
            answer = await gql.execute(REFRESH, {"input": {"refreshToken": token}})
            payload: dict[str, object] = answer["data"]["refreshStaffSession"]
            return payload

        second = await refresh(first["refreshToken"])
        assert second["errors"] == []
        assert second["refreshToken"] != first["refreshToken"]
        me = await gql.execute(ME, headers=bearer(second))
        assert me["data"]["viewer"]["staff"]["username"] == name
        # The first token again: a copy is out there, so the whole family ends.
        reused = await refresh(first["refreshToken"])
        assert codes(reused) == ["INVALID_TOKEN"]
        assert reused["accessToken"] is None
        assert codes(await refresh(str(second["refreshToken"]))) == ["INVALID_TOKEN"]
        assert codes(await refresh("never-issued")) == ["INVALID_TOKEN"]


async def test_racing_refreshes_of_one_token_give_one_session(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        token = (await login(gql, name))["refreshToken"]
        answers = await asyncio.gather(
            *(gql.execute(REFRESH, {"input": {"refreshToken": token}}) for _ in range(5))
        )
        payloads = [a["data"]["refreshStaffSession"] for a in answers]
        assert sum(1 for p in payloads if p["errors"] == []) <= 1
        assert all(p["errors"] == [] or codes(p) == ["INVALID_TOKEN"] for p in payloads)


async def test_logout_ends_the_refresh_token(settings: Settings, engine: AsyncEngine) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        session = await login(gql, name)
        out = await gql.execute(LOGOUT, {"input": {"refreshToken": session["refreshToken"]}})
        assert out["data"]["staffLogout"]["errors"] == []
        again = await gql.execute(REFRESH, {"input": {"refreshToken": session["refreshToken"]}})
        assert codes(again["data"]["refreshStaffSession"]) == ["INVALID_TOKEN"]
        unknown = await gql.execute(LOGOUT, {"input": {"refreshToken": "nothing"}})
        assert codes(unknown["data"]["staffLogout"]) == ["INVALID_TOKEN"]


async def test_a_hash_of_older_parameters_is_replaced_at_sign_in(
    settings: Settings, engine: AsyncEngine
) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    name = await new_staff(engine, password_hash=old)
    async with staff_app(settings, engine) as (gql, _):
        assert (await login(gql, name))["errors"] == []
    async with engine.connect() as conn:
        stored = await conn.scalar(sa.select(staff.c.password_hash).where(staff.c.username == name))
    assert isinstance(stored, str) and stored != old
    assert not PasswordHasher().check_needs_rehash(stored)
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_a_disabled_account_cannot_sign_in(settings: Settings, engine: AsyncEngine) -> None:
    name = await new_staff(engine)
    async with engine.begin() as conn:
        await conn.execute(staff.update().where(staff.c.username == name).values(active=False))
    async with staff_app(settings, engine) as (gql, _):
        assert codes(await login(gql, name)) == ["ACCOUNT_DISABLED"]
        # Without the password, a disabled account looks like any other refusal.
        assert codes(await login(gql, name, "wrong-password")) == ["INVALID_CREDENTIALS"]


BEGIN_TOTP = "mutation { beginTotpEnrolment { secret uri errors { code field } } }"
CONFIRM_TOTP = """
mutation Confirm($code: String!) {
  confirmTotpEnrolment(input: {code: $code}) { staff { totpEnabled } errors { code field } }
}
"""
DISABLE_TOTP = """
mutation Off($password: String!) {
  disableTotp(input: {password: $password}) { staff { totpEnabled } errors { code field } }
}
"""


async def test_totp_enrolment_then_sign_in_with_codes_used_once(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, services):
        session = await login(gql, name)
        anonymous = await gql.execute(BEGIN_TOTP)
        assert codes(anonymous["data"]["beginTotpEnrolment"]) == ["UNAUTHENTICATED"]
        begun = (await gql.execute(BEGIN_TOTP, headers=bearer(session)))["data"][
            "beginTotpEnrolment"
        ]
        secret = begun["secret"]
        assert begun["uri"].startswith("otpauth://totp/") and f"secret={secret}" in begun["uri"]
        totp = pyotp.TOTP(secret)
        wrong = await gql.execute(CONFIRM_TOTP, {"code": "000000"}, headers=bearer(session))
        if totp.at(services.clock()) != "000000":
            assert codes(wrong["data"]["confirmTotpEnrolment"]) == ["INVALID_TOTP"]
        code = totp.at(services.clock())
        confirmed = await gql.execute(CONFIRM_TOTP, {"code": code}, headers=bearer(session))
        assert confirmed["data"]["confirmTotpEnrolment"] == {
            "staff": {"totpEnabled": True},
            "errors": [],
        }

        required = await login(gql, name)
        assert codes(required) == ["TOTP_REQUIRED"]
        assert required["errors"][0]["field"] == ["totpCode"]
        # The code that confirmed enrolment was used: not again within its window.
        assert codes(await login(gql, name, totp=code)) == ["INVALID_TOTP"]
        services.clock.advance(timedelta(seconds=30))
        fresh = totp.at(services.clock())
        signed_in = await login(gql, name, totp=fresh)
        assert signed_in["errors"] == [] and signed_in["staff"]["totpEnabled"] is True
        assert codes(await login(gql, name, totp=fresh)) == ["INVALID_TOTP"]
        # A wrong password with a right code is still a wrong password.
        services.clock.advance(timedelta(seconds=30))
        assert codes(await login(gql, name, "wrong", totp.at(services.clock()))) == [
            "INVALID_CREDENTIALS"
        ]

        off = await gql.execute(DISABLE_TOTP, {"password": "wrong"}, headers=bearer(signed_in))
        assert codes(off["data"]["disableTotp"]) == ["INVALID_CREDENTIALS"]
        off = await gql.execute(DISABLE_TOTP, {"password": PASSWORD}, headers=bearer(signed_in))
        assert off["data"]["disableTotp"] == {"staff": {"totpEnabled": False}, "errors": []}
        assert (await login(gql, name))["errors"] == []


CHANGE = """
mutation Change($current: String!, $new: String!) {
  changeMyPassword(input: {currentPassword: $current, newPassword: $new}) {
    staff { username } errors { code field }
  }
}
"""


@pytest.mark.parametrize(
    ("current", "new", "code", "field"),
    [
        ("wrong-password", "a-new-password-1", "INVALID_CREDENTIALS", ["currentPassword"]),
        (PASSWORD, "short", "WEAK_PASSWORD", ["newPassword"]),
        (PASSWORD, "USERNAME", "WEAK_PASSWORD", ["newPassword"]),
    ],
)
async def test_changing_ones_password_follows_the_policy(
    settings: Settings, engine: AsyncEngine, current: str, new: str, code: str, field: list[str]
) -> None:
    name = await new_staff(engine, username=f"long-username-{current[:3]}-{new[:3]}")
    new = name.upper() if new == "USERNAME" else new
    async with staff_app(settings, engine) as (gql, _):
        session = await login(gql, name)
        answer = await gql.execute(
            CHANGE, {"current": current, "new": new}, headers=bearer(session)
        )
        assert answer["data"]["changeMyPassword"]["errors"] == [{"code": code, "field": field}]
        assert (await login(gql, name))["errors"] == []  # nothing changed


async def test_changing_ones_password(settings: Settings, engine: AsyncEngine) -> None:
    name = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        session = await login(gql, name)
        answer = await gql.execute(
            CHANGE, {"current": PASSWORD, "new": "a-brand-new-password"}, headers=bearer(session)
        )
        assert answer["data"]["changeMyPassword"]["errors"] == []
        assert codes(await login(gql, name)) == ["INVALID_CREDENTIALS"]
        assert (await login(gql, name, "a-brand-new-password"))["errors"] == []
