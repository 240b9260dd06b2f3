"""Staff stock operations, the ledger, and who may touch a store's stock."""

from __future__ import annotations

from typing import Any

import pytest

from dinegraph.resolvers.ids import encode_id
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_stock_concurrency import RECORD_SALE, RESTOCK, new_tracked_skus, sale

STORE_1 = encode_id("Store", 1)
STORE_2 = encode_id("Store", 2)
LEDGER = """query($store: ID!, $sku: ID, $first: Int, $after: String) {
  stockLedger(storeId: $store, skuId: $sku, first: $first, after: $after) {
    edges { cursor node { kind source reference reason delta balanceAfter sku { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
ADJUST = """mutation($input: AdjustStockInput!) {
  adjustStock(input: $input) { movement { id reason lines { quantity } } errors { code field } }
}"""
SOLD_OUT = """mutation($input: SetSoldOutInput!) {
  setSoldOut(input: $input) { stock { soldOut available version sku { id } } errors { code field } }
}"""


async def _ledger(gql: GraphQLClient, headers: dict[str, str], sku: str) -> list[dict[str, Any]]:
    body = await gql.execute(LEDGER, {"store": STORE_1, "sku": sku, "first": 100}, headers)
    return [e["node"] for e in body["data"]["stockLedger"]["edges"]]


async def test_the_ledger_records_every_change_newest_first(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=20)
    sold = await gql.execute(RECORD_SALE, sale([(sku, 3)], f"ledger-{sku}"), credentials.partner)
    assert sold["data"]["recordSale"]["errors"] == []
    adjusted = await gql.execute(
        ADJUST,
        {
            "input": {
                "storeId": STORE_1,
                "skuId": sku,
                "delta": -2,
                "reason": "摔碎两盒",
                "reference": f"adj-{sku}",
            }
        },
        credentials.manager_store_1,
    )
    assert adjusted["data"]["adjustStock"]["errors"] == []
    rows = await _ledger(gql, credentials.manager_store_1, sku)
    assert [(r["kind"], r["source"], r["delta"], r["balanceAfter"]) for r in rows] == [
        ("ADJUSTMENT", "ADJUSTMENT", -2, 15),
        ("SALE", "POS", -3, 17),
        ("RESTOCK", "RESTOCK", 20, 20),
    ]
    assert rows[0]["reason"] == "摔碎两盒"
    assert sum(r["delta"] for r in rows) == rows[0]["balanceAfter"]


async def test_the_ledger_pages_with_cursors(gql: GraphQLClient, credentials: Credentials) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=10)
    for i in range(5):
        await gql.execute(RECORD_SALE, sale([(sku, 1)], f"page-{sku}-{i}"), credentials.partner)
    seen: list[int] = []
    after = None
    while True:
        body = await gql.execute(
            LEDGER, {"store": STORE_1, "sku": sku, "first": 2, "after": after}, credentials.hq_admin
        )
        page = body["data"]["stockLedger"]
        seen += [e["node"]["balanceAfter"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [5, 6, 7, 8, 9, 10]


async def test_restocking_twice_with_one_reference_adds_once(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=1)
    variables = {"input": {"storeId": STORE_1, "skuId": sku, "quantity": 4, "reference": "DN-1"}}
    first = await gql.execute(RESTOCK, variables, credentials.manager_store_1)
    again = await gql.execute(RESTOCK, variables, credentials.manager_store_1)
    assert first["data"]["restock"] == again["data"]["restock"]
    rows = await _ledger(gql, credentials.manager_store_1, sku)
    assert rows[0]["balanceAfter"] == 5
    other = {"input": {**variables["input"], "quantity": 9}}
    reused = await gql.execute(RESTOCK, other, credentials.manager_store_1)
    assert reused["data"]["restock"]["errors"] == [
        {"code": "IDEMPOTENCY_KEY_REUSED", "field": ["reference"]}
    ]


async def test_adjustments_cannot_take_stock_below_zero(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=2)
    body = await gql.execute(
        ADJUST,
        {
            "input": {
                "storeId": STORE_1,
                "skuId": sku,
                "delta": -3,
                "reason": "盘点",
                "reference": "c1",
            }
        },
        credentials.manager_store_1,
    )
    assert body["data"]["adjustStock"]["errors"] == [
        {"code": "OUT_OF_STOCK", "field": ["quantity"]}
    ]


async def test_sold_out_marks_made_to_order_dishes_only(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    dish = encode_id("Sku", 1)  # a made-to-order dish in the demo chain
    marked = await gql.execute(
        SOLD_OUT,
        {"input": {"storeId": STORE_1, "skuId": dish, "soldOut": True}},
        credentials.manager_store_1,
    )
    stock = marked["data"]["setSoldOut"]["stock"]
    assert (stock["soldOut"], stock["available"], stock["sku"]["id"]) == (True, None, dish)
    refused = await gql.execute(
        RECORD_SALE,
        sale([(dish, 1)], f"sold-out-{stock['version']}"),
        credentials.partner,
    )
    assert refused["data"]["recordSale"]["errors"][0]["code"] == "SOLD_OUT"
    back = await gql.execute(
        SOLD_OUT,
        {"input": {"storeId": STORE_1, "skuId": dish, "soldOut": False}},
        credentials.manager_store_1,
    )
    assert back["data"]["setSoldOut"]["stock"]["version"] == stock["version"] + 1
    (tracked,) = await new_tracked_skus(gql, credentials, stock=1)
    wrong = await gql.execute(
        SOLD_OUT,
        {"input": {"storeId": STORE_1, "skuId": tracked, "soldOut": True}},
        credentials.manager_store_1,
    )
    assert wrong["data"]["setSoldOut"]["errors"] == [{"code": "TRACKED", "field": ["skuId"]}]


@pytest.mark.parametrize(
    ("who", "store", "code"),
    [
        (None, STORE_1, "UNAUTHENTICATED"),
        ("member", STORE_1, "FORBIDDEN"),
        ("partner", STORE_2, "FORBIDDEN"),  # the key covers store 1 only
        ("manager_store_1", STORE_2, "FORBIDDEN"),
        ("operator", STORE_1, "FORBIDDEN"),
    ],
)
async def test_stock_writes_are_refused_outside_ones_stores(
    gql: GraphQLClient, credentials: Credentials, who: str | None, store: str, code: str
) -> None:
    headers = getattr(credentials, who) if who else None
    sku = encode_id("Sku", 130)
    variables = {
        "input": {
            "storeId": store,
            "source": "POS",
            "externalOrderId": f"x-{who}",
            "lines": [{"skuId": sku, "quantity": 1}],
        }
    }
    body = await gql.execute(RECORD_SALE, variables, headers)
    assert body["data"]["recordSale"]["errors"][0]["code"] == code
    ledger = await gql.execute(LEDGER, {"store": store}, headers)
    assert ledger["errors"][0]["extensions"]["code"] == code


async def test_partner_keys_need_the_stock_write_scope(gql: GraphQLClient, engine: object) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dinegraph.db import identity as identity_db
    from dinegraph.security import new_api_key

    assert isinstance(engine, AsyncEngine)
    key = new_api_key()
    await identity_db.insert_api_key(
        engine,
        name="只读",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=["stock:read"],
        store_ids=None,
    )
    body = await gql.execute(
        RECORD_SALE,
        sale([(encode_id("Sku", 130), 1)], "read-only"),
        {"X-Api-Key": key.key},
    )
    assert body["data"]["recordSale"]["errors"][0]["code"] == "FORBIDDEN"
    ledger = await gql.execute(LEDGER, {"store": STORE_2, "first": 1}, {"X-Api-Key": key.key})
    assert "errors" not in ledger


async def test_low_stock_threshold_is_per_store_and_sku(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=9)
    query = """mutation($input: SetLowStockThresholdInput!) { setLowStockThreshold(input: $input) {
        stock { lowStockThreshold available } errors { code field } } }"""
    body = await gql.execute(
        query,
        {"input": {"storeId": STORE_1, "skuId": sku, "threshold": 8}},
        credentials.manager_store_1,
    )
    assert body["data"]["setLowStockThreshold"] == {
        "stock": {"lowStockThreshold": 8, "available": 9},
        "errors": [],
    }
    negative = await gql.execute(
        query,
        {"input": {"storeId": STORE_1, "skuId": sku, "threshold": -1}},
        credentials.manager_store_1,
    )
    assert negative["data"]["setLowStockThreshold"]["errors"] == [
        {"code": "OUT_OF_RANGE", "field": ["threshold"]}
    ]


STORE_STOCK = """query($store: ID!) { storeStock(storeId: $store) {
  available soldOut lowStockThreshold version sku { id tracked } } }"""


async def test_the_stock_board_shows_levels_sold_out_marks_and_thresholds(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    (sku,) = await new_tracked_skus(gql, credentials, stock=7)
    untouched, dish = await _board_skus(gql, credentials)
    set_threshold = """mutation($input: SetLowStockThresholdInput!) {
        setLowStockThreshold(input: $input) { errors { code } } }"""
    changed = await gql.execute(
        set_threshold,
        {"input": {"storeId": STORE_1, "skuId": sku, "threshold": 3}},
        credentials.manager_store_1,
    )
    assert changed["data"]["setLowStockThreshold"]["errors"] == []
    marked = await gql.execute(
        SOLD_OUT,
        {"input": {"storeId": STORE_1, "skuId": dish, "soldOut": True}},
        credentials.manager_store_1,
    )
    assert marked["data"]["setSoldOut"]["errors"] == []

    body = await gql.execute(STORE_STOCK, {"store": STORE_1}, credentials.manager_store_1)
    board = {row["sku"]["id"]: row for row in body["data"]["storeStock"]}
    assert board[sku] == {
        "available": 7,
        "soldOut": False,
        "lowStockThreshold": 3,
        "version": board[sku]["version"],
        "sku": {"id": sku, "tracked": True},
    }
    assert board[dish]["available"] is None and board[dish]["soldOut"] is True
    # A level the store never touched shows the default threshold, and nothing on hand.
    assert (board[untouched]["available"], board[untouched]["soldOut"]) == (0, True)
    assert board[untouched]["lowStockThreshold"] == 5
    await gql.execute(
        SOLD_OUT,
        {"input": {"storeId": STORE_1, "skuId": dish, "soldOut": False}},
        credentials.manager_store_1,
    )


async def _board_skus(gql: GraphQLClient, credentials: Credentials) -> tuple[str, str]:
    """A tracked SKU store 1 never stocked, and a made-to-order dish of store 1."""
    created = await gql.execute(
        """mutation($input: CreateProductInput!) { createProduct(input: $input) {
            product { skus { id } } errors { code } } }""",
        {
            "input": {
                "categoryId": encode_id("Category", 1),
                "kind": "RETAIL",
                "name": "从未进货的预制菜",
                "channels": ["RETAIL"],
                "skus": [{"name": "一份", "priceFen": 1990}],
            }
        },
        credentials.hq_admin,
    )
    never: str = created["data"]["createProduct"]["product"]["skus"][0]["id"]
    body = await gql.execute(STORE_STOCK, {"store": STORE_1}, credentials.manager_store_1)
    dish = next(r["sku"]["id"] for r in body["data"]["storeStock"] if not r["sku"]["tracked"])
    return never, dish


@pytest.mark.parametrize("who", ["manager_store_1", "partner", "member", None])
async def test_the_stock_board_is_for_the_store_staff_only(
    gql: GraphQLClient, credentials: Credentials, who: str | None
) -> None:
    headers = getattr(credentials, who) if who else None
    body = await gql.execute(STORE_STOCK, {"store": STORE_2}, headers)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
    hq = await gql.execute(STORE_STOCK, {"store": STORE_2}, credentials.hq_admin)
    assert len(hq["data"]["storeStock"]) > 0
