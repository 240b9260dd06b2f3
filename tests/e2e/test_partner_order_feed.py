"""Orders from every channel on one board: a real server's storeOrderFeed shows a POS order
and a takeaway platform's order, recorded with a partner's key, beside a member's
mini-program order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import new_api_key
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import running_server
from tests.e2e.test_order_contract import ADDRESS, _delivery_skus, _gql
from tests.shop import PAY, PLACE, new_member, next_noon
from tests.wsclient import session

STORE = encode_id("Store", 1)
BOARD = """
subscription Board($storeId: ID!) {
  storeOrderFeed(storeId: $storeId) { id status source externalId note pickupAt }
}
"""
RECORD = """mutation($input: RecordPartnerOrderInput!) {
  recordPartnerOrder(input: $input) { order { id source } errors { code field } }
}"""


@pytest.fixture(scope="module")
def board_server(settings: Settings) -> Iterator[str]:
    """A real server at noon: every store is open for the member's order."""
    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        yield url


async def _partner(
    engine: AsyncEngine, scopes: list[str], store_ids: list[int] | None = None
) -> dict[str, str]:
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name=f"e2e partner {uuid.uuid4().hex[:6]}",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=scopes,
        store_ids=store_ids or [1],
    )
    return {"X-Api-Key": key.key}


def _partner_order(sku: str, source: str, fulfilment: str) -> dict[str, Any]:
    return {
        "input": {
            "storeId": STORE,
            "source": source,
            "externalId": f"{source}-{uuid.uuid4().hex[:10]}",
            "lines": [{"skuId": sku, "quantity": 1}],
            "fulfilment": fulfilment,
            "paidFen": 1800,
            "customerNote": f"{source} 的备注",
            "pickupAt": "2026-12-02T05:00:00+00:00",
        }
    }


async def test_orders_of_every_channel_appear_on_one_store_feed(
    board_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    till = await _partner(engine, ["orders:write"])
    platform = await _partner(engine, ["orders:write"])
    _, member = await new_member(settings, engine)
    staff = credentials.manager_store_1["Authorization"]
    async with (
        httpx.AsyncClient(base_url=board_server, timeout=30) as client,
        session(board_server, {"authorization": staff}) as board,
    ):
        await board.subscribe(BOARD, {"storeId": STORE})
        sku = (await _delivery_skus(client, "PICKUP"))[0]
        # A pickup at the store (delivery would be routed: a store busy with other tests'
        # orders may lose it to another).
        place = {
            "idempotencyKey": f"board-{uuid.uuid4().hex[:8]}",
            "channel": "PICKUP",
            "storeId": STORE,
            "lines": [{"skuId": sku, "quantity": 1}],
            "note": "小程序",
        }
        placed = (await _gql(client, PLACE, {"input": place}, member))["placeOrder"]
        assert placed["errors"] == []
        paid = await _gql(client, PAY, {"orderId": placed["order"]["id"]}, member)
        assert paid["payOrder"]["errors"] == []
        pos = (await _gql(client, RECORD, _partner_order(sku, "POS", "DINE_IN"), till))[
            "recordPartnerOrder"
        ]
        meituan = (
            await _gql(client, RECORD, _partner_order(sku, "MEITUAN", "DELIVERY"), platform)
        )["recordPartnerOrder"]
        assert pos["errors"] == meituan["errors"] == []
        wanted = {
            placed["order"]["id"]: "MINI_PROGRAM",
            pos["order"]["id"]: "POS",
            meituan["order"]["id"]: "MEITUAN",
        }
        seen: dict[str, dict[str, Any]] = {}
        while not wanted.keys() <= seen.keys():
            update = (await board.next_data())["storeOrderFeed"]
            seen[update["id"]] = update
        assert {i: seen[i]["source"] for i in wanted} == wanted
        assert {seen[i]["status"] for i in wanted} == {"PAID"}
        mt = seen[meituan["order"]["id"]]
        assert mt["externalId"].startswith("MEITUAN-")
        assert (mt["note"], mt["pickupAt"]) == ("MEITUAN 的备注", "2026-12-02T05:00:00+00:00")
        assert seen[placed["order"]["id"]]["externalId"] is None


ADDRESSED_BOARD = """
subscription Board($storeId: ID!) {
  storeOrderFeed(storeId: $storeId) { id source address { contactName contactPhone } }
}
"""


async def test_a_partner_reading_the_board_never_shares_the_staffs_feed(
    board_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    """The same document and variables: staff see the customer's contact, a partner with
    orders:read does not, so their feeds must not share one execution."""
    # Delivery is routed: a store busy with other tests' orders may lose the order to
    # another, so head office and a key for every demo store follow whichever takes it.
    async with engine.connect() as conn:
        stores = list((await conn.execute(sa.text("SELECT id FROM stores"))).scalars())
    reader = await _partner(engine, ["orders:read"], store_ids=stores)
    _, member = await new_member(settings, engine)
    staff = credentials.hq_admin["Authorization"]
    async with (
        httpx.AsyncClient(base_url=board_server, timeout=30) as client,
        session(board_server, {"authorization": staff}) as staff_ws,
        session(board_server, {"apiKey": reader["X-Api-Key"]}) as partner_ws,
    ):
        sku = (await _delivery_skus(client))[0]
        place = {
            "idempotencyKey": f"contact-{uuid.uuid4().hex[:8]}",
            "channel": "DELIVERY",
            "address": ADDRESS,
            "lines": [{"skuId": sku, "quantity": 1}],
        }
        placed = (await _gql(client, PLACE, {"input": place}, member))["placeOrder"]
        assert placed["errors"] == []
        paid = await _gql(client, PAY, {"orderId": placed["order"]["id"]}, member)
        assert paid["payOrder"]["errors"] == []
        order_id = placed["order"]["id"]
        store = placed["order"]["store"]["id"]
        # Paid before either subscribes: the newest open order, in both snapshots. Were
        # the feeds shared, the partner would be sent the staff's payloads.
        await staff_ws.subscribe(ADDRESSED_BOARD, {"storeId": store})
        await partner_ws.subscribe(ADDRESSED_BOARD, {"storeId": store})

        async def seen(ws: Any) -> dict[str, Any]:
            while True:
                update: dict[str, Any] = (await ws.next_data())["storeOrderFeed"]
                if update["id"] == order_id:
                    return update

        staff_view, partner_view = await seen(staff_ws), await seen(partner_ws)
        assert staff_view["address"]["contactPhone"] == ADDRESS["contactPhone"]
        assert partner_view == {**staff_view, "address": None}
