"""`dinegraph simulate --minutes M` ends within M minutes and its grace time."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from dinegraph.simulate import Credentials, Pace, Simulation


class _Endless(Simulation):
    """Trips that never arrive: a courier who rides on past the end of the run."""

    async def _stores(self) -> list[dict[str, Any]]:
        return [{"name": "测试店"}]

    async def _trip(self, store: dict[str, Any]) -> None:
        self.trips += 1
        await asyncio.sleep(3600)


async def _no_member() -> str:
    return ""


async def test_a_run_abandons_trips_still_riding_after_its_grace_time() -> None:
    lines: list[str] = []
    pace = Pace(
        orders_per_minute=0.1,  # one order every 10 minutes: the gap is cut at the deadline
        duration=timedelta(seconds=0.6),
        speed_kmh=20,
        report_every=1,
        cook_seconds=0,
        grace=timedelta(seconds=0.5),
    )
    simulation = _Endless("http://127.0.0.1:9", Credentials(_no_member, "", {}), pace, lines.append)
    started = time.monotonic()
    await asyncio.wait_for(simulation.run(), timeout=10)
    assert time.monotonic() - started < 3
    assert lines[0] == "no new orders; 1 trips under way get 0.5 s to finish"
    assert lines[1].startswith("abandoned 1 trips still under way after the grace time")
    assert lines[-1] == "done: 1 orders placed, 0 delivered"
