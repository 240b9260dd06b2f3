"""API keys' last use: noted at most once a minute per key, written in batches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dinegraph.key_use import KeyUse

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_busy_key_is_written_once_a_minute() -> None:
    clock = Clock()
    use = KeyUse(every_seconds=60, clock=clock)
    written: list[tuple[set[int], datetime]] = []

    async def write(ids: set[int], at: datetime) -> None:
        written.append((ids, at))

    for _ in range(1000):
        use.used(7)
    use.used(8)
    await use.write_once(write, lambda: NOW)
    assert written == [({7, 8}, NOW)]
    clock.now += 59
    use.used(7)
    await use.write_once(write, lambda: NOW)
    assert len(written) == 1  # nothing noted within the minute: no write at all
    clock.now += 1
    use.used(7)
    await use.write_once(write, lambda: NOW)
    assert written[-1] == ({7}, NOW)


async def test_a_failed_write_is_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    use = KeyUse(every_seconds=60, clock=Clock())
    calls: list[set[int]] = []

    async def flaky(ids: set[int], at: datetime) -> None:
        calls.append(ids)
        if len(calls) == 1:
            raise ConnectionError("database away")

    use.used(3)
    await use.write_once(flaky, lambda: NOW)
    await use.write_once(flaky, lambda: NOW)
    assert calls == [{3}, {3}]
    assert "last use failed" in caplog.text
