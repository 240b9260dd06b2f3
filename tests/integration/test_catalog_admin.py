"""Admin mutations of the product centre, and who may call them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import categories, products, store_prices
from dinegraph.resolvers.ids import encode_id
from tests.conftest import Credentials, GraphQLClient

CREATE_CATEGORY = """mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { category { id name parent { id } } errors { code message field } }
}"""
CREATE_PRODUCT = """mutation($input: CreateProductInput!) {
  createProduct(input: $input) {
    product {
      id name kind listed channels
      skus { id name tracked price { fen } specs { name value } }
    }
    errors { code message field }
  }
}"""
SET_STORE_PRICE = """mutation($input: SetStorePriceInput!) {
  setStorePrice(input: $input) { sku { id price { fen } } errors { code message field } }
}"""


async def _count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def _category(gql: GraphQLClient, headers: dict[str, str], name: str) -> str:
    body = await gql.execute(CREATE_CATEGORY, {"input": {"name": name}}, headers)
    assert body["data"]["createCategory"]["errors"] == []
    return str(body["data"]["createCategory"]["category"]["id"])


def _dish(category: str, **extra: Any) -> dict[str, Any]:
    return {
        "categoryId": category,
        "kind": "DISH",
        "name": "啫啫鸡煲",
        "channels": ["DINE_IN", "DELIVERY"],
        "tags": ["新品"],
        "skus": [
            {"name": "小份", "priceFen": 4800, "specs": [{"name": "size", "value": "小份"}]},
            {"name": "大份", "priceFen": 6800, "specs": [{"name": "size", "value": "大份"}]},
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("who", "code"),
    [
        (None, "UNAUTHENTICATED"),
        ("member", "FORBIDDEN"),
        ("partner", "FORBIDDEN"),
        ("manager_store_1", "FORBIDDEN"),
    ],
)
async def test_only_head_office_edits_the_product_centre_and_refusals_change_nothing(
    gql: GraphQLClient,
    credentials: Credentials,
    engine: AsyncEngine,
    who: str | None,
    code: str,
) -> None:
    headers = getattr(credentials, who) if who else None
    category = encode_id("Category", 1)
    before = (await _count(engine, categories), await _count(engine, products))
    created = await gql.execute(CREATE_CATEGORY, {"input": {"name": "越权分类"}}, headers)
    product = await gql.execute(CREATE_PRODUCT, {"input": _dish(category)}, headers)
    unlisted = await gql.execute(
        """mutation($input: ProductIdInput!) { unlistProduct(input: $input) {
            product { id } errors { code } } }""",
        {"input": {"id": encode_id("Product", 1)}},
        headers,
    )
    assert created["data"]["createCategory"] == {
        "category": None,
        "errors": [created["data"]["createCategory"]["errors"][0]],
    }
    assert created["data"]["createCategory"]["errors"][0]["code"] == code
    assert product["data"]["createProduct"]["errors"][0]["code"] == code
    assert unlisted["data"]["unlistProduct"]["errors"] == [{"code": code}]
    assert (await _count(engine, categories), await _count(engine, products)) == before
    listed = await gql.execute(
        f'{{ node(id: "{encode_id("Product", 1)}") {{ ... on Product {{ listed }} }} }}'
    )
    assert listed["data"]["node"] == {"listed": True}


async def test_head_office_builds_a_product_with_skus_and_a_combo(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    hq = credentials.operator
    parent = await _category(gql, hq, "秋冬限定")
    child = await gql.execute(
        CREATE_CATEGORY, {"input": {"name": "煲仔系列", "parentId": parent}}, hq
    )
    category = child["data"]["createCategory"]["category"]
    assert category["parent"] == {"id": parent}
    dish = (await gql.execute(CREATE_PRODUCT, {"input": _dish(category["id"])}, hq))["data"]
    assert dish["createProduct"]["errors"] == []
    made = dish["createProduct"]["product"]
    assert made["kind"] == "DISH" and made["listed"] is True
    assert made["channels"] == ["DELIVERY", "DINE_IN"]
    assert [(s["name"], s["tracked"], s["price"]["fen"]) for s in made["skus"]] == [
        ("小份", False, 4800),
        ("大份", False, 6800),
    ]
    combo_input = {
        "categoryId": category["id"],
        "kind": "COMBO",
        "name": "煲仔双人餐",
        "channels": ["DELIVERY"],
        "skus": [
            {
                "name": "双人份",
                "priceFen": 9900,
                "components": [
                    {"skuId": made["skus"][1]["id"], "quantity": 1},
                    {"skuId": encode_id("Sku", 1), "quantity": 2},
                ],
            }
        ],
    }
    combo = (await gql.execute(CREATE_PRODUCT, {"input": combo_input}, hq))["data"]
    assert combo["createProduct"]["errors"] == []
    retail = (
        await gql.execute(
            CREATE_PRODUCT,
            {
                "input": {
                    "categoryId": category["id"],
                    "kind": "RETAIL",
                    "name": "煲仔饭料理包",
                    "channels": ["RETAIL", "DELIVERY"],
                    "skus": [{"name": "2人份", "priceFen": 3990}],
                }
            },
            hq,
        )
    )["data"]["createProduct"]
    assert retail["product"]["skus"][0]["tracked"] is True


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"name": "   "}, "REQUIRED", ["name"]),
        ({"name": "长" * 61}, "TOO_LONG", ["name"]),
        ({"channels": []}, "CHANNEL_REQUIRED", ["channels"]),
        ({"skus": []}, "REQUIRED", ["skus"]),
        ({"skus": [{"name": "x", "priceFen": -1}]}, "NEGATIVE_PRICE", ["skus", "0", "priceFen"]),
        ({"imageUrls": ["http://insecure.example/a.jpg"]}, "INVALID_URL", ["imageUrls", "0"]),
        (
            {"imageUrls": ["https://img.example/a.jpg", "https://no spaces.example/b.jpg"]},
            "INVALID_URL",
            ["imageUrls", "1"],
        ),
        ({"kind": "COMBO"}, "COMBO_NEEDS_COMPONENTS", ["skus", "0", "components"]),
        ({"categoryId": encode_id("Category", 99999)}, "NOT_FOUND", ["categoryId"]),
        ({"categoryId": encode_id("Store", 1)}, "INVALID_ID", ["categoryId"]),
    ],
)
async def test_bad_product_input_is_refused_with_a_code_and_changes_nothing(
    gql: GraphQLClient,
    credentials: Credentials,
    engine: AsyncEngine,
    change: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    before = await _count(engine, products)
    body = await gql.execute(
        CREATE_PRODUCT, {"input": _dish(encode_id("Category", 2), **change)}, credentials.hq_admin
    )
    payload = body["data"]["createProduct"]
    assert payload["product"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert payload["errors"][0]["message"]
    assert await _count(engine, products) == before


async def test_a_combo_cannot_contain_a_combo(gql: GraphQLClient, credentials: Credentials) -> None:
    combo_sku = await gql.execute(
        """query($store: ID!) { menu(storeId: $store, channel: DELIVERY) {
            categories { products { kind skus { id } } } } }""",
        {"store": encode_id("Store", 2)},
    )
    nested = next(
        p["skus"][0]["id"]
        for c in combo_sku["data"]["menu"]["categories"]
        for p in c["products"]
        if p["kind"] == "COMBO"
    )
    body = await gql.execute(
        CREATE_PRODUCT,
        {
            "input": _dish(
                encode_id("Category", 2),
                kind="COMBO",
                skus=[{"name": "套中套", "priceFen": 100, "components": [{"skuId": nested}]}],
            )
        },
        credentials.hq_admin,
    )
    assert body["data"]["createProduct"]["errors"][0]["code"] == "INVALID_COMBO_COMPONENT"


async def test_moving_a_category_under_its_own_child_is_refused(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    parent = await _category(gql, hq, "父分类")
    child = (
        await gql.execute(CREATE_CATEGORY, {"input": {"name": "子分类", "parentId": parent}}, hq)
    )["data"]["createCategory"]["category"]["id"]
    moved = await gql.execute(
        """mutation($input: UpdateCategoryInput!) { updateCategory(input: $input) {
            category { id } errors { code field } } }""",
        {"input": {"id": parent, "parentId": child}},
        hq,
    )
    assert moved["data"]["updateCategory"] == {
        "category": None,
        "errors": [{"code": "CATEGORY_CYCLE", "field": ["parentId"]}],
    }
    to_top = await gql.execute(
        """mutation($input: UpdateCategoryInput!) { updateCategory(input: $input) {
            category { name parent { id } } errors { code } } }""",
        {"input": {"id": child, "parentId": None, "name": "独立分类"}},
        hq,
    )
    assert to_top["data"]["updateCategory"] == {
        "category": {"name": "独立分类", "parent": None},
        "errors": [],
    }


async def test_update_product_and_sku_and_unlist_then_list(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    category = await _category(gql, hq, "改名测试")
    made = (await gql.execute(CREATE_PRODUCT, {"input": _dish(category)}, hq))["data"]
    product = made["createProduct"]["product"]
    updated = await gql.execute(
        """mutation($input: UpdateProductInput!) { updateProduct(input: $input) {
            product { name tags channels description } errors { code } } }""",
        {
            "input": {
                "id": product["id"],
                "name": "招牌啫啫鸡煲",
                "tags": ["招牌", "招牌"],
                "channels": ["PICKUP"],
            }
        },
        hq,
    )
    assert updated["data"]["updateProduct"] == {
        "product": {
            "name": "招牌啫啫鸡煲",
            "tags": ["招牌"],
            "channels": ["PICKUP"],
            "description": "",
        },
        "errors": [],
    }
    sku = await gql.execute(
        """mutation($input: UpdateSkuInput!) { updateSku(input: $input) {
            sku { name basePrice { fen display } } errors { code } } }""",
        {"input": {"id": product["skus"][0]["id"], "priceFen": 5200}},
        hq,
    )
    assert sku["data"]["updateSku"]["sku"] == {
        "name": "小份",
        "basePrice": {"fen": 5200, "display": "¥52.00"},
    }
    added = await gql.execute(
        """mutation($input: CreateSkuInput!) { createSku(input: $input) {
            sku { name product { name skus { name } } } errors { code } } }""",
        {"input": {"productId": product["id"], "name": "特大份", "priceFen": 8800}},
        hq,
    )
    assert [s["name"] for s in added["data"]["createSku"]["sku"]["product"]["skus"]] == [
        "小份",
        "大份",
        "特大份",
    ]
    menu = """query($store: ID!) { menu(storeId: $store, channel: PICKUP) {
        categories { products { id } } } }"""
    store = encode_id("Store", 2)

    async def on_menu() -> bool:
        body = await gql.execute(menu, {"store": store})
        return product["id"] in {
            p["id"] for c in body["data"]["menu"]["categories"] for p in c["products"]
        }

    assert await on_menu()
    for mutation, expected in (("unlistProduct", False), ("listProduct", True)):
        body = await gql.execute(
            f"""mutation($input: ProductIdInput!) {{ {mutation}(input: $input) {{
                product {{ listed }} errors {{ code }} }} }}""",
            {"input": {"id": product["id"]}},
            hq,
        )
        assert body["data"][mutation] == {"product": {"listed": expected}, "errors": []}
        assert await on_menu() is expected


async def test_a_bad_edit_of_a_product_or_sku_changes_none_of_it(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    category = await _category(gql, hq, "坏改测试")
    images = ["https://img.example.com/a.jpg"]
    made = await gql.execute(CREATE_PRODUCT, {"input": _dish(category, imageUrls=images)}, hq)
    product = made["data"]["createProduct"]["product"]
    read = """query($id: ID!) { node(id: $id) { ... on Product {
        name imageUrls channels skus { name basePrice { fen } specs { name value } } } } }"""
    before = (await gql.execute(read, {"id": product["id"]}, hq))["data"]["node"]

    # The whole edit is refused for its one bad address: the good name is not kept either.
    update = await gql.execute(
        """mutation($input: UpdateProductInput!) { updateProduct(input: $input) {
            product { id } errors { code field } } }""",
        {
            "input": {
                "id": product["id"],
                "name": "改了名",
                "imageUrls": ["https://img.example.com/b.jpg", "ftp://img.example.com/c.jpg"],
            }
        },
        hq,
    )
    assert update["data"]["updateProduct"] == {
        "product": None,
        "errors": [{"code": "INVALID_URL", "field": ["imageUrls", "1"]}],
    }
    bad_skus: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"priceFen": -5, "name": "改了名"}, "NEGATIVE_PRICE", ["priceFen"]),
        ({"specs": [{"name": "size", "value": " "}]}, "REQUIRED", ["specs"]),
        ({"name": ""}, "REQUIRED", ["name"]),
    ]
    for change, code, field in bad_skus:
        body = await gql.execute(
            """mutation($input: UpdateSkuInput!) { updateSku(input: $input) {
                sku { id } errors { code field } } }""",
            {"input": {"id": product["skus"][0]["id"], **change}},
            hq,
        )
        assert body["data"]["updateSku"] == {
            "sku": None,
            "errors": [{"code": code, "field": field}],
        }
    assert (await gql.execute(read, {"id": product["id"]}, hq))["data"]["node"] == before


async def test_a_store_manager_prices_only_their_own_store(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    sku = encode_id("Sku", 30)
    own = await gql.execute(
        SET_STORE_PRICE,
        {"input": {"storeId": encode_id("Store", 1), "skuId": sku, "priceFen": 1234}},
        credentials.manager_store_1,
    )
    assert own["data"]["setStorePrice"] == {
        "sku": {"id": sku, "price": {"fen": 1234}},
        "errors": [],
    }
    before = await _count(engine, store_prices)
    other = await gql.execute(
        SET_STORE_PRICE,
        {"input": {"storeId": encode_id("Store", 2), "skuId": sku, "priceFen": 1}},
        credentials.manager_store_1,
    )
    assert other["data"]["setStorePrice"] == {
        "sku": None,
        "errors": [{"code": "FORBIDDEN", "message": "没有权限执行此操作", "field": ["storeId"]}],
    }
    assert await _count(engine, store_prices) == before
    cleared = await gql.execute(
        SET_STORE_PRICE,
        {"input": {"storeId": encode_id("Store", 1), "skuId": sku, "priceFen": None}},
        credentials.manager_store_1,
    )
    base = await gql.execute(f'{{ node(id: "{sku}") {{ ... on Sku {{ basePrice {{ fen }} }} }} }}')
    assert cleared["data"]["setStorePrice"]["sku"]["price"] == base["data"]["node"]["basePrice"]


async def test_messages_follow_accept_language(gql: GraphQLClient) -> None:
    english = await gql.execute(
        CREATE_CATEGORY, {"input": {"name": "x"}}, {"Accept-Language": "en-US,en;q=0.9"}
    )
    chinese = await gql.execute(CREATE_CATEGORY, {"input": {"name": "x"}})
    assert english["data"]["createCategory"]["errors"][0]["message"] == "Sign in first"
    assert chinese["data"]["createCategory"]["errors"][0]["message"] == "请先登录"


async def test_concurrent_admin_writes_all_commit(
    gql: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    """Writers queue on the database lock (BEGIN IMMEDIATE + busy timeout) instead of failing."""
    before = await _count(engine, categories)
    results = await asyncio.gather(
        *(
            gql.execute(CREATE_CATEGORY, {"input": {"name": f"并发{i}"}}, credentials.hq_admin)
            for i in range(40)
        )
    )
    assert all(r["data"]["createCategory"]["errors"] == [] for r in results)
    assert await _count(engine, categories) == before + 40
