"""GraphQL over HTTP: GET for queries only, credentials, abuse limits, production masking."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.schema.query import Query
from dinegraph.settings import ConfigurationError, Mode, Settings
from tests.conftest import make_settings


@pytest.fixture
async def production(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    prod = make_settings(settings.database_url, mode=Mode.PRODUCTION, max_query_depth=6)
    app = create_app(prod, engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        yield client


@pytest.fixture
async def development(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


@pytest.fixture(params=[Mode.PRODUCTION, Mode.DEVELOPMENT], ids=lambda mode: mode.value)
async def either_mode(
    request: pytest.FixtureRequest, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(settings.database_url, mode=request.param), engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        yield client


async def test_queries_work_over_get_and_mutations_do_not(development: httpx.AsyncClient) -> None:
    ok = await development.get("/graphql", params={"query": "{ stores(first: 1) { totalCount } }"})
    assert ok.status_code == 200 and ok.json()["data"]["stores"]["totalCount"] > 0
    refused = await development.get(
        "/graphql",
        params={"query": 'mutation { createCategory(input: {name: "x"}) { errors { code } } }'},
    )
    assert refused.status_code == 400
    assert "mutations are not allowed" in refused.text.lower()


async def test_graphql_response_media_type_is_used_when_asked(
    development: httpx.AsyncClient,
) -> None:
    response = await development.post(
        "/graphql",
        json={"query": "{ stores(first: 1) { totalCount } }"},
        headers={"Accept": "application/graphql-response+json, application/json"},
    )
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    plain = await development.post(
        "/graphql", json={"query": "{ stores(first: 1) { totalCount } }"}
    )
    assert plain.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Api-Key": "dg_0000_nothing"},
        {"X-Api-Key": "garbage"},
    ],
)
async def test_bad_credentials_are_refused_outright(
    development: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await development.post(
        "/graphql", json={"query": "{ categories { id } }"}, headers=headers
    )
    assert response.status_code == 401


async def test_an_expired_token_is_refused(
    development: httpx.AsyncClient, settings: Settings
) -> None:
    from datetime import UTC, datetime, timedelta

    from dinegraph.domain.identity import StaffRole, StaffViewer
    from dinegraph.security import issue_staff_token

    staff = StaffViewer(staff_id=1, username="x", role=StaffRole.HQ_ADMIN, store_ids=frozenset())
    old = issue_staff_token(settings, staff, now=datetime.now(UTC) - timedelta(days=2))
    response = await development.post(
        "/graphql",
        json={"query": "{ categories { id } }"},
        headers={"Authorization": f"Bearer {old}"},
    )
    assert response.status_code == 401


def _nested(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"parent {{ {inner} }}"
    return f"{{ categories {{ {inner} }} }}"


async def test_depth_alias_and_token_limits(production: httpx.AsyncClient) -> None:
    deep = (await production.post("/graphql", json={"query": _nested(10)})).json()
    assert "exceeds maximum operation depth" in deep["errors"][0]["message"]
    aliases = " ".join(f"a{i}: categories {{ id }}" for i in range(31))
    many = (await production.post("/graphql", json={"query": f"{{ {aliases} }}"})).json()
    assert "aliases found" in many["errors"][0]["message"]
    tokens = "{ " + " ".join("__typename" for _ in range(3100)) + " }"
    long = (await production.post("/graphql", json={"query": tokens})).json()
    assert "more than 3000 tokens" in long["errors"][0]["message"]


async def test_a_spread_of_an_undefined_fragment_is_refused_not_a_server_error(
    either_mode: httpx.AsyncClient,
) -> None:
    # A client sending a document without the fragment file it spreads, at any depth.
    for query in (
        "query Q { categories { ...Missing } }",
        "query Q { categories { ...Known } } fragment Known on Category { id ...Missing }",
        "query Q { categories { id ... on Category { ...Missing } } }",
    ):
        response = await either_mode.post("/graphql", json={"query": query})
        assert response.status_code == 200, response.text
        (error,) = response.json()["errors"]
        assert error["message"] == "Unknown fragment 'Missing'.", error
        assert error["locations"], error


async def test_production_hides_introspection_suggestions_and_the_ide(
    production: httpx.AsyncClient, development: httpx.AsyncClient
) -> None:
    intro = (
        await production.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    ).json()
    assert intro.get("data") is None and intro["errors"]
    typo = (await production.post("/graphql", json={"query": "{ storez { totalCount } }"})).json()
    assert "Did you mean" not in typo["errors"][0]["message"]
    dev_typo = (
        await development.post("/graphql", json={"query": "{ storez { totalCount } }"})
    ).json()
    assert "Did you mean" in dev_typo["errors"][0]["message"]
    ide = await production.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in ide.text.lower()
    dev_ide = await development.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" in dev_ide.text.lower()


async def test_production_masks_unexpected_errors_with_a_request_id(
    production: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: Query, info: object) -> list[object]:
        raise RuntimeError("secret connection string leaked here")

    monkeypatch.setattr(Query, "categories", broken)
    definition = Query.__strawberry_definition__  # type: ignore[attr-defined]
    field = next(f for f in definition.fields if f.name == "categories")
    monkeypatch.setattr(field.base_resolver, "wrapped_func", broken)
    with caplog.at_level(logging.ERROR, logger="dinegraph.errors"):
        body = (await production.post("/graphql", json={"query": "{ categories { id } }"})).json()
    error = body["errors"][0]
    assert "secret" not in error["message"]
    request_id = error["extensions"]["requestId"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert request_id in error["message"]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


STORE_1 = "U3RvcmU6MQ=="  # Store:1


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        (
            f'{{ stockLedger(storeId: "{STORE_1}") {{ edges {{ cursor }} }} }}',
            "UNAUTHENTICATED",
            None,
        ),
        (
            f'{{ storeOrders(storeId: "{STORE_1}") {{ edges {{ cursor }} }} }}',
            "UNAUTHENTICATED",
            None,
        ),
        (f'{{ deliveriesInProgress(storeId: "{STORE_1}") {{ id }} }}', "UNAUTHENTICATED", None),
        ('{ stockLedger(storeId: "bm9wZQ==") { edges { cursor } } }', "INVALID_ID", ["storeId"]),
        ('{ stores(after: "not-a-cursor") { totalCount } }', "INVALID_CURSOR", ["after"]),
        ("{ stores(first: 101) { totalCount } }", "PAGE_SIZE_TOO_LARGE", ["first"]),
    ],
)
async def test_expected_refusals_keep_their_code_and_field_in_every_mode(
    either_mode: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    query: str,
    code: str,
    field: list[str] | None,
) -> None:
    client = either_mode
    with caplog.at_level(logging.DEBUG, logger="dinegraph.errors"):
        body = (await client.post("/graphql", json={"query": query})).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert error["extensions"].get("field") == field
    assert "Internal server error" not in error["message"] and error["message"]
    # An expected refusal is no incident: logged at DEBUG, without a traceback.
    ours = [r for r in caplog.records if r.name == "dinegraph.errors"]
    assert ours and all(r.levelno == logging.DEBUG and not r.exc_info for r in ours)


def test_production_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="DINEGRAPH_SECRET_KEY"):
        Settings(mode=Mode.PRODUCTION, secret_key=None).check_servable()
    with pytest.raises(ConfigurationError, match="at least 32"):
        Settings(mode=Mode.PRODUCTION, secret_key=SecretStr("short")).check_servable()
    Settings(mode=Mode.DEVELOPMENT).check_servable()


async def test_health(development: httpx.AsyncClient) -> None:
    response = await development.get("/health")
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"broker_url": "kafka://x"}, "not supported"),
        ({"broker_url": "postgres://localhost/db"}, "same PostgreSQL database"),
        ({"workers": 2}, "shared broker"),
    ],
)
def test_broker_settings_that_cannot_work_are_refused_at_start(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(database_url="sqlite+aiosqlite:///x.db", **changes).check_servable()  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_subscriptions_over_plain_http_are_refused_not_run(
    production: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    query = f'subscription {{ stockChanged(storeId: "{STORE_1}") {{ version }} }}'
    with caplog.at_level(logging.DEBUG, logger="dinegraph.errors"):
        if method == "GET":
            response = await production.get("/graphql", params={"query": query})
        else:
            response = await production.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert "subscriptions are not allowed" in response.text.lower()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
