"""Product search through the real schema on the demo chain: pinyin, initials, typos,
synonyms and tags; only what the store sells now; bad input refused with codes; the index
following committed changes; synonyms and misses for head office."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.search import SqlSearchReads
from dinegraph.db.tables import search_misses, search_synonyms
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.databases import broker_url
from tests.integration.test_read_cache import serving

SEARCH = """
query Search($q: String!, $store: ID!, $channel: Channel!, $first: Int, $after: String) {
  searchProducts(query: $q, storeId: $store, channel: $channel, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { matchedBy node { id name channels skus { id stock { soldOut } price { fen } } } }
  }
}
"""
SUGGEST = "query($p: String!, $first: Int) { searchSuggestions(prefix: $p, first: $first) }"
SET_SYNONYMS = """mutation($input: SetSearchSynonymsInput!) {
  setSearchSynonyms(input: $input) { synonym { term synonyms } errors { code field } } }"""
SYNONYMS = "query { searchSynonyms { term synonyms updatedAt } }"
MISSES = """query($first: Int) { searchMisses(first: $first) {
  edges { node { query count store { id } firstSeenAt lastSeenAt } } } }"""
UNLIST = """mutation($input: ProductIdInput!) {
  unlistProduct(input: $input) { product { id } errors { code } } }"""
LIST = """mutation($input: ProductIdInput!) {
  listProduct(input: $input) { product { id } errors { code } } }"""
SOLD_OUT = """mutation($input: SetSoldOutInput!) {
  setSoldOut(input: $input) { errors { code } } }"""
AUDIT = """query { auditLog(first: 5, filter: {action: "setSearchSynonyms"}) {
  edges { node { action outcome } } } }"""

STORE = encode_id("Store", 3)  # 南山科技园店: open, every channel


async def _search(
    gql: GraphQLClient,
    query: str,
    channel: str = "DELIVERY",
    store: str = STORE,
    **more: Any,
) -> dict[str, Any]:
    body = await gql.execute(SEARCH, {"q": query, "store": store, "channel": channel, **more})
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["searchProducts"]
    return found


def _names(found: dict[str, Any]) -> list[str]:
    return [e["node"]["name"] for e in found["edges"]]


def _code(body: dict[str, Any]) -> tuple[str, list[str] | None]:
    (error,) = body["errors"]
    assert body.get("data") is None or not any(body["data"].values()), body
    return error["extensions"]["code"], error["extensions"].get("field")


@pytest.mark.parametrize(
    ("query", "expected", "matched_by"),
    [
        ("tcpg", "糖醋排骨", "INITIALS"),
        ("TCPG", "糖醋排骨", "INITIALS"),
        ("tangcu", "糖醋排骨", "PINYIN"),
        ("tangcupaigo", "糖醋排骨", "TYPO"),  # one wrong letter
        ("糖醋拍骨", "糖醋排骨", "PINYIN"),  # a homophone for 排
        ("麻小", "香辣小龙虾", "SYNONYM"),  # the demo chain's synonyms
        ("夜宵", "香辣小龙虾", "TAG"),
        ("糖醋排骨", "糖醋排骨", "NAME"),
        ("ｔａｎｇｃｕ", "糖醋排骨", "PINYIN"),  # typed full-width
    ],
)
async def test_search_finds_demo_dishes_by_pinyin_initials_typos_synonyms_and_tags(
    gql: GraphQLClient, query: str, expected: str, matched_by: str
) -> None:
    found = await _search(gql, query)
    names = _names(found)
    assert expected in names[:3], names
    edge = found["edges"][names.index(expected)]
    assert edge["matchedBy"] == matched_by
    assert found["totalCount"] == len(names)


async def test_an_exact_name_ranks_above_a_longer_name_and_descriptions(gql: GraphQLClient) -> None:
    names = _names(await _search(gql, "tcpg"))
    assert names[:2] == ["糖醋排骨", "鲜做糖醋排骨"]
    names = _names(await _search(gql, "排骨", first=20))
    by_name = [n for n in names if "排骨" in n]
    assert len(by_name) >= 3 and names[: len(by_name)] == by_name
    assert "秘制糖醋汁" in names[len(by_name) :]  # only its description says 排骨


async def test_search_keeps_to_the_channel_and_to_listed_products(gql: GraphQLClient) -> None:
    assert "火焰醉鹅" in _names(await _search(gql, "醉鹅", channel="DINE_IN"))
    assert _names(await _search(gql, "醉鹅", channel="DELIVERY")) == []  # dine-in only
    assert "冬至羊肉煲" not in _names(await _search(gql, "羊肉", channel="PICKUP"))  # unlisted


async def test_results_page_with_cursors(gql: GraphQLClient) -> None:
    whole = _names(await _search(gql, "预制菜", channel="RETAIL", first=100))
    first = await _search(gql, "预制菜", channel="RETAIL", first=3)
    assert _names(first) == whole[:3] and first["pageInfo"]["hasNextPage"]
    after = first["pageInfo"]["endCursor"]
    rest = await _search(gql, "预制菜", channel="RETAIL", first=3, after=after)
    assert _names(rest) == whole[3:6]


async def test_suggestions_follow_hanzi_pinyin_and_initials(gql: GraphQLClient) -> None:
    for prefix in ("糖醋", "tang", "tcp"):
        body = await gql.execute(SUGGEST, {"p": prefix})
        assert "糖醋排骨" in body["data"]["searchSuggestions"], (prefix, body)
    body = await gql.execute(SUGGEST, {"p": "ma"})
    assert "麻小" in body["data"]["searchSuggestions"]
    body = await gql.execute(SUGGEST, {"p": "t", "first": 2})
    assert len(body["data"]["searchSuggestions"]) == 2
    body = await gql.execute(SUGGEST, {"p": "   "})
    assert body["data"]["searchSuggestions"] == []


async def test_empty_queries_find_nothing_and_are_no_misses(
    gql: GraphQLClient, engine: AsyncEngine
) -> None:
    for query in ("", "   ", "、。！"):
        found = await _search(gql, query)
        assert found == {
            "totalCount": 0,
            "pageInfo": {"hasNextPage": False, "endCursor": None},
            "edges": [],
        }
    async with engine.connect() as conn:
        logged = await conn.scalar(
            sa.select(sa.func.count()).where(search_misses.c.query.in_(["", " "]))
        )
    assert logged == 0


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"q": "糖" * 10_240}, "TOO_LONG", ["query"]),
        ({"q": "a" * 51}, "TOO_LONG", ["query"]),
        ({"q": "糖\x00"}, "INVALID_CHARACTERS", None),  # refused before execution
        ({"store": encode_id("Store", 999_999)}, "NOT_FOUND", ["storeId"]),
        ({"store": "not-an-id"}, "INVALID_ID", ["storeId"]),
        ({"store": encode_id("Product", 1)}, "INVALID_ID", ["storeId"]),
        ({"first": 101}, "PAGE_SIZE_TOO_LARGE", ["first"]),
        ({"first": -1}, "OUT_OF_RANGE", ["first"]),
        ({"after": "bm90IGEgY3Vyc29y"}, "INVALID_CURSOR", ["after"]),
    ],
)
async def test_bad_search_input_is_refused_with_a_code(
    gql: GraphQLClient, variables: dict[str, Any], code: str, field: list[str] | None
) -> None:
    given = {"q": "tcpg", "store": STORE, "channel": "DELIVERY", **variables}
    body = await gql.execute(SEARCH, given)
    assert _code(body) == (code, field)


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"p": "糖" * 10_240}, "TOO_LONG"),
        ({"p": "tang", "first": 21}, "OUT_OF_RANGE"),
        ({"p": "tang", "first": -1}, "OUT_OF_RANGE"),
    ],
)
async def test_bad_suggestion_input_is_refused_with_a_code(
    gql: GraphQLClient, variables: dict[str, Any], code: str
) -> None:
    body = await gql.execute(SUGGEST, variables)
    assert _code(body)[0] == code


async def test_a_query_that_finds_nothing_is_counted_per_store_and_read_by_head_office(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    for query in ("火星陨石", "  火星  陨石 ", "火星陨石"):
        assert (await _search(gql, query))["edges"] == []
    await _search(gql, "火星陨石", store=encode_id("Store", 4))
    body = await gql.execute(MISSES, {"first": 100}, headers=credentials.operator)
    nodes = [e["node"] for e in body["data"]["searchMisses"]["edges"]]
    mine = {(n["query"], n["store"]["id"]): n["count"] for n in nodes if "火星" in n["query"]}
    assert mine == {
        ("火星陨石", STORE): 2,
        ("火星 陨石", STORE): 1,
        ("火星陨石", encode_id("Store", 4)): 1,
    }
    for who in (credentials.member, credentials.manager_store_1, {}):
        body = await gql.execute(MISSES, {"first": 5}, headers=who)
        assert body["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}


async def test_misses_kept_are_bounded_the_least_recent_forgotten(engine: AsyncEngine) -> None:
    reads = SqlSearchReads(engine, misses_kept=3)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(search_misses.delete())
    for n in range(5):
        await reads.record_miss(1, f"bound-{n}", start + timedelta(minutes=n))
    await reads.record_miss(1, "bound-4", start + timedelta(minutes=9))
    kept = {m.query: m.count for m in await reads.misses(10)}
    assert kept == {"bound-4": 2, "bound-3": 1, "bound-2": 1}


async def test_the_index_follows_unlisting_sold_out_and_synonyms_at_once(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    async with serving(settings, engine) as served:
        client = GraphQLClient(served.http)
        index = served.services.search
        found = await _search(client, "tcpg")
        assert index.following and index.builds == 1
        await _search(client, "tangcu")
        assert index.builds == 1  # nothing committed since: the same index
        product = next(e["node"] for e in found["edges"] if e["node"]["name"] == "糖醋排骨")
        ids = {"input": {"id": product["id"]}}
        await served.write(UNLIST, ids, hq)
        try:
            assert "糖醋排骨" not in _names(await _search(client, "tcpg"))
            assert index.builds == 2
        finally:
            await served.write(LIST, ids, hq)
        assert "糖醋排骨" in _names(await _search(client, "tcpg"))

        # Every SKU sold out (沽清) at the store: not on sale there until marked back.
        dish = next(
            e["node"]
            for e in (await _search(client, "tcpg"))["edges"]
            if e["node"]["name"] == "鲜做糖醋排骨"
        )
        marks = [
            {"input": {"storeId": STORE, "skuId": s["id"], "soldOut": True}} for s in dish["skus"]
        ]
        for mark in marks:
            await served.write(SOLD_OUT, mark, hq)
        try:
            assert "鲜做糖醋排骨" not in _names(await _search(client, "tcpg"))
        finally:
            for mark in marks:
                mark["input"]["soldOut"] = False
                await served.write(SOLD_OUT, mark, hq)
        assert "鲜做糖醋排骨" in _names(await _search(client, "tcpg"))

        assert "鱼香茄子煲" not in _names(await _search(client, "矮瓜"))
        given = {"input": {"term": "茄子", "synonyms": ["紫色茄子", " 矮瓜 "]}}
        try:
            payload = await served.write(SET_SYNONYMS, given, hq)
            assert payload["synonym"] == {"term": "茄子", "synonyms": ["紫色茄子", "矮瓜"]}
            assert "鱼香茄子煲" in _names(await _search(client, "矮瓜"))
            listed = (await client.execute(SYNONYMS, headers=credentials.operator))["data"]
            assert {"term": "茄子", "synonyms": ["紫色茄子", "矮瓜"]} in [
                {k: s[k] for k in ("term", "synonyms")} for s in listed["searchSynonyms"]
            ]
            audit = await client.execute(AUDIT, headers=hq)
            assert audit["data"]["auditLog"]["edges"][0]["node"] == {
                "action": "setSearchSynonyms",
                "outcome": "DONE",
            }
        finally:
            forget = {"input": {"term": "茄子", "synonyms": []}}
            await served.write(SET_SYNONYMS, forget, hq)
        assert "鱼香茄子煲" not in _names(await _search(client, "矮瓜"))
    async with engine.connect() as conn:
        left = await conn.scalar(sa.select(sa.func.count()).where(search_synonyms.c.term == "茄子"))
    assert left == 0


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({"term": " ", "synonyms": ["x"]}, "REQUIRED", ["term"]),
        ({"term": "茄子", "synonyms": ["a" * 21]}, "TOO_LONG", ["synonyms", "0"]),
        ({"term": "茄子", "synonyms": [str(n) for n in range(21)]}, "OUT_OF_RANGE", ["synonyms"]),
    ],
)
async def test_bad_synonyms_are_refused_and_change_nothing(
    gql: GraphQLClient,
    credentials: Credentials,
    given: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    body = await gql.execute(SET_SYNONYMS, {"input": given}, headers=credentials.hq_admin)
    assert body["data"]["setSearchSynonyms"] == {
        "synonym": None,
        "errors": [{"code": code, "field": field}],
    }


async def test_only_head_office_keeps_synonyms(
    gql: GraphQLClient, credentials: Credentials
) -> None:
    given = {"input": {"term": "茄子", "synonyms": ["矮瓜"]}}
    for who, code in (
        (credentials.member, "FORBIDDEN"),
        (credentials.manager_store_1, "FORBIDDEN"),
        ({}, "UNAUTHENTICATED"),
    ):
        body = await gql.execute(SET_SYNONYMS, given, headers=who)
        assert body["data"]["setSearchSynonyms"]["errors"][0]["code"] == code
        body = await gql.execute(SYNONYMS, headers=who)
        assert body["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_synonyms_set_through_one_process_reach_another_processs_index(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, broker: str
) -> None:
    url = broker_url(settings, broker)
    hq = credentials.hq_admin
    # A long max age: only the broker's news can make B build its index again.
    async with (
        serving(settings, engine, broker_url=url, read_cache_max_age_seconds=600) as a,
        serving(settings, engine, broker_url=url, read_cache_max_age_seconds=600) as b,
    ):
        reader = GraphQLClient(b.http)
        assert "鱼香茄子煲" not in _names(await _search(reader, "矮瓜"))
        built = b.services.search.builds
        given = {"input": {"term": "茄子", "synonyms": ["矮瓜"]}}
        await a.write(SET_SYNONYMS, given, hq)
        try:
            deadline = time.monotonic() + 10.0
            while "鱼香茄子煲" not in _names(await _search(reader, "矮瓜")):
                assert b.services.search.builds == built, "built again, yet without the synonym"
                assert time.monotonic() < deadline, "the other process never heard of it"
                await asyncio.sleep(0.02)
            assert b.services.search.builds == built + 1
        finally:
            await a.write(SET_SYNONYMS, {"input": {"term": "茄子", "synonyms": []}}, hq)
