"""A burst: every attempt launched at once, at most N in flight, each one timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .cpu import CpuUsage, snapshot, usage
from .stats import ms

ERROR = "error"
Attempt = Callable[[int], Awaitable[tuple[str, str | None]]]
"""Attempt ``i``: (its outcome, a problem worth reporting or None)."""


@dataclass
class Burst:
    attempts: int = 0
    seconds: float = 0.0  # first launch to last answer
    # (completed at, seconds after the launch; latency in seconds; outcome)
    samples: list[tuple[float, float, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cpu: CpuUsage | None = None


async def burst(
    attempt: Attempt,
    attempts: int,
    concurrency: int,
    *,
    server_pid: int | None = None,
    postgres: bool = False,
    error: str = ERROR,
) -> Burst:
    """Launch every attempt at once (an asyncio.Semaphore lets ``concurrency`` through);
    latency runs from passing the semaphore to the answer. An attempt that raises counts
    as ``error``. CPU is measured over the burst: this process, the server, PostgreSQL."""
    run = Burst(attempts=attempts)
    gate = asyncio.Semaphore(concurrency)
    start = 0.0

    async def one(i: int) -> None:
        async with gate:
            sent = time.perf_counter()
            try:
                outcome, problem = await attempt(i)
            except Exception as exc:  # a dead connection, a timeout, a database error
                outcome, problem = error, f"{type(exc).__name__}: {exc}"
            done = time.perf_counter()
            run.samples.append((done - start, done - sent, outcome))
            if problem is not None:
                run.problems.append(f"{problem} (after {ms(done - sent)} ms)")
            # Let a task woken by a connection just given back take it (asyncio is not fair).
            await asyncio.sleep(0)

    pids = [server_pid] if server_pid else []
    before = snapshot(pids, ("postgres",) if postgres else ())
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(attempts)))
    run.seconds = time.perf_counter() - start
    run.cpu = usage(before, snapshot(pids, ("postgres",) if postgres else ()))
    return run
