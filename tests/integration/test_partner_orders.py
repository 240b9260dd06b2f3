"""Orders from the till and the takeaway platforms: recorded once, on the store's board,
selling stock in the one ledger, and read by partners with orders:read."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import new_api_key
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_stock_concurrency import new_tracked_skus

STORE_1 = encode_id("Store", 1)
STORE_2 = encode_id("Store", 2)
ORDER_FIELDS = """id status source externalId note pickupCode pickupAt tableNo cancelReason
  channel total { fen } lines { quantity note sku { id } } address { contactPhone }"""
RECORD = f"""mutation($input: RecordPartnerOrderInput!) {{
  recordPartnerOrder(input: $input) {{
    replayed order {{ {ORDER_FIELDS} }} errors {{ code field }}
  }}
}}"""
CANCEL = f"""mutation($input: CancelPartnerOrderInput!) {{
  cancelPartnerOrder(input: $input) {{ order {{ {ORDER_FIELDS} }} errors {{ code field }} }}
}}"""
MOVE = """mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}"""
BOARD = f"""query($store: ID!, $source: [OrderChannel!]) {{
  storeOrders(storeId: $store, source: $source, first: 50) {{
    edges {{ node {{ {ORDER_FIELDS} }} }}
  }}
}}"""
ORDER = f"""query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"""
LEVEL = """query($store: ID!, $sku: ID!) {
  stockLedger(storeId: $store, skuId: $sku, first: 50) {
    edges { node { kind source delta balanceAfter } }
  }
}"""


async def _key(engine: AsyncEngine, scopes: list[str], stores: list[int]) -> dict[str, str]:
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name=f"partner {uuid.uuid4().hex[:6]}",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=scopes,
        store_ids=stores,
    )
    return {"X-Api-Key": key.key}


@pytest.fixture(scope="module")
async def writer(engine: AsyncEngine) -> dict[str, str]:
    return await _key(engine, ["orders:write"], [1])


def _order(sku: str, quantity: int, source: str = "MEITUAN", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "storeId": STORE_1,
        "source": source,
        "externalId": extra.pop("externalId", f"{source}-{uuid.uuid4().hex[:12]}"),
        "lines": [{"skuId": sku, "quantity": quantity, "note": "不要香菜"}],
        "fulfilment": "DELIVERY",
        "paidFen": 2990 * quantity,
        "customerNote": "放门口",
        "pickupCode": "#17",
        "pickupAt": "2026-12-02T04:30:00+00:00",
    }
    body.update(extra)
    return {"input": body}


async def _ledger(gql: GraphQLClient, creds: Credentials, sku: str) -> list[dict[str, Any]]:
    body = await gql.execute(LEVEL, {"store": STORE_1, "sku": sku}, creds.manager_store_1)
    return [e["node"] for e in body["data"]["stockLedger"]["edges"]]


async def _balance(gql: GraphQLClient, creds: Credentials, sku: str) -> int:
    rows = await _ledger(gql, creds, sku)
    return int(rows[0]["balanceAfter"])


async def test_a_platform_order_lands_on_the_board_with_its_stock_sold(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    body = await gql.execute(RECORD, _order(sku, 3), writer)
    payload = body["data"]["recordPartnerOrder"]
    assert payload["errors"] == []
    order = payload["order"]
    assert (order["status"], order["source"], order["channel"]) == ("PAID", "MEITUAN", "DELIVERY")
    assert (order["note"], order["pickupCode"], order["total"]["fen"]) == ("放门口", "#17", 8970)
    assert order["lines"][0]["note"] == "不要香菜"
    assert await _balance(gql, credentials, sku) == 7
    board = await gql.execute(
        BOARD, {"store": STORE_1, "source": ["MEITUAN"]}, credentials.manager_store_1
    )
    nodes = [e["node"] for e in board["data"]["storeOrders"]["edges"]]
    assert order["id"] in [n["id"] for n in nodes]
    assert {n["source"] for n in nodes} == {"MEITUAN"}
    mini = await gql.execute(
        BOARD, {"store": STORE_1, "source": ["MINI_PROGRAM"]}, credentials.manager_store_1
    )
    assert order["id"] not in [e["node"]["id"] for e in mini["data"]["storeOrders"]["edges"]]


async def test_the_same_external_order_twice_is_one_order_and_one_sale(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    request = _order(sku, 2)
    first = (await gql.execute(RECORD, request, writer))["data"]["recordPartnerOrder"]
    again = (await gql.execute(RECORD, request, writer))["data"]["recordPartnerOrder"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert first["order"]["id"] == again["order"]["id"]
    assert await _balance(gql, credentials, sku) == 8
    assert [r["kind"] for r in await _ledger(gql, credentials, sku)] == ["SALE", "RESTOCK"]


async def test_racing_duplicates_make_one_order_and_one_stock_movement(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=20)
    request = _order(sku, 1, source="ELEME")
    bodies = await asyncio.gather(*(gql.execute(RECORD, request, writer) for _ in range(6)))
    payloads = [b["data"]["recordPartnerOrder"] for b in bodies]
    assert all(p["errors"] == [] for p in payloads)
    assert len({p["order"]["id"] for p in payloads}) == 1
    assert sorted(p["replayed"] for p in payloads) == [False] + [True] * 5
    assert [r["delta"] for r in await _ledger(gql, credentials, sku)] == [-1, 20]


async def test_a_retry_with_another_body_is_refused_and_changes_nothing(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    request = _order(sku, 2)
    await gql.execute(RECORD, request, writer)
    request["input"]["lines"][0]["quantity"] = 5
    body = await gql.execute(RECORD, request, writer)
    payload = body["data"]["recordPartnerOrder"]
    assert payload["order"] is None
    assert payload["errors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": ["externalId"]}]
    assert await _balance(gql, credentials, sku) == 8


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (
            {"lines": [{"skuId": encode_id("Sku", 999_999), "quantity": 1}]},
            "NOT_FOUND",
            ["lines", "0", "skuId"],
        ),
        ({"lines": [{"skuId": "SKU", "quantity": 0}]}, "OUT_OF_RANGE", ["lines", "0", "quantity"]),
        (
            {"lines": [{"skuId": "SKU", "quantity": 10_000}]},
            "OUT_OF_RANGE",
            ["lines", "0", "quantity"],
        ),
        ({"lines": []}, "REQUIRED", ["lines"]),
        ({"storeId": STORE_2}, "FORBIDDEN", ["storeId"]),
        ({"source": "MINI_PROGRAM"}, "INVALID_INPUT", ["source"]),
        ({"externalId": "  "}, "REQUIRED", ["externalId"]),
        ({"paidFen": -1}, "OUT_OF_RANGE", ["paidFen"]),
        ({"fulfilment": "RETAIL"}, "INVALID_INPUT", ["fulfilment"]),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    gql: GraphQLClient,
    credentials: Credentials,
    writer: dict[str, str],
    change: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    request = _order(sku, 1)
    for line in change.get("lines", []):
        if line["skuId"] == "SKU":
            line["skuId"] = sku
    request["input"].update(change)
    body = await gql.execute(RECORD, request, writer)
    payload = body["data"]["recordPartnerOrder"]
    assert payload["order"] is None
    assert payload["errors"] == [{"code": code, "field": field}]
    assert await _balance(gql, credentials, sku) == 10
    ext = request["input"]["externalId"]
    again = await gql.execute(CANCEL, {"input": {"source": "MEITUAN", "externalId": ext}}, writer)
    assert again["data"]["cancelPartnerOrder"]["errors"][0]["code"] in {"NOT_FOUND", "REQUIRED"}


async def test_a_platform_order_takes_the_shelf_to_zero_and_a_till_order_is_refused(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=2)
    till = await gql.execute(RECORD, _order(sku, 3, source="POS"), writer)
    assert till["data"]["recordPartnerOrder"]["errors"] == [
        {"code": "OUT_OF_STOCK", "field": ["lines", "0", "quantity"]}
    ]
    assert await _balance(gql, credentials, sku) == 2
    platform = await gql.execute(RECORD, _order(sku, 3, source="DOUYIN"), writer)
    payload = platform["data"]["recordPartnerOrder"]
    assert payload["errors"] == []
    assert payload["order"]["lines"][0]["quantity"] == 3
    assert await _balance(gql, credentials, sku) == 0


async def test_staff_move_it_through_the_kitchen_and_a_cancel_gives_stock_back(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    order = (await gql.execute(RECORD, _order(sku, 4, source="POS", fulfilment="PICKUP"), writer))[
        "data"
    ]["recordPartnerOrder"]["order"]
    for status in ("ACCEPTED", "PREPARING", "READY", "COMPLETED"):
        moved = await gql.execute(
            MOVE, {"input": {"orderId": order["id"], "status": status}}, credentials.manager_store_1
        )
        assert moved["data"]["updateOrderStatus"] == {"order": {"status": status}, "errors": []}
    late = await gql.execute(
        CANCEL, {"input": {"source": "POS", "externalId": order["externalId"]}}, writer
    )
    assert late["data"]["cancelPartnerOrder"]["errors"] == [
        {"code": "INVALID_TRANSITION", "field": ["status"]}
    ]
    assert await _balance(gql, credentials, sku) == 6

    other = (await gql.execute(RECORD, _order(sku, 5), writer))["data"]["recordPartnerOrder"]
    accepted = await gql.execute(
        MOVE,
        {"input": {"orderId": other["order"]["id"], "status": "ACCEPTED"}},
        credentials.manager_store_1,
    )
    assert accepted["data"]["updateOrderStatus"]["errors"] == []
    assert await _balance(gql, credentials, sku) == 1
    cancel = {
        "input": {
            "source": "MEITUAN",
            "externalId": other["order"]["externalId"],
            "reason": "顾客取消",
        }
    }
    for _ in range(2):  # the platform may tell us twice
        body = await gql.execute(CANCEL, cancel, writer)
        payload = body["data"]["cancelPartnerOrder"]
        assert payload["errors"] == []
        assert (payload["order"]["status"], payload["order"]["cancelReason"]) == (
            "CANCELLED",
            "顾客取消",
        )
    assert await _balance(gql, credentials, sku) == 6
    kinds = [r["kind"] for r in await _ledger(gql, credentials, sku)]
    assert kinds[:2] == ["RELEASE", "SALE"]
    assert kinds.count("RELEASE") == 1


async def test_partners_read_orders_of_their_stores_with_orders_read_only(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str], engine: AsyncEngine
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    order = (await gql.execute(RECORD, _order(sku, 1), writer))["data"]["recordPartnerOrder"][
        "order"
    ]
    reader = await _key(engine, ["orders:read"], [1])
    elsewhere = await _key(engine, ["orders:read"], [2])
    board = await gql.execute(BOARD, {"store": STORE_1}, reader)
    ids = [e["node"]["id"] for e in board["data"]["storeOrders"]["edges"]]
    assert order["id"] in ids
    # Member orders on the board show no personal data to a partner.
    assert all(e["node"]["address"] is None for e in board["data"]["storeOrders"]["edges"])
    found = await gql.execute(ORDER, {"id": order["id"]}, reader)
    assert found["data"]["order"]["externalId"] == order["externalId"]
    for refused in (elsewhere, writer, credentials.partner):
        body = await gql.execute(BOARD, {"store": STORE_1}, refused)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await gql.execute(ORDER, {"id": order["id"]}, refused))["data"]["order"] is None
    stock_only = await gql.execute(RECORD, _order(sku, 1), credentials.partner)
    assert stock_only["data"]["recordPartnerOrder"]["errors"] == [
        {"code": "FORBIDDEN", "field": None}
    ]


REFUND = """mutation($input: RefundOrderInput!) {
  refundOrder(input: $input) { order { status } errors { code } }
}"""


async def test_staff_rejecting_a_partners_order_give_its_stock_back_and_refund_nothing(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    order = (await gql.execute(RECORD, _order(sku, 3, source="POS"), writer))["data"][
        "recordPartnerOrder"
    ]["order"]
    refund = {"input": {"orderId": order["id"], "reason": "退款", "idempotencyKey": "r-1"}}
    refused = await gql.execute(REFUND, refund, credentials.manager_store_1)
    assert refused["data"]["refundOrder"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    assert await _balance(gql, credentials, sku) == 7
    rejected = await gql.execute(
        MOVE,
        {"input": {"orderId": order["id"], "status": "CANCELLED"}},
        credentials.manager_store_1,
    )
    assert rejected["data"]["updateOrderStatus"] == {"order": {"status": "CANCELLED"}, "errors": []}
    assert await _balance(gql, credentials, sku) == 10
    found = await gql.execute(ORDER, {"id": order["id"]}, credentials.manager_store_1)
    assert found["data"]["order"]["status"] == "CANCELLED"


async def test_platform_orders_racing_a_till_for_the_last_units_are_all_recorded(
    gql: GraphQLClient, credentials: Credentials, writer: dict[str, str]
) -> None:
    """The shelf never goes below zero, every platform order is kept, and the ledger adds
    up, however the sales interleave."""
    (sku,) = await new_tracked_skus(gql, credentials, stock=5)
    requests = [_order(sku, 2, source="MEITUAN") for _ in range(4)]
    requests.append(_order(sku, 3, source="POS", fulfilment="DINE_IN"))
    bodies = await asyncio.gather(*(gql.execute(RECORD, r, writer) for r in requests))
    payloads = [b["data"]["recordPartnerOrder"] for b in bodies]
    assert all(p["errors"] == [] for p in payloads[:4])
    till = payloads[4]["errors"]
    assert till in ([], [{"code": "OUT_OF_STOCK", "field": ["lines", "0", "quantity"]}])
    rows = await _ledger(gql, credentials, sku)
    assert rows[0]["balanceAfter"] == sum(r["delta"] for r in rows) == 0
    sold = -sum(r["delta"] for r in rows if r["kind"] == "SALE")
    assert sold == 5
    assert sum(r["source"] == "POS" for r in rows) == (0 if till else 1)
