"""Statements are counted (Server-Timing, the tests' N+1 checks) only once something counts:
a production server without Server-Timing pays for no listener on each statement.

The first case runs in a fresh interpreter: counting, once started, is the whole process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from dinegraph.db.engine import _count_statement, counting, create_engine
from dinegraph.settings import Settings

PROBE = """
import asyncio, json
import sqlalchemy as sa
from sqlalchemy import event
from dinegraph.db.engine import _count_statement, counting, create_engine
from dinegraph.settings import Settings

async def main():
    before = create_engine(Settings())
    listening = event.contains(before.sync_engine, "before_cursor_execute", _count_statement)
    counter = counting()
    after = create_engine(Settings())
    for engine in (before, after):
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await conn.execute(sa.text("SELECT 2"))
        await engine.dispose()
    print(json.dumps({"listening_before": listening, "counted": counter.count}))

asyncio.run(main())
"""


def test_engines_count_from_the_first_counting_on(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={
            **os.environ,
            "DINEGRAPH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'count.db'}",
            "DINEGRAPH_MODE": "development",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # No listener until something counts; then the engine made before and the one made
    # after both count their statements.
    assert seen == {"listening_before": False, "counted": 4}


async def test_a_counter_sees_only_its_own_statements(tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    try:
        first = counting()
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        assert event.contains(engine.sync_engine, "before_cursor_execute", _count_statement)
        second = counting()
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await conn.execute(sa.text("SELECT 2"))
        assert (first.count, second.count) == (1, 2)
    finally:
        await engine.dispose()
