"""Shared feeds: one execution per event for every subscriber of a key, each subscriber
holding only the newest unsent payload per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest
from graphql import GraphQLError
from strawberry.types.execution import ExecutionResult, PreExecutionError

from dinegraph.context import Context, FeedSlot
from dinegraph.domain.identity import (
    ANONYMOUS,
    MemberViewer,
    StaffRole,
    StaffViewer,
    viewer_class,
)
from dinegraph.i18n import Locale
from dinegraph.shared_feeds import Finished, Member, SharedFeeds, share_key, shared_field


@dataclass
class FakeContext:
    viewer: Any = ANONYMOUS
    locale: Locale = Locale.ZH
    feed_slot: FeedSlot | None = None


@dataclass
class Source:
    """A feed's source: values pushed by the test, each with its slot; counts executions."""

    queue: asyncio.Queue[tuple[FeedSlot | None, dict[str, Any]] | None] = field(
        default_factory=asyncio.Queue
    )
    opened: int = 0
    executed: int = 0
    closed: bool = False

    async def stream(self, context: Context) -> AsyncGenerator[ExecutionResult, None]:
        self.opened += 1
        return self._results(context)

    async def _results(self, context: Context) -> AsyncGenerator[ExecutionResult, None]:
        try:
            while (item := await self.queue.get()) is not None:
                slot, data = item
                context.feed_slot = slot
                self.executed += 1
                yield ExecutionResult(data=data, errors=None)
        finally:
            self.closed = True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def context(**kwargs: Any) -> Context:
    return cast(Context, FakeContext(**kwargs))


def ctx(**kwargs: Any) -> Callable[[], Context]:
    return lambda: context(**kwargs)


async def drain(member: Member) -> tuple[list[Any], Finished | None]:
    payloads, end = await asyncio.wait_for(member.take(), 2)
    return [orjson.loads(p) for p in payloads], end


async def test_every_subscriber_of_a_key_gets_one_execution_encoded_once() -> None:
    feeds, source = SharedFeeds(), Source()
    members = [feeds.join("key", ctx(), source.stream) for _ in range(3)]
    await source.queue.put((FeedSlot(1), {"stock": 5}))
    await settle()
    answers = [await asyncio.wait_for(m.take(), 2) for m in members]
    assert source.opened == 1 and source.executed == 1
    assert len(feeds) == 1
    payloads = [a[0] for a in answers]
    assert payloads[0] == ['{"data":{"stock":5}}']
    # The very same text object for everyone: encoded once, not once per subscriber.
    assert all(p[0] is payloads[0][0] for p in payloads)


async def test_a_late_subscriber_is_sent_the_current_state_first() -> None:
    feeds, source = SharedFeeds(), Source()
    first = feeds.join("key", ctx(), source.stream)
    await source.queue.put((FeedSlot(1), {"sku": 1, "n": 5}))
    await source.queue.put((FeedSlot(2), {"sku": 2, "n": 7}))
    await source.queue.put((FeedSlot(1), {"sku": 1, "n": 4}))
    await source.queue.put((FeedSlot(3, retained=False), {"sku": 3, "gone": True}))
    await settle()
    assert (await drain(first))[0] == [
        {"data": {"sku": 1, "n": 4}},
        {"data": {"sku": 2, "n": 7}},
        {"data": {"sku": 3, "gone": True}},
    ]
    late = feeds.join("key", ctx(), source.stream)
    # The newest of each slot still in the state, not the history; not what left it.
    assert (await drain(late))[0] == [{"data": {"sku": 2, "n": 7}}, {"data": {"sku": 1, "n": 4}}]
    assert source.opened == 1


async def test_a_slow_subscriber_gets_the_newest_value_per_slot_not_a_queue() -> None:
    feeds, source = SharedFeeds(), Source()
    slow = feeds.join("key", ctx(), source.stream)
    for n in range(100):
        await source.queue.put((FeedSlot(n % 2), {"slot": n % 2, "n": n}))
    await settle()
    await asyncio.sleep(0.05)
    payloads, end = await drain(slow)
    assert end is None
    assert payloads == [{"data": {"slot": 0, "n": 98}}, {"data": {"slot": 1, "n": 99}}]


async def test_the_last_subscriber_leaving_stops_the_execution() -> None:
    feeds, source = SharedFeeds(), Source()
    a = feeds.join("key", ctx(), source.stream)
    b = feeds.join("key", ctx(), source.stream)
    await settle()
    feeds.leave(a)
    await settle()
    assert not source.closed and len(feeds) == 1
    feeds.leave(b)
    await settle()
    assert source.closed and len(feeds) == 0
    # A new subscriber starts a new execution.
    again = feeds.join("key", ctx(), source.stream)
    await settle()
    assert source.opened == 2
    feeds.leave(again)


async def test_a_feed_that_ends_tells_everyone_and_takes_no_late_joiners() -> None:
    feeds, source = SharedFeeds(), Source()
    members = [feeds.join("key", ctx(), source.stream) for _ in range(2)]
    await source.queue.put((None, {"refused": True}))
    await source.queue.put(None)
    await settle()
    for member in members:
        payloads, end = await drain(member)
        assert payloads == [{"data": {"refused": True}}]
        assert end == Finished()
    assert len(feeds) == 0
    late = feeds.join("key", ctx(), source.stream)
    await settle()
    assert source.opened == 2
    feeds.leave(late)


async def test_errors_before_execution_reach_every_subscriber() -> None:
    async def invalid(_context: Context) -> AsyncGenerator[ExecutionResult, None]:
        async def results() -> AsyncGenerator[ExecutionResult, None]:
            yield PreExecutionError(data=None, errors=[GraphQLError("Variable '$s' is bad")])

        return results()

    feeds = SharedFeeds()
    members = [feeds.join("key", ctx(), invalid) for _ in range(2)]
    for member in members:
        payloads, end = await drain(member)
        assert payloads == []
        assert end is not None and end.errors is not None
        assert [e.message for e in end.errors] == ["Variable '$s' is bad"]


STOCK = "subscription S($s: ID!) { stockChanged(storeId: $s) { available } }"


@pytest.mark.parametrize(
    ("query", "name", "shared"),
    [
        (STOCK, None, "stockChanged"),
        (STOCK, "S", "stockChanged"),
        (STOCK, "Other", None),
        ("subscription { orderUpdates(orderId: 1) { id } }", None, "orderUpdates"),
        ("subscription { lowStockAlerts(storeIds: [1]) { available } }", None, None),
        ("query { stores { id } }", None, None),
        ("subscription { a: stockChanged(storeId: 1) { version } }", None, "stockChanged"),
        (
            "subscription($x: Boolean!) { stockChanged(storeId: 1) @include(if: $x) { version } }",
            None,
            None,
        ),
        (
            "subscription { ...F } fragment F on Subscription { stockChanged(storeId: 1) { v } }",
            None,
            None,
        ),
        ("subscription {", None, None),
    ],
)
def test_which_documents_share(query: str, name: str | None, shared: str | None) -> None:
    assert shared_field(query, name) == shared


def test_the_key_separates_what_can_differ() -> None:
    staff = StaffViewer(1, "a", StaffRole.STORE_MANAGER, frozenset({1}))
    other_staff = StaffViewer(2, "b", StaffRole.STORE_MANAGER, frozenset({1}))
    orders = "subscription($o: ID!) { orderUpdates(orderId: $o) { status } }"

    def key(query: str, variables: dict[str, object], **kwargs: Any) -> object:
        return share_key(query, None, variables, context(**kwargs))

    # Stock is public: members and visitors share; staff (who see unlisted SKUs) do not.
    assert key(STOCK, {"s": "1"}) == key(STOCK, {"s": "1"}, viewer=MemberViewer(7))
    assert key(STOCK, {"s": "1"}) != key(STOCK, {"s": "1"}, viewer=staff)
    assert key(STOCK, {"s": "1"}) != key(STOCK, {"s": "2"})
    assert key(STOCK, {"s": "1"}) != key(STOCK, {"s": "1"}, locale=Locale.EN)
    # An order: each member is their own class; staff of the same role and stores share.
    assert key(orders, {"o": "1"}, viewer=MemberViewer(7)) != key(
        orders, {"o": "1"}, viewer=MemberViewer(8)
    )
    assert key(orders, {"o": "1"}, viewer=staff) == key(orders, {"o": "1"}, viewer=other_staff)
    assert key(orders, {"o": "1"}, viewer=staff) != key(orders, {"o": "1"})
    # Variables compare by value, not by the order their keys came in.
    two = "subscription($s: ID!, $k: [ID!]) { stockChanged(storeId: $s, skuIds: $k) { v } }"
    assert key(two, {"s": "1", "k": ["2"]}) == key(two, {"k": ["2"], "s": "1"})


def test_viewer_classes() -> None:
    assert viewer_class(MemberViewer(1)) != viewer_class(MemberViewer(2))
    assert viewer_class(ANONYMOUS) != viewer_class(MemberViewer(1))
    a = StaffViewer(1, "a", StaffRole.STORE_MANAGER, frozenset({1}))
    assert viewer_class(a) != viewer_class(StaffViewer(1, "a", StaffRole.HQ_ADMIN, frozenset({1})))
    assert viewer_class(a) != viewer_class(
        StaffViewer(1, "a", StaffRole.STORE_MANAGER, frozenset({2}))
    )
