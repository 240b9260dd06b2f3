"""A subscription's memory does not grow with the events it pushes.

graphql-core 3.3 executes each event on a copy of the subscription's executor that shares
a memo keyed by per-event objects; ``SubscriptionExecutor`` gives each event its own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from dinegraph.schema import SubscriptionExecutor

EVENTS = 300


@strawberry.type
class Point:
    lat: float
    lng: float


@strawberry.type
class Move:
    version: int
    position: Point


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def moves(self) -> AsyncGenerator[Move, None]:
        for n in range(EVENTS):
            yield Move(version=n, position=Point(lat=22.5, lng=114.0 + n * 1e-5))


async def _memo_after_events(base: type[StrawberryGraphQLCoreExecutionContext]) -> int:
    made: list[Any] = []

    class Probe(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)  # the subscription's executor (events run on copies)

    schema = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=Probe
    )
    stream = await schema.subscribe("subscription { moves { version position { lat lng } } }")
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    seen = [result.data["moves"]["version"] async for result in stream if result.data]
    assert seen == list(range(EVENTS))
    (executor,) = made
    return len(executor._relevant_sub_fields)


async def test_strawberrys_own_executor_keeps_an_entry_per_event() -> None:
    # What the fix is for: without it the memo holds something for every push.
    assert await _memo_after_events(StrawberryGraphQLCoreExecutionContext) >= EVENTS


async def test_our_executor_keeps_nothing_per_event() -> None:
    assert await _memo_after_events(SubscriptionExecutor) == 0
