"""Bad input gets a clear error with a code and changes nothing, in production mode.

Malformed global IDs, text no database can store (NUL, a lone UTF-16 surrogate), text too
long for its meaning and dates or amounts out of any plausible range: each answers its code
and field, never an internal error, and leaves the tables as they were, on SQLite and on
PostgreSQL alike.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from dinegraph.app import create_app, default_services
from dinegraph.context import Context
from dinegraph.db import tables
from dinegraph.domain.identity import Anonymous, MemberViewer, StaffRole, StaffViewer, Viewer
from dinegraph.events.brokers import Broker
from dinegraph.i18n import Locale
from dinegraph.resolvers.ids import encode_id
from dinegraph.schema import build_schema
from dinegraph.settings import Mode, Settings
from tests.conftest import Credentials, make_settings


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
async def production(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(settings.database_url, mode=Mode.PRODUCTION), engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        yield client


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Post as JSON with every non-ASCII character escaped, so lone surrogates travel as
    ``\\ud800``, the way a broken client's JSON carries them."""
    body = json.dumps({"query": query, "variables": variables or {}}, ensure_ascii=True)
    response = await client.post(
        "/graphql",
        content=body.encode("ascii"),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    assert "INTERNAL_SERVER_ERROR" not in response.text, response.text[:500]
    answer: dict[str, Any] = response.json()
    return answer


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert len(body.get("errors") or []) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


# --- malformed identifiers ------------------------------------------------------------

BAD_IDS = {
    "superscript two": "T3JkZXI6wrI=",  # base64("Order:²")
    "arabic digit": b64("Store:٣"),
    "thirty digits": b64("Order:" + "9" * 30),
    "above 2^31-1": b64("Store:2147483648"),
    "zero": b64("Store:0"),
    "negative": b64("Store:-1"),
    "plus sign": b64("Store:+1"),
    "space": b64("Store: 1"),
    "leading zero": b64("Store:01"),
    "no number": b64("Store:"),
    "no colon": b64("Store1"),
    "not base64": "not base64!",
    "bad padding": b64("Store:1").rstrip("="),
    "100 KB": "A" * 100_000,
    "empty": "",
    "unknown type": b64("Nothing:1"),
    "not a node": b64("Money:1"),
}


@pytest.mark.parametrize("global_id", BAD_IDS.values(), ids=BAD_IDS.keys())
async def test_a_malformed_id_is_invalid_id_in_every_query_field(
    production: httpx.AsyncClient, credentials: Credentials, global_id: str
) -> None:
    staff = credentials.hq_admin
    node = await post(
        production, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, staff
    )
    assert only_error(node)["extensions"] == {"code": "INVALID_ID", "field": ["id"]}
    ok = encode_id("Store", 1)
    nodes = await post(
        production,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [ok, global_id]},
        staff,
    )
    assert only_error(nodes)["extensions"] == {"code": "INVALID_ID", "field": ["ids", "1"]}
    for query, field in [
        ("query($id: ID!) { store(id: $id) { id } }", ["id"]),
        ("query($id: ID!) { order(id: $id) { id } }", ["id"]),
        ("query($id: ID!) { menu(storeId: $id, channel: PICKUP) { channel } }", ["storeId"]),
        ("query($id: ID!) { stockLedger(storeId: $id) { edges { cursor } } }", ["storeId"]),
    ]:
        body = await post(production, query, {"id": global_id}, staff)
        assert only_error(body)["extensions"] == {"code": "INVALID_ID", "field": field}, query


async def test_an_id_of_the_wrong_type_is_invalid_id(
    production: httpx.AsyncClient, credentials: Credentials
) -> None:
    body = await post(
        production,
        "query($id: ID!) { store(id: $id) { id } }",
        {"id": encode_id("Product", 1)},
        credentials.hq_admin,
    )
    assert only_error(body)["extensions"] == {"code": "INVALID_ID", "field": ["id"]}


RECORD_SALE = """mutation($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code field } } }"""


@pytest.mark.parametrize(
    "sku_id",
    ["T3JkZXI6wrI=", b64("Sku:" + "9" * 30), b64("Sku:٣"), "A" * 100_000, encode_id("Store", 1)],
    ids=["superscript", "thirty digits", "arabic digit", "100 KB", "wrong type"],
)
async def test_a_malformed_id_in_a_mutation_input_is_a_payload_error(
    production: httpx.AsyncClient, credentials: Credentials, engine: AsyncEngine, sku_id: str
) -> None:
    before = await count(engine, tables.stock_movements)
    sale = {
        "storeId": encode_id("Store", 1),
        "source": "POS",
        "externalOrderId": "bad-id-sale",
        "lines": [{"skuId": sku_id, "quantity": 1}],
    }
    body = await post(production, RECORD_SALE, {"input": sale}, credentials.partner)
    assert body["data"]["recordSale"] == {
        "sale": None,
        "errors": [{"code": "INVALID_ID", "field": ["lines", "0", "skuId"]}],
    }
    assert await count(engine, tables.stock_movements) == before


# --- text no database can store ---------------------------------------------------------

UNSTORABLE = {"lone surrogate": "\ud800x", "NUL": "a\x00b", "trailing surrogate": "ok\udfff"}

CREATE_CATEGORY = """mutation($name: String!) {
  createCategory(input: {name: $name}) { category { id } errors { code field } } }"""
SAVE_ADDRESS = """mutation($input: SaveAddressInput!) {
  saveAddress(input: $input) { address { id } errors { code field } } }"""
PLACE_ORDER = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id } errors { code field } } }"""
RESTOCK = """mutation($input: RestockInput!) {
  restock(input: $input) { movement { id } errors { code field } } }"""


def address(**overrides: Any) -> dict[str, Any]:
    return {
        "contactName": "王先生",
        "contactPhone": "13800000001",
        "address": "福田区市民中心 B 区 101",
        "location": {"lat": 22.5431, "lng": 114.0579},
        **overrides,
    }


def order(**overrides: Any) -> dict[str, Any]:
    return {
        "idempotencyKey": "bad-text-order",
        "channel": "DELIVERY",
        "lines": [{"skuId": encode_id("Sku", 1), "quantity": 1}],
        "address": {
            "lat": 22.5431,
            "lng": 114.0579,
            "detail": "福田区市民中心 B 区 101",
            "contactName": "王先生",
            "contactPhone": "13800000001",
        },
        **overrides,
    }


def refused_as_unstorable(body: dict[str, Any], field: list[str]) -> bool:
    """Refused with INVALID_CHARACTERS: in the field's payload with its path, or for the
    whole request before it runs (the server scans variables and documents first)."""
    if body.get("data") is None:
        code: str = only_error(body)["extensions"]["code"]
        return code == "INVALID_CHARACTERS"
    (payload,) = body["data"].values()
    refused: bool = payload["errors"] == [{"code": "INVALID_CHARACTERS", "field": field}]
    return refused


def cases(text: str) -> list[tuple[str, dict[str, Any], str | None, list[str]]]:
    nested = order()
    nested["address"]["detail"] = text
    restock = {
        "storeId": encode_id("Store", 1),
        "skuId": encode_id("Sku", 1),
        "quantity": 1,
        "reference": text,
    }
    return [
        (CREATE_CATEGORY, {"name": text}, "hq_admin", ["name"]),
        (SAVE_ADDRESS, {"input": address(address=text)}, "member", ["address"]),
        (PLACE_ORDER, {"input": nested}, "member", ["address", "detail"]),
        (PLACE_ORDER, {"input": order(note=text)}, "member", ["note"]),
        (RESTOCK, {"input": restock}, "hq_admin", ["reference"]),
        # Arguments outside an input are named by the argument.
        (
            "mutation($p: String!) { requestLoginCode(phone: $p) { errors { code field } } }",
            {"p": text},
            None,
            ["phone"],
        ),
    ]


WATCHED = ["categories", "member_addresses", "orders", "stock_movements", "login_codes"]


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
async def test_unstorable_text_is_refused_and_stores_nothing(
    production: httpx.AsyncClient, credentials: Credentials, engine: AsyncEngine, text: str
) -> None:
    before = [await count(engine, getattr(tables, t)) for t in WATCHED]
    for query, variables, viewer, field in cases(text):
        auth = getattr(credentials, viewer) if viewer else None
        body = await post(production, query, variables, auth)
        assert refused_as_unstorable(body, field), (field, body)
    body = await post(
        production,
        "query($c: String!) { shareInvite(shareCode: $c) { campaign { id } } }",
        {"c": text},
        credentials.member,
    )
    assert only_error(body)["extensions"]["code"] == "INVALID_CHARACTERS"
    body = await post(
        production,
        'mutation { createCategory(input: {name: "a\\u0000b"}) { errors { code field } } }',
        headers=credentials.hq_admin,
    )
    assert refused_as_unstorable(body, ["name"]), body
    assert [await count(engine, getattr(tables, t)) for t in WATCHED] == before


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
async def test_each_field_refuses_unstorable_text_itself(
    settings: Settings, engine: AsyncEngine, text: str
) -> None:
    """Behind the request's own scan, every mutation and query field refuses such text in
    its arguments, with the code and the field's path (here the schema runs directly)."""
    prod = make_settings(settings.database_url, mode=Mode.PRODUCTION)
    schema = build_schema(prod)
    before = [await count(engine, getattr(tables, t)) for t in WATCHED]
    viewers: dict[str | None, Viewer] = {
        "hq_admin": StaffViewer(
            staff_id=1, username="hq-admin", role=StaffRole.HQ_ADMIN, store_ids=frozenset()
        ),
        "member": MemberViewer(1),
        None: Anonymous(),
    }
    for query, variables, viewer, field in cases(text):
        context = Context(
            request=Request({"type": "http", "method": "POST", "headers": [], "client": None}),
            response=None,
            settings=prod,
            engine=engine,
            viewer=viewers[viewer],
            locale=Locale.EN,
            broker=Broker(),
            services=default_services(prod),
        )
        result = await schema.execute(query, variable_values=variables, context_value=context)
        assert result.errors is None and result.data is not None, result.errors
        (payload,) = result.data.values()
        assert payload["errors"] == [{"code": "INVALID_CHARACTERS", "field": field}]
    assert [await count(engine, getattr(tables, t)) for t in WATCHED] == before


async def test_a_surrogate_pair_is_ordinary_text(
    production: httpx.AsyncClient, credentials: Credentials
) -> None:
    body = await post(production, CREATE_CATEGORY, {"name": "辣😋"}, credentials.hq_admin)
    assert body["data"]["createCategory"]["errors"] == []


# --- lengths and ranges -----------------------------------------------------------------

UPDATE_PROFILE = """mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) { member { birthday } errors { code field } } }"""


async def test_a_long_address_is_too_long_and_stores_nothing(
    production: httpx.AsyncClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    addresses = await count(engine, tables.member_addresses)
    for field, value in [("address", "x" * 100_000), ("contactName", "名" * 31)]:
        body = await post(
            production, SAVE_ADDRESS, {"input": address(**{field: value})}, credentials.member
        )
        assert body["data"]["saveAddress"]["errors"] == [{"code": "TOO_LONG", "field": [field]}]
    assert await count(engine, tables.member_addresses) == addresses


@pytest.mark.parametrize("birthday", ["9999-12-31", "1899-12-31", "2999-01-01"])
async def test_an_implausible_birthday_is_out_of_range(
    production: httpx.AsyncClient, credentials: Credentials, engine: AsyncEngine, birthday: str
) -> None:
    async with engine.connect() as conn:
        before = (await conn.execute(sa.select(tables.members.c.birthday))).all()
    body = await post(
        production, UPDATE_PROFILE, {"input": {"birthday": birthday}}, credentials.member
    )
    assert body["data"]["updateProfile"] == {
        "member": None,
        "errors": [{"code": "OUT_OF_RANGE", "field": ["birthday"]}],
    }
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(tables.members.c.birthday))).all() == before


async def test_a_plausible_birthday_is_kept(
    production: httpx.AsyncClient, credentials: Credentials
) -> None:
    body = await post(
        production, UPDATE_PROFILE, {"input": {"birthday": "1990-05-20"}}, credentials.member
    )
    assert body["data"]["updateProfile"]["errors"] == []
    assert body["data"]["updateProfile"]["member"]["birthday"] == "1990-05-20"


@pytest.mark.parametrize(
    ("query", "variables", "headers", "expected"),
    [
        (
            """mutation($r: String!) { adjustMemberPoints(input: {
                memberId: "TWVtYmVyOjE=", delta: 1, reference: $r, reason: "x"}) {
                errors { code field } } }""",
            {"r": "r" * 65},
            "hq_admin",
            {"code": "TOO_LONG", "field": ["reference"]},
        ),
        (
            """mutation($c: String!) { loginWithWechat(code: $c) { errors { code field } } }""",
            {"c": "w" * 100_000},
            None,
            {"code": "TOO_LONG", "field": ["code"]},
        ),
        (
            """mutation($n: String!) { addRider(input: {storeId: "U3RvcmU6MQ==", name: $n,
                phone: "13800000009"}) { errors { code field } } }""",
            {"n": "骑" * 31},
            "hq_admin",
            {"code": "TOO_LONG", "field": ["name"]},
        ),
        (
            """mutation($c: String!) { claimCoupon(templateId: "Q291cG9uVGVtcGxhdGU6MQ==",
                shareCode: $c) { errors { code field } } }""",
            {"c": "²." + "0" * 16},
            "member",
            {"code": "INVALID_SHARE_CODE", "field": ["shareCode"]},
        ),
        (
            """mutation($c: String!) { claimCoupon(templateId: "Q291cG9uVGVtcGxhdGU6MQ==",
                shareCode: $c) { errors { code field } } }""",
            {"c": "9" * 5000 + ".x"},
            "member",
            {"code": "INVALID_SHARE_CODE", "field": ["shareCode"]},
        ),
        (
            """mutation { createCouponTemplate(input: {title: "大额", kind: NO_THRESHOLD,
                totalQuantity: 10, amountOffFen: 2000000000, validDays: 7}) {
                errors { code field } } }""",
            {},
            "hq_admin",
            {"code": "OUT_OF_RANGE", "field": ["amountOffFen"]},
        ),
        (
            """mutation { createCouponTemplate(input: {title: "多", kind: NO_THRESHOLD,
                totalQuantity: 2000000000, amountOffFen: 100, validDays: 7}) {
                errors { code field } } }""",
            {},
            "hq_admin",
            {"code": "OUT_OF_RANGE", "field": ["totalQuantity"]},
        ),
        (
            """mutation { createCouponTemplate(input: {title: "远", kind: NO_THRESHOLD,
                totalQuantity: 10, amountOffFen: 100, validFrom: "9999-01-01T00:00:00+08:00",
                validUntil: "9999-02-01T00:00:00+08:00"}) { errors { code field } } }""",
            {},
            "hq_admin",
            {"code": "OUT_OF_RANGE", "field": ["validFrom"]},
        ),
        (
            """mutation { createCouponTemplate(input: {title: "古", kind: NO_THRESHOLD,
                totalQuantity: 10, amountOffFen: 100, validDays: 7,
                claimStartsAt: "0001-01-01T00:00:00+00:00"}) { errors { code field } } }""",
            {},
            "hq_admin",
            {"code": "OUT_OF_RANGE", "field": ["claimStartsAt"]},
        ),
    ],
    ids=[
        "points reference",
        "wechat code",
        "rider name",
        "share code digit",
        "share code digits",
        "coupon amount",
        "coupon quantity",
        "coupon validity in 9999",
        "coupon claim in year 1",
    ],
)
async def test_lengths_and_ranges_are_payload_errors(
    production: httpx.AsyncClient,
    credentials: Credentials,
    engine: AsyncEngine,
    query: str,
    variables: dict[str, Any],
    headers: str | None,
    expected: dict[str, Any],
) -> None:
    watched = [
        tables.points_ledger,
        tables.members,
        tables.riders,
        tables.coupons,
        tables.coupon_templates,
    ]
    before = [await count(engine, t) for t in watched]
    auth = getattr(credentials, headers) if headers else None
    body = await post(production, query, variables, auth)
    (payload,) = body["data"].values()
    assert payload["errors"] == [expected]
    assert [await count(engine, t) for t in watched] == before


@pytest.mark.parametrize("quantity", [0, 1000, 2_147_483_647])
async def test_an_order_line_quantity_is_one_to_999(
    production: httpx.AsyncClient, credentials: Credentials, engine: AsyncEngine, quantity: int
) -> None:
    orders = await count(engine, tables.orders)
    lines = [{"skuId": encode_id("Sku", 1), "quantity": quantity}]
    body = await post(production, PLACE_ORDER, {"input": order(lines=lines)}, credentials.member)
    assert body["data"]["placeOrder"]["errors"] == [
        {"code": "OUT_OF_RANGE", "field": ["lines", "0", "quantity"]}
    ]
    assert await count(engine, tables.orders) == orders
