"""`dinegraph rotate-data-keys` as an operator runs it after putting a new key first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from dinegraph.db.engine import create_engine
from dinegraph.db.personal import key_id
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.settings import Settings
from tests.conftest import make_settings
from tests.databases import fresh_database
from tests.e2e.conftest import run_cli

K1 = "k1:" + "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
K2 = "k2:" + "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI="
PHONES = [f"1350000{n:04d}" for n in range(5)]


async def _add_members(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with SqlUnitOfWork(engine) as uow:
            for phone in PHONES:
                await uow.members.add(phone=phone, openid=None, nickname="轮换")
            await uow.commit()
    finally:
        await engine.dispose()


async def _stored_key_ids_and_lookups(settings: Settings) -> tuple[set[str], int]:
    engine = create_engine(settings)
    raw = sa.table("members", sa.column("phone"))
    try:
        async with engine.connect() as conn:
            kids = {key_id(v) for v in (await conn.execute(sa.select(raw.c.phone))).scalars()}
        async with SqlUnitOfWork(engine) as uow:
            found = [await uow.members.by_phone(phone) for phone in PHONES]
        return kids, sum(1 for member in found if member is not None)
    finally:
        await engine.dispose()


def test_rotation_moves_every_value_to_the_first_key_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    with fresh_database(tmp_path) as url:
        old = make_settings(url, data_keys=K1)
        asyncio.run(_add_members(old))
        rotating = {"DINEGRAPH_DATA_KEYS": f"{K2},{K1}"}

        first = run_cli(old, "rotate-data-keys", "--batch-size", "2", **rotating)
        assert first.returncode == 0, first.stderr
        assert "members.phone: 5 rewritten, 0 already current" in first.stdout
        assert first.stdout.strip().endswith("rewrote 5 values; all under key k2")

        again = run_cli(old, "rotate-data-keys", **rotating)
        assert again.returncode == 0, again.stderr
        assert "members.phone: 0 rewritten, 5 already current" in again.stdout
        assert "rewrote 0 values" in again.stdout

        kids, found = asyncio.run(_stored_key_ids_and_lookups(make_settings(url, data_keys=K2)))
        assert kids == {"k2"} and found == len(PHONES)


def test_production_commands_refuse_to_run_without_the_keys_and_name_them(
    settings: Settings,
) -> None:
    result = run_cli(
        settings,
        "migrate",
        DINEGRAPH_MODE="production",
        DINEGRAPH_DATA_KEYS="",
        DINEGRAPH_BLIND_INDEX_KEY="",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "error: DINEGRAPH_DATA_KEYS and DINEGRAPH_BLIND_INDEX_KEY must be set in production"
    )
    assert "Traceback" not in result.stderr
