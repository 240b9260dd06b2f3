"""Property-based fuzzing: no operation of the schema, and no request body, is an internal error.

Hypothesis (with hypothesis-graphql) writes queries and mutations over every root field of
schema.graphql, with IDs that are sometimes real (``Store:1``, ``Sku:130``) and sometimes junk,
odd dates, strings with NUL and lone surrogates, huge numbers and NaN in variables, and bodies
that are not GraphQL at all. They go to an app in production mode, anonymously, as head office
and as a member, on a database of its own (the demo chain), so mutations touch no other test.

The property, for every answer: no HTTP 5xx, no ``INTERNAL_SERVER_ERROR`` and no masked
``Internal server error``, no Python internals in any message, and no ERROR on the
``dinegraph.errors`` log. Expected refusals (``INVALID_ID``, ``FORBIDDEN``, validation
errors, 400 and 401) are all fine.

``make test`` runs a small derandomized budget. For a long random run::

    DINEGRAPH_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/integration/test_fuzz.py -p no:timeout
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from dinegraph.app import create_app
from dinegraph.db import identity as identity_db
from dinegraph.db.engine import create_engine
from dinegraph.db.seed import seed_demo
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.identity import StaffRole
from dinegraph.security import issue_member_token, issue_staff_token
from dinegraph.settings import Mode
from tests.conftest import make_settings
from tests.databases import fresh_database

SCHEMA_SDL = (Path(__file__).parents[2] / "schema.graphql").read_text()
SCHEMA = graphql.build_schema(SCHEMA_SDL)
assert SCHEMA.query_type and SCHEMA.mutation_type and SCHEMA.subscription_type
QUERY_FIELDS = sorted(SCHEMA.query_type.fields)
MUTATION_FIELDS = sorted(SCHEMA.mutation_type.fields)
ROOT_FIELDS = QUERY_FIELDS + MUTATION_FIELDS
NODE_TYPES = sorted(
    name
    for name, type_ in SCHEMA.type_map.items()
    if isinstance(type_, graphql.GraphQLObjectType)
    and any(interface.name == "Node" for interface in type_.interfaces)
)

# Failing examples may hold strings of tens of thousands of characters, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# A long run (random, bigger budget) when asked; otherwise small and reproducible for CI.
LONG_RUN = int(os.environ.get("DINEGRAPH_FUZZ_EXAMPLES", "0"))


def budget(examples: int) -> settings:
    return settings(
        max_examples=LONG_RUN or examples,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        print_blob=bool(LONG_RUN),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


# --- values -----------------------------------------------------------------------------

# Any code point, lone surrogates and NUL included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
NASTY_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "\udfff x",
            "𝕏" * 3,
            "' OR 1=1 --",
            "%s %d {0}",
            "\u202e",
            "null",
            "NaN",
            " ",
        ]
    ),
    st.sampled_from([1_000, 10_000, 40_000, 300_000]).map(lambda n: "长" * n),
)


def global_id(kind: str, raw: str) -> str:
    return base64.b64encode(f"{kind}:{raw}".encode("utf-8", "surrogatepass")).decode()


REAL_IDS = [
    global_id("Store", "1"),
    global_id("Store", "2"),
    global_id("Sku", "130"),
    global_id("Sku", "1"),
    global_id("Product", "1"),
    global_id("Category", "1"),
    global_id("Order", "1"),
    global_id("Member", "1"),
    global_id("Coupon", "1"),
    global_id("CouponTemplate", "1"),
    global_id("Campaign", "1"),
]
ODD_ID_TAILS = [
    "",
    "-1",
    "0",
    "1.5",
    "1e3",
    " 1",
    "1\x00",
    "0x10",
    "²",
    "١٢",
    "𝟙",
    "9" * 30,
    str(2**31),
    str(2**63),
    "1:2",
]
BIG = st.integers(2**31 - 1, 2**70).map(str)
GLOBAL_IDS = st.one_of(
    st.sampled_from(REAL_IDS),
    st.builds(global_id, st.sampled_from(NODE_TYPES), st.integers(0, 300).map(str)),
    # Weighted: well-formed IDs of the wrong kind, odd numbers and out-of-range ones.
    st.builds(global_id, st.sampled_from([*NODE_TYPES, "", "Nope"]), st.sampled_from(ODD_ID_TAILS)),
    st.builds(global_id, st.sampled_from(["Store", "Sku", "Order", "Product"]), BIG),
    st.builds(global_id, st.sampled_from(NODE_TYPES), BIG | st.sampled_from(ODD_ID_TAILS)),
    st.builds(global_id, st.sampled_from(NODE_TYPES), NASTY_TEXT),
    st.sampled_from(
        [
            "",
            "not base64!",
            "U3RvcmU6MQ",  # Store:1 without padding
            base64.b64encode(b"\xff\xfe\xfd").decode(),
            "=" * 8,
            "Store:1",
        ]
    ),
    NASTY_TEXT,
)
ISO_DATES = st.one_of(
    st.dates().map(date.isoformat),
    st.sampled_from(
        ["", "2024-02-30", "0000-01-01", "9999-12-31", "2024-1-1", "yesterday", "2024-01-01T00:00"]
    ),
    NASTY_TEXT,
)
OFFSETS = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
)
ISO_DATETIMES = st.one_of(
    st.datetimes(timezones=OFFSETS).map(datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "9999-12-31T23:59:59.999999",
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "",
        ]
    ),
    NASTY_TEXT,
)

# What hypothesis-graphql puts in documents for these scalars (String too, for NUL and
# surrogates; ID also as a huge Int literal, which GraphQL allows).
CUSTOM_SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "ID": st.one_of(*[GLOBAL_IDS.map(nodes.String)] * 4, st.integers().map(nodes.Int)),
    "String": NASTY_TEXT.map(nodes.String),
    "Date": ISO_DATES.map(nodes.String),
    "DateTime": ISO_DATETIMES.map(nodes.String),
}

# JSON written as is into a body, for what json.dumps will not write (NaN is fine there).
_RAW = "@@raw-{}@@"
_RAW_PATTERN = re.compile(r'"@@raw-([^@"]*)@@"')
HUGE_NUMBERS = st.sampled_from(
    [
        "9" * 5000,  # past Python's limit on digits in an int
        "-" + "9" * 40,
        "1e400",
        "-1e400",
        "1" + "0" * 400 + ".5",
        "1e-400",
    ]
).map(_RAW.format)
JUNK_SCALARS = st.one_of(
    st.integers(),
    st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324]),
    HUGE_NUMBERS,
    NASTY_TEXT,
    GLOBAL_IDS,
    ISO_DATETIMES,
    st.booleans(),
    st.none(),
)
JUNK_JSON = st.recursive(
    JUNK_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NASTY_TEXT, inner, max_size=4),
    max_leaves=12,
)
DEEP_JSON = st.builds(
    lambda depth, as_list: (
        (
            json.loads("[" * depth + "]" * depth)
            if depth < 900
            else _RAW.format("[" * depth + "]" * depth)
        )
        if as_list
        else _RAW.format('{"a":' * depth + "1" + "}" * depth)
    ),
    st.sampled_from([50, 500, 5000, 100_000]),
    st.booleans(),
)


def dumps(body: object) -> bytes:
    """JSON with NaN and Infinity as Python writes them, surrogates escaped, raw parts inlined."""
    text = json.dumps(body, allow_nan=True)
    return _RAW_PATTERN.sub(lambda m: m.group(1), text).encode()


# --- operations ---------------------------------------------------------------------------

DOCUMENTS = {
    name: from_schema(
        SCHEMA,
        fields=[name],
        custom_scalars=CUSTOM_SCALARS,
        codec=None,
        print_ast=lambda document: document,
    )
    for name in ROOT_FIELDS
}
DOCUMENT_NODES = st.sampled_from(ROOT_FIELDS).flatmap(lambda name: DOCUMENTS[name])
OPERATIONS = DOCUMENT_NODES.map(graphql.print_ast)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` (JSON) as it is, or with junk in some places."""
    choice = draw(st.integers(0, 9))
    if choice <= 3:
        return value
    if choice == 4:
        return draw(DEEP_JSON)
    if choice == 5 or not isinstance(value, dict | list):
        return draw(JUNK_JSON)
    if isinstance(value, list):
        return [draw(mutated(item)) for item in value] + draw(st.lists(JUNK_JSON, max_size=2))
    out = {key: draw(mutated(item)) for key, item in value.items()}
    if draw(st.booleans()):
        out[draw(NASTY_TEXT)] = draw(JUNK_JSON)
    return out


@st.composite
def with_variables(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A generated operation whose root arguments became variables, with junk among the values."""
    document = draw(DOCUMENT_NODES)
    [operation] = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    root = SCHEMA.get_root_type(operation.operation)
    assert root is not None
    definitions: list[graphql.VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    selections = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, graphql.FieldNode) or selection.name.value not in root.fields:
            selections.append(selection)
            continue
        arguments = []
        for argument in selection.arguments or ():
            name = f"v{len(definitions)}"
            arg_type = root.fields[selection.name.value].args[argument.name.value].type
            definitions.append(
                graphql.VariableDefinitionNode(
                    variable=graphql.VariableNode(name=graphql.NameNode(value=name)),
                    type=graphql.parse_type(str(arg_type)),
                    directives=(),
                )
            )
            variables[name] = draw(mutated(graphql.value_from_ast_untyped(argument.value)))
            arguments.append(
                graphql.ArgumentNode(
                    name=argument.name,
                    value=graphql.VariableNode(name=graphql.NameNode(value=name)),
                )
            )
        selections.append(replace(selection, arguments=tuple(arguments)))
    operation = replace(
        operation,
        variable_definitions=tuple(definitions),
        selection_set=graphql.SelectionSetNode(selections=tuple(selections)),
    )
    if draw(st.integers(0, 9)) == 0:  # a variable nobody declared, or a wrong-shaped whole
        variables[draw(NASTY_TEXT)] = draw(JUNK_JSON)
    return graphql.print_ast(graphql.DocumentNode(definitions=(operation,))), variables


SUBSCRIPTION_DOCUMENTS = [
    f"subscription {{ {name} }}" for name in sorted(SCHEMA.subscription_type.fields)
] + [
    'subscription { stockChanged(storeId: "U3RvcmU6MQ==") { version } }',
]


@dataclass(frozen=True)
class Request:
    method: str
    headers: dict[str, str]
    content: bytes | None = None
    query: str = ""  # of the URL, encoded


def post(body: object, content_type: str = "application/json") -> Request:
    return Request("POST", {"Content-Type": content_type}, content=dumps(body))


ODD_BODIES = st.one_of(
    st.builds(post, JUNK_JSON),
    st.builds(lambda query: post({"query": query}), JUNK_JSON),
    st.builds(
        lambda query, variables, name, extensions: post(
            {
                "query": query,
                "variables": variables,
                "operationName": name,
                "extensions": extensions,
            }
        ),
        OPERATIONS,
        JUNK_JSON,
        JUNK_JSON,
        JUNK_JSON
        | st.builds(lambda h: {"persistedQuery": {"version": 1, "sha256Hash": h}}, JUNK_JSON),
    ),
    st.builds(lambda query: post({"query": query}), st.sampled_from(SUBSCRIPTION_DOCUMENTS)),
    st.builds(
        lambda depth, opener: post({"query": "{ stores(near: " + opener * depth + " { id } }"}),
        st.sampled_from([100, 3000, 50_000]),
        st.sampled_from(["[", "{a:", "("]),
    ),
    st.builds(
        lambda text: Request("POST", {"Content-Type": "application/json"}, content=text),
        st.binary(max_size=64) | st.just(b'{"query": "{ stores { totalCount } }"'),
    ),
    st.builds(
        lambda text: Request("POST", {"Content-Type": "application/graphql"}, content=text),
        st.text(ANY_CHAR, max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    st.builds(
        lambda query, variables: Request(
            "GET",
            {},
            # Cut short: a URL has room for a few kilobytes only.
            query=urlencode(
                {"query": query[:2000], "variables": variables[:2000]}, errors="surrogatepass"
            ),
        ),
        OPERATIONS,
        JUNK_JSON.map(lambda v: dumps(v).decode()),
    ),
)


# --- the app under test ------------------------------------------------------------------

LEAKS = (
    "traceback",
    "recursion",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "sqlite3",
    "psycopg",
    "object has no attribute",
    "nonetype",
    'file "',
    "internal server error",
)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Target:
    client: httpx.AsyncClient
    viewers: dict[str, dict[str, str]]
    errors: Records = field(default_factory=Records)

    async def send(self, request: Request, viewer: str, accept: str) -> None:
        """Send ``request``; fail with the request and the answer if it breaks the property."""
        self.errors.records.clear()
        headers = {**request.headers, **self.viewers[viewer], "Accept": accept}
        response = await self.client.request(
            request.method,
            f"/graphql?{request.query}" if request.query else "/graphql",
            headers=headers,
            content=request.content,
        )
        problems = []
        if response.status_code >= 500:
            problems.append(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        json_answer = "json" in response.headers.get("content-type", "")
        if response.status_code < 500 and json_answer and body is None:
            problems.append("a JSON answer that does not parse")
        answer_errors = body.get("errors") if isinstance(body, dict) else None
        for error in answer_errors if isinstance(answer_errors, list) else []:
            message = str(error.get("message", ""))
            code = (error.get("extensions") or {}).get("code")
            if code == "INTERNAL_SERVER_ERROR":
                problems.append(f"INTERNAL_SERVER_ERROR: {message}")
            problems.extend(
                f"{leak!r} in message: {message[:300]}" for leak in LEAKS if leak in message.lower()
            )
        for record in self.errors.records:
            summary = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                summary += f": {type(exc).__name__}: {str(exc)[:300]}"
            problems.append(f"ERROR logged by {record.name}: {summary}")
        if problems:
            shown = {
                "viewer": viewer,
                "accept": accept,
                "method": request.method,
                "body": (request.content or b"")[:3000].decode(errors="replace"),
                "query": request.query[:3000],
            }
            raise AssertionError(
                "\n".join(
                    [
                        *problems,
                        f"request: {json.dumps(shown, ensure_ascii=False)}",
                        f"answer ({response.status_code}): {response.text[:3000]}",
                    ]
                )
            )


@pytest.fixture(scope="module")
def fuzz_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo chain of the fuzzer's own: what its mutations do stays there."""
    with fresh_database(tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.fixture(scope="module")
async def target(fuzz_database: str) -> AsyncIterator[Target]:
    settings = make_settings(fuzz_database, mode=Mode.PRODUCTION)
    engine = create_engine(settings)
    log = logging.getLogger("dinegraph.errors")
    errors = Records()
    log.addHandler(errors)
    try:
        await seed_demo(engine)
        staff = await identity_db.ensure_staff(
            engine, username="fuzz-hq", role=StaffRole.HQ_ADMIN, store_ids=[]
        )
        async with SqlUnitOfWork(engine) as uow:
            member = await uow.members.add(phone="13800009999", openid=None, nickname="模糊")
            await uow.commit()
        viewers = {
            "anonymous": {},
            "hq_admin": {"Authorization": f"Bearer {issue_staff_token(settings, staff)}"},
            "member": {"Authorization": f"Bearer {issue_member_token(settings, member.id)}"},
        }
        app = create_app(settings, engine)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
            yield Target(client, viewers, errors)
    finally:
        log.removeHandler(errors)
        await engine.dispose()


VIEWERS = st.sampled_from(["anonymous", "hq_admin", "member"])
ACCEPTS = st.sampled_from(
    [
        "application/json",
        "application/graphql-response+json",
        "application/graphql-response+json, */*",
    ]
)


@budget(150)
@given(operation=OPERATIONS, viewer=VIEWERS, accept=ACCEPTS)
async def test_operations_of_the_schema_are_never_internal_errors(
    target: Target, operation: str, viewer: str, accept: str
) -> None:
    note(operation)
    await target.send(post({"query": operation}), viewer, accept)


@budget(100)
@given(call=with_variables(), viewer=VIEWERS, accept=ACCEPTS)
async def test_junk_in_variables_is_never_an_internal_error(
    target: Target, call: tuple[str, dict[str, Any]], viewer: str, accept: str
) -> None:
    query, variables = call
    await target.send(post({"query": query, "variables": variables}), viewer, accept)


@budget(50)
@given(request=ODD_BODIES, viewer=VIEWERS, accept=ACCEPTS)
async def test_odd_requests_are_never_internal_errors(
    target: Target, request: Request, viewer: str, accept: str
) -> None:
    await target.send(request, viewer, accept)


def test_the_fuzzer_knows_every_root_field() -> None:
    """Every query and mutation is generated: a new root field needs nothing here."""
    query, mutation = SCHEMA.query_type, SCHEMA.mutation_type
    assert query and mutation
    assert set(DOCUMENTS) == set(query.fields) | set(mutation.fields)
    assert {"Store", "Sku", "Order"} <= set(NODE_TYPES)
