"""Requests no client should send are refused at the edge, cheaply and with a clear reason.

Bad scalar variables, characters no database stores, oversized bodies, deep nesting and
costly operations each answer a request error in production mode: never a 5xx, never an
INTERNAL_SERVER_ERROR or an internal message, never an ERROR on the `dinegraph.errors` log,
and nothing is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import OperationDefinitionNode, parse
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.db import tables
from dinegraph.resolvers.ids import encode_id
from dinegraph.resolvers.pagination import DEFAULT_PAGE_SIZE
from dinegraph.schema import build_schema
from dinegraph.schema.limits import CostRules, operation_cost
from dinegraph.settings import Mode, Settings
from tests.conftest import Credentials, make_settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
STORE_1 = encode_id("Store", 1)
INTERNALS = ("Internal server error", "Traceback", "recursion", "Exception", "sqlalchemy", "codec")


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


@pytest.fixture
async def production(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(settings.database_url, mode=Mode.PRODUCTION), engine)
    async with _client(app) as client:
        yield client


@pytest.fixture(params=[Mode.PRODUCTION, Mode.DEVELOPMENT], ids=lambda mode: mode.value)
async def either_mode(
    request: pytest.FixtureRequest, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(settings.database_url, mode=request.param), engine)
    async with _client(app) as client:
        yield client


@pytest.fixture
def no_incident(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No unexpected error is logged: the refusals below are all expected ones."""
    with caplog.at_level(logging.DEBUG, logger="dinegraph.errors"):
        yield
    incidents = [
        r for r in caplog.records if r.name == "dinegraph.errors" and r.levelno >= logging.ERROR
    ]
    assert not incidents, [r.getMessage() for r in incidents]


def _refused(response: httpx.Response, *, status: int = 400) -> dict[str, Any]:
    """A request error: the status asked, no `data`, one error free of internals."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body or body["data"] is None, body
    [error] = body["errors"]
    assert error["message"] and not any(word in error["message"] for word in INTERNALS), error
    assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"
    return dict(error)


async def _post_raw(
    client: httpx.AsyncClient, body: str, accept: str = GRAPHQL_RESPONSE, **headers: str
) -> httpx.Response:
    return await client.post(
        "/graphql",
        content=body.encode(),
        headers={"content-type": "application/json", "accept": accept, **headers},
    )


# --- variables of built-in scalars that do not coerce -----------------------------------

INT_QUERY = "query($n: Int) { stores(first: $n) { totalCount } }"
FLOAT_QUERY = "query($lat: Float!) { stores(near: {lat: $lat, lng: 114}, first: 1) { totalCount } }"


@pytest.mark.parametrize(
    ("query", "raw_value", "reason"),
    [
        (INT_QUERY, "99999999999999999999", "non 32-bit signed integer"),
        (INT_QUERY, "2147483648", "non 32-bit signed integer"),
        (INT_QUERY, "1.5", "non-integer"),
        (FLOAT_QUERY, "NaN", "non numeric value"),
        (FLOAT_QUERY, "Infinity", "non numeric value"),
        (FLOAT_QUERY, "-Infinity", "non numeric value"),
        (FLOAT_QUERY, "1e400", "non numeric value"),
    ],
)
async def test_a_variable_a_built_in_scalar_cannot_hold_is_a_request_error(
    either_mode: httpx.AsyncClient, no_incident: None, query: str, raw_value: str, reason: str
) -> None:
    # Python's JSON decoder reads NaN and Infinity, and 1e400 as infinity: the value reaches
    # the scalar, which refuses it as it refuses the same literal written inline.
    name = query.split("$")[1].split(":")[0]
    body = f'{{"query": {json.dumps(query)}, "variables": {{"{name}": {raw_value}}}}}'
    error = _refused(await _post_raw(either_mode, body))
    assert error["message"].startswith(f"Variable '${name}' has invalid value"), error
    assert reason in error["message"]
    # application/json clients get the same error with 200 and `data: null`.
    plain = await _post_raw(either_mode, body, accept="application/json")
    assert plain.status_code == 200 and plain.json()["data"] is None
    assert plain.json()["errors"][0]["message"] == error["message"]
    # And so do queries over GET, whose variables are JSON in the query string.
    got = await either_mode.get(
        "/graphql",
        params={"query": query, "variables": f'{{"{name}": {raw_value}}}'},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert _refused(got)["message"] == error["message"]


async def test_the_same_value_inline_is_refused_by_validation_alike(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    inline = "{ stores(first: 99999999999999999999) { totalCount } }"
    error = _refused(
        await production.post(
            "/graphql", json={"query": inline}, headers={"accept": GRAPHQL_RESPONSE}
        )
    )
    assert "non 32-bit signed integer" in error["message"]


async def test_an_integer_of_thousands_of_digits_is_not_json_we_read(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    body = f'{{"query": {json.dumps(INT_QUERY)}, "variables": {{"n": 1{"0" * 5000}}}}}'
    response = await _post_raw(production, body)
    assert response.status_code == 400 and "JSON" in response.text
    not_utf8 = await production.post(
        "/graphql",
        content=b'{"query": "{ __typename }", "variables": {"s": "\xff"}}',
        headers={"content-type": "application/json"},
    )
    assert not_utf8.status_code == 400 and "JSON" in not_utf8.text


# --- characters no database can store ---------------------------------------------------

CREATE_CATEGORY = """mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { category { id } errors { code } } }"""


async def _categories(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).select_from(tables.categories)) or 0
        )


@pytest.mark.parametrize(
    "body",
    [
        # JSON escapes decode to a lone surrogate or a NUL in a variable, or in a key.
        '{"query": %s, "variables": {"input": {"name": "\\ud800x"}}}',
        '{"query": %s, "variables": {"input": {"name": "tail\\udfff"}}}',
        '{"query": %s, "variables": {"input": {"name": "a\\u0000b"}}}',
        '{"query": %s, "variables": {"input": {"name": "ok", "\\ud800": 1}}}',
        '{"query": %s, "variables": {"input": {"name": "ok"}}, "operationName": "\\ud800"}',
        '{"query": %s, "variables": {"input": {"name": "ok"}}, "extensions": {"x": "\\u0000"}}',
    ],
    ids=["lone high", "lone low", "nul", "key", "operation name", "extensions"],
)
async def test_unstorable_characters_in_a_request_are_refused_before_it_runs(
    production: httpx.AsyncClient,
    credentials: Credentials,
    engine: AsyncEngine,
    no_incident: None,
    body: str,
) -> None:
    before = await _categories(engine)
    response = await _post_raw(
        production, body % json.dumps(CREATE_CATEGORY), **credentials.hq_admin
    )
    error = _refused(response)
    assert error["extensions"] == {"code": "INVALID_CHARACTERS"}
    assert await _categories(engine) == before
    plain = await _post_raw(
        production,
        body % json.dumps(CREATE_CATEGORY),
        accept="application/json",
        **credentials.hq_admin,
    )
    assert plain.status_code == 200 and plain.json()["data"] is None


@pytest.mark.parametrize(
    "literal",
    ['"a\\u0000b"', '"x\\u{0}"', '"""block\u0000"""', '"\ud800"'],
    ids=["nul escape", "braced nul escape", "nul in a block string", "raw surrogate"],
)
async def test_unstorable_characters_in_the_document_are_refused(
    production: httpx.AsyncClient,
    credentials: Credentials,
    engine: AsyncEngine,
    no_incident: None,
    literal: str,
) -> None:
    before = await _categories(engine)
    query = f"mutation {{ createCategory(input: {{name: {literal}}}) {{ errors {{ code }} }} }}"
    response = await production.post(
        "/graphql",
        content=json.dumps({"query": query}).encode(),
        headers={
            "content-type": "application/json",
            "accept": GRAPHQL_RESPONSE,
            **credentials.hq_admin,
        },
    )
    error = _refused(response)
    # Escapes are checked once parsed; raw characters before the document is parsed.
    assert error["extensions"] == {"code": "INVALID_CHARACTERS"}
    assert await _categories(engine) == before


async def test_a_surrogate_pair_is_one_character_and_welcome(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    # 😀 written as the JSON escapes of its UTF-16 pair: an ordinary character.
    query = json.dumps("query($s: String!) { shareInvite(shareCode: $s) { kind } }")
    body = f'{{"query": {query}, "variables": {{"s": "\\ud83d\\ude00"}}}}'
    response = await _post_raw(production, body, accept="application/json")
    assert response.status_code == 200
    assert all(
        e.get("extensions", {}).get("code") != "INVALID_CHARACTERS"
        for e in response.json().get("errors", [])
    )


# --- sizes --------------------------------------------------------------------------------


@pytest.fixture
async def small_bodies(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(settings.database_url, mode=Mode.PRODUCTION, max_body_bytes=4096), engine
    )
    async with _client(app) as client:
        yield client


async def test_a_body_beyond_the_limit_is_refused_by_its_length(
    small_bodies: httpx.AsyncClient, no_incident: None
) -> None:
    query = "{ stores(first: 1) { totalCount } }"
    fits = json.dumps({"query": query, "variables": {"pad": "x" * 3500}})
    assert len(fits) <= 4096
    ok = await small_bodies.post(
        "/graphql", content=fits, headers={"content-type": "application/json"}
    )
    assert ok.status_code == 200 and ok.json()["data"]["stores"]["totalCount"] > 0
    over = json.dumps({"query": query, "variables": {"pad": "x" * 5000}})
    error = _refused(
        await small_bodies.post(
            "/graphql", content=over, headers={"content-type": "application/json"}
        ),
        status=413,
    )
    assert error["extensions"] == {"code": "REQUEST_TOO_LARGE"}
    assert "4096 bytes" in error["message"]


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    """No Content-Length (chunked): the server stops reading at the limit, not at 8 MB."""
    sent = 0

    async def eight_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(128):
            sent += 1
            yield b"x" * 65536
        yield b'"}}'

    response = await production.post(
        "/graphql", content=eight_megabytes(), headers={"content-type": "application/json"}
    )
    assert _refused(response, status=413)["extensions"] == {"code": "REQUEST_TOO_LARGE"}
    assert sent <= 256 * 1024 // 65536 + 1  # the default limit, 256 KiB, and one chunk more


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "query($s: String) { __typename }", "variables": {"s": "x" * 10_000_000}},
        {"query": "{ " + "__typename " * 800_000 + "}"},
    ],
    ids=["10 MB variable", "8 MB document"],
)
async def test_huge_variables_and_documents_are_refused_unread(
    production: httpx.AsyncClient, no_incident: None, payload: dict[str, Any]
) -> None:
    response = await production.post("/graphql", json=payload)
    assert _refused(response, status=413)["extensions"] == {"code": "REQUEST_TOO_LARGE"}


# --- nesting --------------------------------------------------------------------------------


def _fragment_chain(length: int) -> str:
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(1, length))
    return f"{{ ...F1 }} {fragments} fragment F{length} on Query {{ __typename }}"


@pytest.mark.parametrize("length", [70, 250, 300])  # 300 spreads: 2100 tokens
async def test_a_long_chain_of_fragment_spreads_is_refused_before_validation(
    either_mode: httpx.AsyncClient, no_incident: None, length: int
) -> None:
    response = await either_mode.post(
        "/graphql", json={"query": _fragment_chain(length)}, headers={"accept": GRAPHQL_RESPONSE}
    )
    error = _refused(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "64 levels" in error["message"]


async def test_a_short_chain_of_fragment_spreads_runs(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    body = (await production.post("/graphql", json={"query": _fragment_chain(10)})).json()
    assert body == {"data": {"__typename": "Query"}}


async def test_fragments_that_multiply_when_expanded_are_refused(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    # Each F(i) reaches F(i+1) twice, through itself and through G(i+1): 2^24 paths.
    parts = ["{ ...F0 }"]
    for i in range(24):
        parts.append(f"fragment F{i} on Query {{ ...F{i + 1} ...G{i + 1} }}")
        parts.append(f"fragment G{i + 1} on Query {{ ...F{i + 1} }}")
    parts.append("fragment F24 on Query { __typename }")
    response = await production.post(
        "/graphql", json={"query": " ".join(parts)}, headers={"accept": GRAPHQL_RESPONSE}
    )
    error = _refused(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
async def test_json_nested_too_deeply_is_refused(
    production: httpx.AsyncClient, no_incident: None, depth: int
) -> None:
    nested = "[" * depth + "]" * depth
    body = f'{{"query": "{{ __typename }}", "variables": {{"deep": {nested}}}}}'
    response = await _post_raw(production, body)
    assert response.status_code == 400
    assert "nested more than 64 levels deep" in response.text
    if depth <= 1000:  # a query string of that size
        got = await production.get(
            "/graphql", params={"query": "{ __typename }", "variables": f'{{"deep": {nested}}}'}
        )
        assert got.status_code == 400 and "nested more than 64 levels deep" in got.text


async def test_json_nested_within_the_limit_is_read(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    nested = "[" * 60 + "]" * 60
    body = f'{{"query": "{{ __typename }}", "variables": {{"deep": {nested}}}}}'
    response = await _post_raw(production, body, accept="application/json")
    assert response.json() == {"data": {"__typename": "Query"}}


# --- cost -----------------------------------------------------------------------------------

MENU = """query($store: ID!) { menu(storeId: $store, channel: DELIVERY) {
  categories { id name products { id name skus { id name specs { name value }
    price { fen display } components { quantity sku { id name } } } } } } }"""
PAGED = "query($n: Int) { stores(first: $n) { edges { node { id name } } } }"


@pytest.fixture
async def cheap(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(settings.database_url, mode=Mode.PRODUCTION, max_query_cost=300), engine
    )
    async with _client(app) as client:
        yield client


async def test_an_operation_above_the_cost_limit_is_refused_before_it_runs(
    production: httpx.AsyncClient, no_incident: None
) -> None:
    # Three whole menus: 10 categories × 10 products × 10 SKUs each, by the estimate.
    menus = " ".join(
        f"{alias}: menu(storeId: $store, channel: DELIVERY) {{ categories {{ products {{ skus {{ "
        "id name specs { name value } price { fen display } components { quantity sku { id } } "
        "} } } }"
        for alias in ("a", "b", "c")
    )
    response = await production.post(
        "/graphql",
        json={"query": f"query($store: ID!) {{ {menus} }}", "variables": {"store": STORE_1}},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    error = _refused(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    cost = error["extensions"]["cost"]
    assert cost["maximum"] == 100_000 and cost["requested"] > 100_000
    assert "ask for smaller pages" in error["message"]
    # One menu is within it.
    one = await production.post("/graphql", json={"query": MENU, "variables": {"store": STORE_1}})
    assert one.status_code == 200 and "errors" not in one.json(), one.json()


async def test_the_cost_counts_the_page_asked_for(
    cheap: httpx.AsyncClient, no_incident: None
) -> None:
    # stores(first: n) { edges { node { id name } } } costs 1 + 4n: the field, then per
    # store an edge, a node and two fields.
    small = await cheap.post("/graphql", json={"query": PAGED, "variables": {"n": 5}})
    assert small.status_code == 200 and "errors" not in small.json()
    large = await cheap.post(
        "/graphql",
        json={"query": PAGED, "variables": {"n": 100}},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    error = _refused(large)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": {"requested": 401, "maximum": 300},
    }
    # Without `first`, the default page (20 stores) is counted: within the limit.
    default = await cheap.post("/graphql", json={"query": PAGED})
    assert "errors" not in default.json()
    # A page beyond the maximum is refused by the field, not counted past it.
    beyond = await cheap.post("/graphql", json={"query": "{ stores(first: 101) { totalCount } }"})
    assert beyond.json()["errors"][0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def test_development_reports_the_cost_and_production_does_not(
    settings: Settings, engine: AsyncEngine, production: httpx.AsyncClient
) -> None:
    async with _client(create_app(settings, engine)) as development:
        body = (
            await development.post("/graphql", json={"query": PAGED, "variables": {"n": 10}})
        ).json()
    assert body["extensions"] == {"cost": {"requested": 41, "maximum": 100_000}}
    prod = (await production.post("/graphql", json={"query": PAGED, "variables": {"n": 10}})).json()
    assert "extensions" not in prod


def test_the_mini_programs_documents_are_within_the_default_limit() -> None:
    """Each at its largest: every variable `first` at the maximum page."""
    defaults = Settings()
    schema = build_schema(defaults)._schema
    rules = CostRules(
        list_size=defaults.query_cost_list_size,
        default_page=DEFAULT_PAGE_SIZE,
        max_page=defaults.max_page_size,
    )
    manifest = Path(__file__).parents[2] / "clients/miniprogram/persisted-documents.json"
    documents = json.loads(manifest.read_text())
    assert documents
    for text in documents.values():
        document = parse(text)
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            name = operation.name.value if operation.name else None
            variables = {
                v.variable.name.value: defaults.max_page_size
                for v in operation.variable_definitions or ()
            }
            cost = operation_cost(schema, document, name, variables, rules)
            assert cost is not None and cost <= defaults.max_query_cost, (name, cost)


async def test_a_websocket_message_too_large_closes_the_socket_under_any_server() -> None:
    """uvicorn refuses it unread (`dinegraph serve` gives it the limit); the app refuses it
    too, under a server that was not told."""
    from dinegraph.request_limits import SizeLimitMiddleware

    seen: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    incoming = [
        {"type": "websocket.receive", "text": "x" * 100},
        {"type": "websocket.receive", "text": "x" * 5000},
        {"type": "websocket.receive", "text": "never read"},
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (message := await receive())["type"] != "websocket.disconnect":
            seen.append(message)
        seen.append(message)
        await send({"type": "websocket.close", "code": 1000})

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    limited = SizeLimitMiddleware(app, max_body_bytes=4096, max_ws_message_bytes=4096)
    await limited({"type": "websocket", "headers": []}, receive, send)
    assert [m.get("text", m["type"]) for m in seen] == ["x" * 100, "websocket.disconnect"]
    assert sent == [{"type": "websocket.close", "code": 1009, "reason": "Too big"}]


@pytest.mark.parametrize("body", ["0", '"query"', "null", "true", "", "  7"])
async def test_a_json_body_that_is_no_object_is_a_bad_request(
    production: httpx.AsyncClient, no_incident: None, body: str
) -> None:
    response = await _post_raw(production, body)
    assert response.status_code == 400, response.text
