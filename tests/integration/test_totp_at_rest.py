"""Staff TOTP secrets are encrypted at rest: a copy of the database cannot make codes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pyotp
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.db.engine import create_engine
from dinegraph.db.migrate import alembic_config, upgrade
from dinegraph.db.staff_accounts import SqlStaffAccounts
from dinegraph.domain.identity import StaffRole
from tests.conftest import make_settings
from tests.databases import fresh_database

BEFORE = "e5a1c9b3d720"  # the last revision that kept them in clear
RAW = sa.text("SELECT totp_secret, totp_pending_secret FROM staff WHERE id = :id")


async def _raw(engine: AsyncEngine, staff_id: int) -> tuple[str | None, str | None]:
    async with engine.connect() as conn:
        row = (await conn.execute(RAW, {"id": staff_id})).one()
    return row.totp_secret, row.totp_pending_secret


async def test_an_enrolled_secret_is_stored_encrypted_and_read_back(engine: AsyncEngine) -> None:
    viewer = await identity_db.ensure_staff(
        engine, username=f"totp-{uuid.uuid4().hex[:8]}", role=StaffRole.HQ_ADMIN, store_ids=[]
    )
    accounts = SqlStaffAccounts(engine)
    secret, other = pyotp.random_base32(), pyotp.random_base32()
    await accounts.set_totp_pending(viewer.staff_id, secret)
    _, pending = await _raw(engine, viewer.staff_id)
    assert pending is not None and pending.startswith("v1:") and secret not in pending

    assert not await accounts.enable_totp(viewer.staff_id, other, 1)  # not the pending one
    assert await accounts.enable_totp(viewer.staff_id, secret, 1)
    assert not await accounts.enable_totp(viewer.staff_id, secret, 2)  # no longer pending
    stored, pending = await _raw(engine, viewer.staff_id)
    assert pending is None and stored is not None and stored.startswith("v1:")
    assert secret not in stored
    account = await accounts.get(viewer.staff_id)
    assert account is not None and account.totp_secret == secret


def test_the_migration_encrypts_secrets_kept_in_clear_and_its_downgrade_restores_them(
    tmp_path: Path,
) -> None:
    with fresh_database(tmp_path, migrated=False) as url:
        settings = make_settings(url)
        upgrade(url, BEFORE, settings)
        secret, pending = pyotp.random_base32(), pyotp.random_base32()

        async def write_plain() -> int:
            engine = create_engine(settings)
            try:
                async with engine.begin() as conn:
                    staff_id = await conn.scalar(
                        sa.text(
                            "INSERT INTO staff (username, role, store_ids, active, created_at,"
                            " totp_secret, totp_pending_secret)"
                            " VALUES ('plain-totp', 'HQ_ADMIN', '[]', true, CURRENT_TIMESTAMP,"
                            " :s, :p) RETURNING id"
                        ),
                        {"s": secret, "p": pending},
                    )
                return int(staff_id)
            finally:
                await engine.dispose()

        async def stored(staff_id: int) -> tuple[str | None, str | None, str | None]:
            engine = create_engine(settings)
            try:
                raw = await _raw(engine, staff_id)
                account = await SqlStaffAccounts(engine).get(staff_id)
                assert account is not None
                return raw[0], raw[1], account.totp_secret
            finally:
                await engine.dispose()

        staff_id = asyncio.run(write_plain())
        upgrade(url, "head", settings)
        raw_secret, raw_pending, read = asyncio.run(stored(staff_id))
        assert raw_secret is not None and raw_secret.startswith("v1:") and secret not in raw_secret
        assert raw_pending is not None and pending not in raw_pending
        assert read == secret

        command.downgrade(alembic_config(url, settings), BEFORE)

        async def plain_again() -> tuple[str | None, str | None]:
            engine = create_engine(settings)
            try:
                return await _raw(engine, staff_id)
            finally:
                await engine.dispose()

        assert asyncio.run(plain_again()) == (secret, pending)
