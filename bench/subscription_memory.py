"""Memory a long-lived subscription keeps per pushed event, with Strawberry's executor and
with ours (``dinegraph.schema.SubscriptionExecutor``), side by side in one run.

One subscription of a courier-update-like selection receives N events; tracemalloc counts
what is still allocated after the events have gone out (the subscription still open).
Prints one JSON line per executor.

    .venv/bin/python bench/subscription_memory.py --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from harness.report import emit
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from dinegraph.schema import SubscriptionExecutor

WARM_EVENTS = 100  # counted from here: the schema's and the stream's own allocations are done

SELECTION = """
subscription { courier { status etaSeconds version position { lat lng } courier { name phone } } }
"""


@strawberry.type
class Point:
    lat: float
    lng: float


@strawberry.type
class Courier:
    name: str
    phone: str


@strawberry.type
class Update:
    status: str
    eta_seconds: int
    version: int
    position: Point
    courier: Courier


@strawberry.type
class Query:
    ok: bool = True


def _schema(events: int, executor: type[StrawberryGraphQLCoreExecutionContext]) -> Any:
    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def courier(self) -> AsyncGenerator[Update, None]:
            for n in range(events):
                yield Update(
                    status="DELIVERING",
                    eta_seconds=600 - n % 600,
                    version=n,
                    position=Point(lat=22.5, lng=114.0 + n * 1e-6),
                    courier=Courier(name="张师傅", phone="138****0000"),
                )

    return strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=executor
    )


async def run(
    name: str, executor: type[StrawberryGraphQLCoreExecutionContext], events: int
) -> None:
    schema = _schema(events, executor)
    stream = await schema.subscribe(SELECTION)
    warm = WARM_EVENTS
    received = 0
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    baseline = 0
    retained = 0
    async for result in stream:
        assert result.data is not None
        received += 1
        if received == warm:
            gc.collect()
            baseline = tracemalloc.get_traced_memory()[0]
        if received == events:  # the last event: the subscription is still open
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - baseline
    seconds = time.perf_counter() - started
    tracemalloc.stop()
    emit(
        {
            "scenario": "subscription_memory",
            "executor": name,
            "events": received,
            "retained_bytes": retained,
            "retained_bytes_per_event": round(retained / (received - warm), 1),
            "events_per_s": round(received / seconds),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    if args.events <= WARM_EVENTS:
        parser.error(f"--events must be more than the {WARM_EVENTS} warm-up events")
    asyncio.run(run("strawberry", StrawberryGraphQLCoreExecutionContext, args.events))
    asyncio.run(run("dinegraph", SubscriptionExecutor, args.events))


if __name__ == "__main__":
    main()
