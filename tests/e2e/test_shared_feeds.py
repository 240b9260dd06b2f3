"""Subscribers of one feed share its execution on a real server, and still each see exactly
what they would alone: the current state first, every change, nothing of another class."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.resolvers.ids import encode_id
from tests.conftest import Credentials
from tests.e2e.test_stock_feed import STOCK_FEED, STORE, _restock, _sell, _sellable_skus, _stock_of
from tests.wsclient import Session, session


async def _raw_next(ws: Session) -> dict[str, Any]:
    message = await ws.receive()
    assert message["type"] == "next", message
    return message


async def test_subscribers_of_one_feed_see_the_same_changes_and_late_ones_the_state(
    live_server: str, credentials: Credentials, engine: AsyncEngine
) -> None:
    covered, tracked = await _sellable_skus(engine)
    sku = encode_id("Sku", tracked[2])
    await _restock(live_server, credentials.manager_store_1, sku, 30)
    async with session(live_server) as first, session(live_server) as second:
        await first.subscribe(STOCK_FEED, {"storeId": STORE})
        await second.subscribe(STOCK_FEED, {"storeId": STORE})
        snapshots = [await first.take(covered), await second.take(covered)]
        assert snapshots[0] == snapshots[1]
        assert (await _sell(live_server, credentials.partner, sku, 3))["errors"] == []
        changes = [await _raw_next(first), await _raw_next(second)]
        # Same payload, each in its own envelope.
        assert changes[0]["payload"] == changes[1]["payload"]
        changed = changes[0]["payload"]["data"]["stockChanged"]
        assert changed["sku"]["id"] == sku
        assert changed["available"] == await _stock_of(live_server, sku)

        # A subscriber arriving now is sent the whole current state at once, the sale included.
        async with session(live_server) as late:
            await late.subscribe(STOCK_FEED, {"storeId": STORE})
            state = {
                m["stockChanged"]["sku"]["id"]: m["stockChanged"] for m in await late.take(covered)
            }
            assert len(state) == covered
            assert state[sku] == changed
            expected = {m["stockChanged"]["sku"]["id"]: m["stockChanged"] for m in snapshots[0]}
            expected[sku] = changed
            assert state == expected
            # And then the next change, like everyone else.
            assert (await _sell(live_server, credentials.partner, sku, 1))["errors"] == []
            after = [(await ws.next_data())["stockChanged"] for ws in (first, second, late)]
        assert after[0] == after[1] == after[2]
        assert after[0]["available"] == changed["available"] - 1
        assert after[0]["version"] == changed["version"] + 1


STORE_BOARD = """
subscription Board($storeId: ID!) {
  storeOrderFeed(storeId: $storeId) { id status }
}
"""


async def test_a_visitor_does_not_join_the_staffs_feed(
    live_server: str, credentials: Credentials
) -> None:
    token = credentials.manager_store_1["Authorization"]
    async with session(live_server, {"authorization": token}) as staff:
        staff_op = await staff.subscribe(STORE_BOARD, {"storeId": STORE})
        async with session(live_server) as visitor:
            await visitor.subscribe(STORE_BOARD, {"storeId": STORE})
            refused = await visitor.receive()
            # The same document and variables, but the visitor is refused, as alone.
            assert refused["type"] == "next", refused
            assert refused["payload"]["data"] is None
            assert refused["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert (await visitor.receive())["type"] == "complete"
        # The staff's feed goes on: up to the answer to a ping, only its own board.
        await staff.ws.send(json.dumps({"type": "ping"}))
        while True:
            message = json.loads(await asyncio.wait_for(staff.ws.recv(), 30))
            if message["type"] == "pong":
                break
            if message["type"] == "ping":
                continue
            assert message["type"] == "next" and message["id"] == staff_op, message
            assert "errors" not in message["payload"], message
