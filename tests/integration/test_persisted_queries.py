"""Automatic persisted queries (Apollo's protocol) and trusted documents, over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.db.documents import SqlDocumentStore
from dinegraph.db.tables import persisted_documents
from dinegraph.persisted import manifest, operations_of, sha256_of
from dinegraph.settings import Settings
from tests.conftest import make_settings

GRAPHQL_RESPONSE = "application/graphql-response+json"


def _persisted(sha: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def _client(settings: Settings, engine: AsyncEngine, **overrides: Any) -> httpx.AsyncClient:
    app = create_app(make_settings(settings.database_url, **overrides), engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def client(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(settings, engine) as c:
        yield c


async def _stored(engine: AsyncEngine, sha: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).where(persisted_documents.c.sha256 == sha)
        )
    return bool(found)


async def test_an_unknown_hash_is_not_found_then_hash_and_query_store_it_for_later(
    client: httpx.AsyncClient, settings: Settings, engine: AsyncEngine
) -> None:
    query = "query CountStores { stores(first: 1) { totalCount } } # apq-1"
    sha = sha256_of(query)
    missing = await client.post("/graphql", json={"extensions": _persisted(sha)})
    assert missing.status_code == 200
    [error] = missing.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert not await _stored(engine, sha)

    sent = await client.post("/graphql", json={"query": query, "extensions": _persisted(sha)})
    assert sent.json()["data"]["stores"]["totalCount"] > 0
    assert await _stored(engine, sha)

    by_post = await client.post("/graphql", json={"extensions": _persisted(sha)})
    by_get = await client.get("/graphql", params={"extensions": json.dumps(_persisted(sha))})
    assert by_post.json() == by_get.json() == sent.json()

    # Another server process has none of this one's memory, only the database.
    async with _client(settings, engine) as other:
        again = await other.get("/graphql", params={"extensions": json.dumps(_persisted(sha))})
    assert again.json() == sent.json()


async def test_not_found_is_a_request_error_for_graphql_response_clients(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"extensions": _persisted("0" * 64)},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("extensions", "code"),
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": {"version": 1}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": "yes"}, "PERSISTED_QUERY_INVALID"),
        (_persisted("a" * 64), "PERSISTED_QUERY_HASH_MISMATCH"),
    ],
)
async def test_a_malformed_or_mismatched_hash_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, extensions: dict[str, Any], code: str
) -> None:
    query = "{ stores(first: 2) { totalCount } } # refused"
    async with engine.connect() as conn:
        before = await conn.scalar(sa.select(sa.func.count()).select_from(persisted_documents))
    response = await client.post("/graphql", json={"query": query, "extensions": extensions})
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert "data" not in response.json() or response.json()["data"] is None
    async with engine.connect() as conn:
        after = await conn.scalar(sa.select(sa.func.count()).select_from(persisted_documents))
    assert after == before


async def test_mutations_by_hash_still_refuse_get(client: httpx.AsyncClient) -> None:
    mutation = 'mutation { requestLoginCode(input: {phone: "13800000000"}) { errors { code } } }'
    sha = sha256_of(mutation)
    stored = await client.post(
        "/graphql", json={"query": mutation + " # apq", "extensions": _persisted(sha)}
    )
    assert stored.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    text = mutation + " # apq"
    await client.post("/graphql", json={"query": text, "extensions": _persisted(sha256_of(text))})
    by_get = await client.get(
        "/graphql", params={"extensions": json.dumps(_persisted(sha256_of(text)))}
    )
    assert by_get.status_code == 400
    assert "mutations are not allowed" in by_get.text.lower()


async def test_automatic_documents_are_bounded_and_the_oldest_go_first(
    engine: AsyncEngine,
) -> None:
    store = SqlDocumentStore(engine, max_automatic=3)
    trusted_text = "{ __typename } # trusted, never forgotten"
    await store.trust({sha256_of(trusted_text): trusted_text})
    trusted_before = await store.count(trusted=True)
    texts = [f"{{ __typename }} # bounded {n}" for n in range(6)]
    for text in texts:
        await store.remember(sha256_of(text), text)
    kept = [await store.get(sha256_of(text)) is not None for text in texts]
    assert kept == [False, False, False, True, True, True]
    assert await store.count(trusted=False) == 3
    assert await store.count(trusted=True) == trusted_before
    assert await store.get(sha256_of(trusted_text)) is not None


MINI = """
query StoreName($id: ID!) { node(id: $id) { ...StoreBits } }
query Nearby { stores(first: 1) { edges { node { ...StoreBits } } } }
fragment StoreBits on Store { id name }
fragment Unused on Store { id }
"""


def test_each_operation_becomes_a_document_with_the_fragments_it_uses() -> None:
    found = operations_of(MINI)
    assert set(found) == {"StoreName", "Nearby"}
    assert "fragment StoreBits" in found["Nearby"] and "Unused" not in found["Nearby"]
    assert "query StoreName" not in found["Nearby"]
    assert manifest([MINI]) == {sha256_of(text): text for text in found.values()}


async def test_trusted_mode_runs_registered_documents_only(
    settings: Settings, engine: AsyncEngine
) -> None:
    documents = manifest([MINI])
    await SqlDocumentStore(engine, max_automatic=10).trust(documents)
    nearby = operations_of(MINI)["Nearby"]
    stranger = "{ stores(first: 3) { totalCount } } # not registered"
    async with _client(settings, engine, trusted_documents_only=True) as trusted:
        by_hash = await trusted.get(
            "/graphql", params={"extensions": json.dumps(_persisted(sha256_of(nearby)))}
        )
        assert by_hash.json()["data"]["stores"]["edges"][0]["node"]["name"]
        by_text = await trusted.post("/graphql", json={"query": nearby})
        assert by_text.json() == by_hash.json()
        for body in (
            {"query": stranger},
            {"query": stranger, "extensions": _persisted(sha256_of(stranger))},
        ):
            refused = await trusted.post(
                "/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE}
            )
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        unknown = await trusted.post("/graphql", json={"extensions": _persisted("b" * 64)})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert not await _stored(engine, sha256_of(stranger))
