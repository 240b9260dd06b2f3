"""Staff find the chain's products by part of a name (`products(query:)`), on SQLite by a
scan and on PostgreSQL through the pg_trgm index the migrations make; `%` and `_` typed are
letters, not wildcards; bad input is a coded error or an empty answer."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.search import select_products_named
from dinegraph.db.tables import categories, products
from dinegraph.resolvers.ids import encode_id
from tests.conftest import Credentials, GraphQLClient
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON

LOOKUP = """query($q: String!, $first: Int, $after: String) {
  products(query: $q, first: $first, after: $after) {
    edges { cursor node { id name listed } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _add_products(engine: AsyncEngine, names: list[str], *, listed: bool = True) -> None:
    async with engine.begin() as conn:
        category = await conn.scalar(sa.select(sa.func.min(categories.c.id)))
        await conn.execute(
            products.insert(),
            [
                {
                    "category_id": category,
                    "kind": "RETAIL",
                    "name": name,
                    "description": "",
                    "tags": [],
                    "image_urls": [],
                    "listed": listed,
                    "sort": 999,
                    "created_at": datetime.now(UTC),
                }
                for name in names
            ],
        )


async def _names_holding(engine: AsyncEngine, fragment: str) -> list[str]:
    """What the lookup must answer, worked out here: every name holding the fragment."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(products.c.name).order_by(products.c.id))).all()
    return [r.name for r in rows if fragment.lower() in r.name.lower()]


async def _lookup(client: GraphQLClient, headers: dict[str, str], **variables: Any) -> Any:
    body = await client.execute(LOOKUP, variables, headers)
    assert "errors" not in body, body
    return body["data"]["products"]


async def _all_pages(client: GraphQLClient, headers: dict[str, str], query: str) -> list[str]:
    names: list[str] = []
    after = None
    while True:
        page = await _lookup(client, headers, q=query, first=100, after=after)
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return names
        after = page["pageInfo"]["endCursor"]


async def test_staff_find_products_by_any_part_of_a_name(
    client: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    tag = uuid.uuid4().hex[:8]
    await _add_products(engine, [f"Lookup{tag} 冷冻小笼包"], listed=False)
    for fragment in ("糖醋", "排骨", "汤", "小笼", f"lookup{tag.upper()}", "鲜做糖醋排骨"):
        expected = await _names_holding(engine, fragment)
        assert expected, fragment
        assert await _all_pages(client, credentials.hq_admin, fragment) == expected, fragment
    # Unlisted products too, and letter case does not matter; spaces around are dropped.
    found = await _lookup(client, credentials.operator, q=f"  LOOKUP{tag}  ")
    assert [(e["node"]["name"], e["node"]["listed"]) for e in found["edges"]] == [
        (f"Lookup{tag} 冷冻小笼包", False)
    ]
    # A store manager finds them too (the product centre's store prices).
    by_manager = await _lookup(client, credentials.manager_store_1, q="糖醋")
    assert [e["node"]["name"] for e in by_manager["edges"]] == await _names_holding(engine, "糖醋")


async def test_pages_follow_one_another_by_id(
    client: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    expected = await _names_holding(engine, "糖醋")
    assert len(expected) >= 2
    seen: list[str] = []
    after = None
    for _ in expected:
        page = await _lookup(client, credentials.hq_admin, q="糖醋", first=1, after=after)
        seen += [e["node"]["name"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    assert not page["pageInfo"]["hasNextPage"]


async def test_percent_and_underscore_are_letters_not_wildcards(
    client: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"{tag}满50%减", f"{tag}满500减", f"{tag}套餐_A", f"{tag}套餐XA", f"{tag}反斜\\杠"]
    await _add_products(engine, names)
    for fragment, wanted in [
        ("50%", [names[0]]),
        (f"{tag}满5", names[:2]),
        ("餐_A", [names[2]]),
        ("\\", [names[4]]),
        ("%", [names[0]]),
        ("_", [names[2]]),
    ]:
        found = await _all_pages(client, credentials.hq_admin, fragment)
        assert [n for n in found if n.startswith(tag)] == wanted, fragment
        assert found == await _names_holding(engine, fragment), fragment


async def test_bad_input_is_a_coded_error_or_an_empty_answer(
    client: GraphQLClient, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    for empty in ("", "   ", "\t"):
        assert (await _lookup(client, hq, q=empty))["edges"] == []
    assert (await _lookup(client, hq, q="这个名字没有任何商品"))["edges"] == []
    cases: list[tuple[dict[str, Any], dict[str, str], str]] = [
        ({"q": "辣" * 51}, hq, "TOO_LONG"),
        ({"q": "x" * 10_240}, hq, "TOO_LONG"),
        ({"q": "糖醋", "first": 101}, hq, "PAGE_SIZE_TOO_LARGE"),
        ({"q": "糖醋", "first": -1}, hq, "PAGE_SIZE_TOO_LARGE"),
        ({"q": "糖醋", "after": "not-a-cursor"}, hq, "INVALID_CURSOR"),
        ({"q": "糖醋", "after": encode_id("Product", 1)}, hq, "INVALID_CURSOR"),
        ({"q": "糖醋"}, credentials.member, "FORBIDDEN"),
        ({"q": "糖醋"}, credentials.partner, "FORBIDDEN"),
        ({"q": "糖醋"}, {}, "UNAUTHENTICATED"),
    ]
    for variables, headers, code in cases:
        body = await client.execute(LOOKUP, variables, headers)
        assert body["data"] is None, (variables, body)
        assert body["errors"][0]["extensions"]["code"] == code, (variables, body)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason=SKIP_POSTGRES_REASON)
async def test_on_postgresql_the_trigram_index_serves_the_lookup(engine: AsyncEngine) -> None:
    """At a catalogue's size (the demo's hundred products are read whole faster than through
    any index), the planner takes the trigram index for the lookup's own statement."""
    pool = "糖醋排骨酸菜鱼小笼包红烧牛肉面鲜虾云吞蒸饺炒饭汤粉粥煲仔烧腊叉烧鸡鸭鹅豆腐青菜"
    made = random.Random(17)
    async with engine.connect() as conn:
        kind = await conn.scalar(
            sa.text(
                "SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'ix_products_name_trgm'"
            )
        )
        assert kind == "gin"
        category = await conn.scalar(sa.select(sa.func.min(categories.c.id)))
        await conn.execute(
            products.insert(),
            [
                {
                    "category_id": category,
                    "kind": "DISH",
                    "name": "".join(made.choices(pool, k=made.randint(4, 9))) + f" {n}",
                    "description": "",
                    "tags": [],
                    "image_urls": [],
                    "listed": True,
                    "sort": n,
                    "created_at": datetime.now(UTC),
                }
                for n in range(5000)
            ],
        )
        # As autovacuum would: the new rows' entries join the index proper, and the planner
        # learns the table's size.
        await conn.execute(sa.text("SELECT gin_clean_pending_list('ix_products_name_trgm')"))
        await conn.execute(sa.text("ANALYZE products"))
        # The planner takes it by itself at this size, and with sequential scans off (as on
        # a table of any size) it can serve every lookup.
        for seqscan in ("on", "off"):
            await conn.execute(sa.text(f"SET LOCAL enable_seqscan = {seqscan}"))
            for fragment, after in [
                ("糖醋排骨", None),
                ("小笼包", 10),
                ("50%减", None),
                ("Lookup", 3),
            ]:
                statement = select_products_named(fragment, after, 21).compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}
                )
                plan = "\n".join((await conn.execute(sa.text(f"EXPLAIN {statement}"))).scalars())
                assert "Bitmap Index Scan on ix_products_name_trgm" in plan, (seqscan, plan)
        await conn.rollback()  # the rows and their statistics
