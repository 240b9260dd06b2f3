"""Calls out survive the server: `dinegraph serve` is killed (SIGKILL) after the commit that
dispatched a delivery and before 达达 took the order; restarted, it places it, once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import deliveries, outbound_calls, stores
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import PATIENCE_SECONDS, free_port, server_process
from tests.e2e.test_order_contract import _delivery_skus, _gql, _place_input
from tests.fakes.dada import FakeDada
from tests.shop import PAY, PLACE, new_member, next_noon

MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""


async def call_row(engine: AsyncEngine, key: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(outbound_calls).where(
                    outbound_calls.c.kind == "delivery.dispatch", outbound_calls.c.key == key
                )
            )
        ).one_or_none()


@pytest.fixture
def dada() -> Iterator[FakeDada]:
    with FakeDada().running() as fake:
        yield fake


@pytest.mark.parametrize(
    "placed_before_kill",
    [
        pytest.param(False, id="killed-before-dada-took-it"),
        pytest.param(True, id="killed-before-dada-answered"),
    ],
)
async def test_a_dispatch_killed_after_commit_is_made_after_restart_once(
    settings: Settings,
    engine: AsyncEngine,
    credentials: Credentials,
    dada: FakeDada,
    placed_before_kill: bool,
) -> None:
    port = free_port()
    env = {
        "DINEGRAPH_CLOCK_START": next_noon().isoformat(),
        "DINEGRAPH_DADA_BASE_URL": dada.url,
        "DINEGRAPH_DADA_APP_KEY": dada.app_key,
        "DINEGRAPH_DADA_APP_SECRET": dada.app_secret,
        "DINEGRAPH_DADA_SOURCE_ID": dada.source_id,
        "DINEGRAPH_DADA_TIMEOUT_SECONDS": "5",
        "DINEGRAPH_CALLS_TIMEOUT_SECONDS": "5",  # a lease of 11 s
        "DINEGRAPH_CALLS_SWEEP_SECONDS": "0.5",
    }
    staff = credentials.hq_admin
    _, member = await new_member(settings, engine)
    dada.hold_next_order(placed=placed_before_kill)
    with server_process(settings, port=port, **env) as (url, first):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            sku = (await _delivery_skus(client))[0]
            key = f"e2e-calls-{placed_before_kill}-{time.time_ns()}"
            placed = await _gql(client, PLACE, {"input": _place_input(sku, key)}, member)
            order = placed["placeOrder"]["order"]
            paid = await _gql(client, PAY, {"orderId": order["id"]}, member)
            assert paid["payOrder"]["errors"] == []
            for status in ("ACCEPTED", "PREPARING"):
                moved = await _gql(
                    client, MOVE, {"input": {"orderId": order["id"], "status": status}}, staff
                )
                assert moved["updateOrderStatus"]["errors"] == []
        order_id = decode_id(order["id"], "Order", ["id"])
        async with engine.begin() as conn:
            store_id = await conn.scalar(
                sa.text("SELECT store_id FROM orders WHERE id = :id"), {"id": order_id}
            )
            carrier = await conn.scalar(
                sa.select(stores.c.delivery_provider).where(stores.c.id == store_id)
            )
            await conn.execute(
                stores.update().where(stores.c.id == store_id).values(delivery_provider="DADA")
            )
        try:
            # READY dispatches: the commit records the call, then Dada holds the request.
            ready = threading.Thread(
                target=_post_quietly,
                args=(url, MOVE, {"input": {"orderId": order["id"], "status": "READY"}}, staff),
            )
            ready.start()
            assert await asyncio.to_thread(dada.held.wait, PATIENCE_SECONDS)
            first.kill()  # SIGKILL: no shutdown, no finally
            first.wait()
            ready.join()
            async with engine.connect() as conn:
                delivery = (
                    await conn.execute(
                        sa.select(deliveries).where(deliveries.c.order_id == order_id)
                    )
                ).one()
            origin = f"delivery-{delivery.id}"
            assert delivery.status == "PENDING" and delivery.provider == "DADA"
            row = await call_row(engine, origin)
            assert (row.status, row.attempts) == ("PENDING", 1)  # taken, never finished
            assert await asyncio.to_thread(dada.abandoned.wait, PATIENCE_SECONDS)
            assert dada.placed() == ([origin] if placed_before_kill else [])

            with server_process(settings, port=port, **env):
                # Once the dead process's lease has run out, the sweep takes the call up.
                deadline = time.monotonic() + PATIENCE_SECONDS
                while (await call_row(engine, origin)).status != "DONE":
                    assert time.monotonic() < deadline, "the call was not made after restart"
                    await asyncio.sleep(0.2)  # polling the database, not waiting a set time
            assert dada.placed() == [origin]
            sent = [p for p, o in dada.requests if o == origin and p.endswith("addOrder")]
            assert len(sent) == 2  # the one cut off, and the one after the restart
            row = await call_row(engine, origin)
            assert (row.status, row.attempts, row.payload) == ("DONE", 2, None)
        finally:
            async with engine.begin() as conn:
                await conn.execute(
                    stores.update().where(stores.c.id == store_id).values(delivery_provider=carrier)
                )


def _post_quietly(url: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> None:
    """A request whose server is killed while it waits: no answer is expected."""
    with suppress(httpx.HTTPError):
        httpx.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=PATIENCE_SECONDS,
        )
