"""Head office manages staff accounts and partner keys; nobody else may. Disabling an
account or revoking a key is refused at once by another app instance on the broker."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import api_keys, audit_log, staff
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.databases import broker_url
from tests.staffing import ME, PASSWORD, REFRESH, bearer, login, new_staff, staff_app

BROKERS = ["postgres", "redis"]
HEARD_WITHIN_S = 10.0

ACCOUNT = "staff { id username displayName role storeIds totpEnabled mustChangePassword disabled }"
CREATE = f"""
mutation Create($input: CreateStaffAccountInput!) {{
  createStaffAccount(input: $input) {{ {ACCOUNT} errors {{ code field message }} }}
}}
"""
UPDATE = f"""
mutation Update($input: UpdateStaffAccountInput!) {{
  updateStaffAccount(input: $input) {{ {ACCOUNT} errors {{ code field }} }}
}}
"""
DISABLE = f"""
mutation Disable($id: ID!) {{
  disableStaffAccount(input: {{id: $id}}) {{ {ACCOUNT} errors {{ code field }} }}
}}
"""
ENABLE = f"""
mutation Enable($id: ID!) {{
  enableStaffAccount(input: {{id: $id}}) {{ {ACCOUNT} errors {{ code field }} }}
}}
"""
RESET = f"""
mutation Reset($id: ID!, $password: String!) {{
  resetStaffPassword(input: {{id: $id, temporaryPassword: $password}}) {{
    {ACCOUNT} errors {{ code field }}
  }}
}}
"""
CHANGE = """
mutation Change($current: String!, $new: String!) {
  changeMyPassword(input: {currentPassword: $current, newPassword: $new}) {
    staff { mustChangePassword } errors { code field }
  }
}
"""
ACCOUNTS = """
query Accounts($first: Int, $after: String, $filter: StaffAccountFilter) {
  staffAccounts(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id username role storeIds disabled } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREATE_KEY = """
mutation CreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    key
    apiKey { id name prefix scopes stores { id } partner lastUsedAt revokedAt }
    errors { code field }
  }
}
"""
KEYS = """
query Keys($first: Int, $after: String) {
  apiKeys(first: $first, after: $after) {
    edges { node { id name scopes lastUsedAt revokedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
REVOKE_KEY = """
mutation Revoke($id: ID!) {
  revokeApiKey(input: {id: $id}) { apiKey { id revokedAt } errors { code field } }
}
"""


def payload_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in answer, answer
    found: dict[str, Any] = next(iter(answer["data"].values()))
    return found


async def hq_session(gql: GraphQLClient, engine: AsyncEngine) -> dict[str, str]:
    return bearer(await login(gql, await new_staff(engine, role=StaffRole.HQ_ADMIN)))


async def staff_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(staff)) or 0)


def new_account(**fields: Any) -> dict[str, Any]:
    return {
        "input": {
            "username": fields.get("username", f"new-{time.monotonic_ns()}"),
            "displayName": "新店长",
            "role": fields.get("role", "STORE_MANAGER"),
            "storeIds": fields.get("storeIds", [encode_id("Store", 3)]),
            "password": fields.get("password", "first-password-1"),
        }
    }


async def test_head_office_creates_an_account_whose_holder_changes_the_password(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        created = payload_of(await gql.execute(CREATE, new_account(), headers=hq))
        assert created["errors"] == []
        account = created["staff"]
        assert account["role"] == "STORE_MANAGER" and account["displayName"] == "新店长"
        assert account["storeIds"] == [encode_id("Store", 3)]
        assert account["mustChangePassword"] is True and account["disabled"] is False

        session = await login(gql, account["username"], "first-password-1")
        assert session["errors"] == [] and session["staff"]["mustChangePassword"] is True
        changed = payload_of(
            await gql.execute(
                CHANGE,
                {"current": "first-password-1", "new": "my-own-password-2"},
                headers=bearer(session),
            )
        )
        assert changed == {"staff": {"mustChangePassword": False}, "errors": []}
        again = await login(gql, account["username"], "my-own-password-2")
        assert again["staff"]["mustChangePassword"] is False


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"password": "short-pw"}, "WEAK_PASSWORD", ["password"]),
        (
            {"username": "same-as-password", "password": "same-as-password"},
            "WEAK_PASSWORD",
            ["password"],
        ),
        ({"username": "x"}, "INVALID_INPUT", ["username"]),
        ({"username": "has space"}, "INVALID_INPUT", ["username"]),
        ({"storeIds": []}, "REQUIRED", ["storeIds"]),
        ({"storeIds": [encode_id("Store", 999_999)]}, "NOT_FOUND", ["storeIds"]),
        ({"storeIds": [encode_id("Sku", 1)]}, "INVALID_ID", ["storeIds", "0"]),
    ],
)
async def test_bad_accounts_are_refused_and_change_nothing(
    settings: Settings, engine: AsyncEngine, fields: dict[str, Any], code: str, field: list[str]
) -> None:
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        before = await staff_count(engine)
        refused = payload_of(await gql.execute(CREATE, new_account(**fields), headers=hq))
        assert refused["staff"] is None
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)]
        assert await staff_count(engine) == before


async def test_a_taken_username_is_a_duplicate(settings: Settings, engine: AsyncEngine) -> None:
    taken = await new_staff(engine)
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        before = await staff_count(engine)
        refused = payload_of(await gql.execute(CREATE, new_account(username=taken), headers=hq))
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [("DUPLICATE", ["username"])]
        assert await staff_count(engine) == before


async def test_only_head_office_manages_accounts_and_keys(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    manager = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[1])
    async with staff_app(settings, engine) as (gql, _):
        as_manager = bearer(await login(gql, manager))
        target = encode_id("StaffAccount", 1)
        for who, code in [
            (as_manager, "FORBIDDEN"),
            (credentials.operator, "FORBIDDEN"),
            (credentials.partner, "FORBIDDEN"),
            ({}, "UNAUTHENTICATED"),
        ]:
            before = await staff_count(engine)
            for document, variables in [
                (CREATE, new_account(storeIds=[encode_id("Store", 1)])),
                (UPDATE, {"input": {"id": target, "role": "HQ_ADMIN"}}),
                (DISABLE, {"id": target}),
                (ENABLE, {"id": target}),
                (RESET, {"id": target, "password": "a-temporary-one"}),
                (CREATE_KEY, {"input": {"name": "POS", "scopes": ["stock:read"]}}),
                (REVOKE_KEY, {"id": encode_id("ApiKey", 1)}),
            ]:
                refused = payload_of(await gql.execute(document, variables, headers=who))
                assert [e["code"] for e in refused["errors"]] == [code], (document, who)
            assert await staff_count(engine) == before
            for query in (ACCOUNTS, KEYS):
                answer = await gql.execute(query, {}, headers=who)
                assert answer["data"] is None
                assert answer["errors"][0]["extensions"]["code"] == code
        # A manager's own account shows its own stores only.
        me = await gql.execute(ME, headers=as_manager)
        assert [s["id"] for s in me["data"]["viewer"]["staff"]["stores"]] == [encode_id("Store", 1)]


async def test_accounts_are_listed_a_page_at_a_time_and_filtered(
    settings: Settings, engine: AsyncEngine
) -> None:
    store = 5
    names = [
        await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[store]) for _ in range(3)
    ]
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        filter_ = {"role": "STORE_MANAGER", "storeId": encode_id("Store", store)}
        seen: list[str] = []
        after = None
        while True:
            page = payload_of(
                await gql.execute(
                    ACCOUNTS, {"first": 2, "after": after, "filter": filter_}, headers=hq
                )
            )
            seen += [e["node"]["username"] for e in page["edges"]]
            assert all(e["node"]["role"] == "STORE_MANAGER" for e in page["edges"])
            assert len(page["edges"]) <= 2
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert [n for n in seen if n in names] == names
        disabled = payload_of(
            await gql.execute(DISABLE, {"id": await _id_of(gql, hq, names[1])}, headers=hq)
        )
        assert disabled["staff"]["disabled"] is True
        active = payload_of(
            await gql.execute(
                ACCOUNTS,
                {"first": 100, "filter": {**filter_, "includeDisabled": False}},
                headers=hq,
            )
        )
        listed = [e["node"]["username"] for e in active["edges"]]
        assert names[0] in listed and names[2] in listed and names[1] not in listed
        bad = await gql.execute(ACCOUNTS, {"first": 101}, headers=hq)
        assert bad["errors"][0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def _id_of(gql: GraphQLClient, hq: dict[str, str], username: str) -> str:
    after = None
    while True:
        page = payload_of(await gql.execute(ACCOUNTS, {"first": 100, "after": after}, headers=hq))
        for edge in page["edges"]:
            if edge["node"]["username"] == username:
                return str(edge["node"]["id"])
        assert page["pageInfo"]["hasNextPage"], username
        after = page["pageInfo"]["endCursor"]


async def test_updating_an_account_changes_what_it_may_do(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[1])
    async with staff_app(settings, engine, lifespan=True) as (gql, _):
        hq = await hq_session(gql, engine)
        manager = bearer(await login(gql, name))
        target = await _id_of(gql, hq, name)
        stores = [encode_id("Store", 2), encode_id("Store", 4)]
        updated = payload_of(
            await gql.execute(
                UPDATE,
                {"input": {"id": target, "displayName": "二四店店长", "storeIds": stores}},
                headers=hq,
            )
        )
        assert updated["errors"] == []
        assert updated["staff"]["storeIds"] == stores
        me = (await gql.execute(ME, headers=manager))["data"]["viewer"]["staff"]
        assert me["displayName"] == "二四店店长"
        assert [s["id"] for s in me["stores"]] == stores
        emptied = payload_of(
            await gql.execute(UPDATE, {"input": {"id": target, "storeIds": []}}, headers=hq)
        )
        assert [(e["code"], e["field"]) for e in emptied["errors"]] == [("REQUIRED", ["storeIds"])]
        # Head office cannot demote or disable the admin doing it.
        own = await _id_of(
            gql, hq, (await gql.execute(ME, headers=hq))["data"]["viewer"]["staff"]["username"]
        )
        demoted = payload_of(
            await gql.execute(UPDATE, {"input": {"id": own, "role": "OPERATOR"}}, headers=hq)
        )
        assert [e["code"] for e in demoted["errors"]] == ["FORBIDDEN"]
        itself = payload_of(await gql.execute(DISABLE, {"id": own}, headers=hq))
        assert [e["code"] for e in itself["errors"]] == ["FORBIDDEN"]


async def test_a_reset_password_ends_sessions_and_must_be_changed(
    settings: Settings, engine: AsyncEngine
) -> None:
    name = await new_staff(engine, role=StaffRole.OPERATOR)
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        session = await login(gql, name)
        target = await _id_of(gql, hq, name)
        weak = payload_of(await gql.execute(RESET, {"id": target, "password": name}, headers=hq))
        assert [(e["code"], e["field"]) for e in weak["errors"]] == [
            ("WEAK_PASSWORD", ["temporaryPassword"])
        ]
        reset = payload_of(
            await gql.execute(RESET, {"id": target, "password": "temporary-pass-9"}, headers=hq)
        )
        assert reset["staff"]["mustChangePassword"] is True
        refreshed = await gql.execute(REFRESH, {"input": {"refreshToken": session["refreshToken"]}})
        assert refreshed["data"]["refreshStaffSession"]["errors"][0]["code"] == "INVALID_TOKEN"
        assert (await login(gql, name))["errors"][0]["code"] == "INVALID_CREDENTIALS"
        temporary = await login(gql, name, "temporary-pass-9")
        assert temporary["staff"]["mustChangePassword"] is True


async def _until_refused(gql: GraphQLClient, headers: dict[str, str]) -> int:
    """Seconds until the app answers 401 for these credentials; fails past HEARD_WITHIN_S."""
    start = time.monotonic()
    while True:
        response = await gql.http.post("/graphql", json={"query": ME}, headers=headers)
        if response.status_code == 401:
            return int(time.monotonic() - start)
        assert response.status_code == 200
        assert time.monotonic() - start < HEARD_WITHIN_S, "the other app never heard of it"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_disabled_account_is_refused_at_once_by_another_app(
    settings: Settings, engine: AsyncEngine, broker: str
) -> None:
    name = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[1])
    # Apps remember accounts for an hour here: only the broker's news can explain a refusal.
    shared: dict[str, Any] = {
        "broker_url": broker_url(settings, broker),
        "credential_cache_seconds": 3600.0,
    }
    async with (
        staff_app(settings, engine, lifespan=True, **shared) as (a, _),
        staff_app(settings, engine, lifespan=True, **shared) as (b, _),
    ):
        await asyncio.sleep(0.2)  # both apps reach the broker
        hq = await hq_session(a, engine)
        session = await login(b, name)
        me = await b.execute(ME, headers=bearer(session))
        assert me["data"]["viewer"]["staff"]["username"] == name  # remembered by B
        target = await _id_of(a, hq, name)
        disabled = payload_of(await a.execute(DISABLE, {"id": target}, headers=hq))
        assert disabled["staff"]["disabled"] is True
        await _until_refused(b, bearer(session))
        refreshed = await b.execute(REFRESH, {"input": {"refreshToken": session["refreshToken"]}})
        assert refreshed["data"]["refreshStaffSession"]["accessToken"] is None
        assert (await login(b, name))["errors"][0]["code"] == "ACCOUNT_DISABLED"

        enabled = payload_of(await a.execute(ENABLE, {"id": target}, headers=hq))
        assert enabled["staff"]["disabled"] is False
        assert (await login(b, name))["errors"] == []


async def test_api_keys_are_shown_once_and_listed_with_their_last_use(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with staff_app(settings, engine, lifespan=True, api_key_last_used_write_seconds=0.05) as (
        gql,
        _,
    ):
        hq = await hq_session(gql, engine)
        created = payload_of(
            await gql.execute(
                CREATE_KEY,
                {
                    "input": {
                        "name": "收银系统",
                        "scopes": ["stock:write", "stock:read"],
                        "storeIds": [encode_id("Store", 2)],
                    }
                },
                headers=hq,
            )
        )
        assert created["errors"] == []
        key, made = created["key"], created["apiKey"]
        assert key.startswith(f"dg_{made['prefix']}_")
        assert made["scopes"] == ["stock:read", "stock:write"]
        assert made["stores"] == [{"id": encode_id("Store", 2)}] and made["partner"] is None
        assert made["lastUsedAt"] is None and made["revokedAt"] is None
        async with engine.connect() as conn:
            row = (
                await conn.execute(sa.select(api_keys).where(api_keys.c.prefix == made["prefix"]))
            ).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in {str(v) for v in row}

        used = await gql.http.post("/graphql", json={"query": ME}, headers={"X-Api-Key": key})
        assert used.status_code == 200
        deadline = time.monotonic() + HEARD_WITHIN_S
        while True:
            listed = await _key_in_list(gql, hq, made["id"])
            if listed["lastUsedAt"] is not None:
                break
            assert time.monotonic() < deadline, "lastUsedAt was never written"
            await asyncio.sleep(0.05)
        assert listed["name"] == "收银系统" and listed["revokedAt"] is None


async def _key_in_list(gql: GraphQLClient, hq: dict[str, str], key_id: str) -> dict[str, Any]:
    after = None
    while True:
        page = payload_of(await gql.execute(KEYS, {"first": 50, "after": after}, headers=hq))
        for edge in page["edges"]:
            if edge["node"]["id"] == key_id:
                node: dict[str, Any] = edge["node"]
                return node
        assert page["pageInfo"]["hasNextPage"], key_id
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"scopes": []}, "INVALID_INPUT", ["scopes"]),
        ({"scopes": ["stock:everything"]}, "INVALID_INPUT", ["scopes"]),
        ({"scopes": ["delivery:write"]}, "REQUIRED", ["partner"]),
        ({"name": "  "}, "REQUIRED", ["name"]),
        ({"storeIds": []}, "REQUIRED", ["storeIds"]),
        ({"storeIds": [encode_id("Store", 999_999)]}, "NOT_FOUND", ["storeIds"]),
    ],
)
async def test_bad_keys_are_refused_and_change_nothing(
    settings: Settings, engine: AsyncEngine, fields: dict[str, Any], code: str, field: list[str]
) -> None:
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        async with engine.connect() as conn:
            before = await conn.scalar(sa.select(sa.func.count()).select_from(api_keys))
        refused = payload_of(
            await gql.execute(
                CREATE_KEY,
                {"input": {"name": "POS", "scopes": ["stock:read"], **fields}},
                headers=hq,
            )
        )
        assert refused["key"] is None and refused["apiKey"] is None
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)]
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(api_keys)) == before


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_revoked_key_is_refused_at_once_by_another_app(
    settings: Settings, engine: AsyncEngine, broker: str
) -> None:
    shared: dict[str, Any] = {
        "broker_url": broker_url(settings, broker),
        "credential_cache_seconds": 3600.0,
    }
    async with (
        staff_app(settings, engine, lifespan=True, **shared) as (a, _),
        staff_app(settings, engine, lifespan=True, **shared) as (b, _),
    ):
        await asyncio.sleep(0.2)
        hq = await hq_session(a, engine)
        created = payload_of(
            await a.execute(
                CREATE_KEY,
                {"input": {"name": "美团", "scopes": ["delivery:write"], "partner": "MEITUAN"}},
                headers=hq,
            )
        )
        assert created["apiKey"]["partner"] == "MEITUAN"
        partner = {"X-Api-Key": created["key"]}
        ok = await b.http.post("/graphql", json={"query": ME}, headers=partner)
        assert ok.status_code == 200  # remembered by B
        revoked = payload_of(
            await a.execute(REVOKE_KEY, {"id": created["apiKey"]["id"]}, headers=hq)
        )
        assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
        await _until_refused(b, partner)
        again = payload_of(await a.execute(REVOKE_KEY, {"id": created["apiKey"]["id"]}, headers=hq))
        assert [(e["code"], e["field"]) for e in again["errors"]] == [("NOT_FOUND", ["id"])]
        listed = await _key_in_list(a, hq, created["apiKey"]["id"])
        assert listed["revokedAt"] == revoked["apiKey"]["revokedAt"]


NODE = """
query Node($id: ID!) {
  node(id: $id) {
    id
    ... on StaffAccount { username }
    ... on ApiKey { name }
  }
}
"""


async def test_accounts_and_keys_as_nodes_are_shown_to_whom_they_concern(
    settings: Settings, engine: AsyncEngine
) -> None:
    manager = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[1])
    other = await new_staff(engine, role=StaffRole.STORE_MANAGER, stores=[1])
    async with staff_app(settings, engine) as (gql, _):
        hq = await hq_session(gql, engine)
        as_manager = bearer(await login(gql, manager))
        own, theirs = await _id_of(gql, hq, manager), await _id_of(gql, hq, other)
        key = payload_of(
            await gql.execute(
                CREATE_KEY, {"input": {"name": "POS", "scopes": ["stock:read"]}}, headers=hq
            )
        )["apiKey"]["id"]

        async def node(global_id: str, who: dict[str, str]) -> Any:
            answer = await gql.execute(NODE, {"id": global_id}, headers=who)
            assert "errors" not in answer, answer
            return answer["data"]["node"]

        assert await node(theirs, hq) == {"id": theirs, "username": other}
        assert await node(key, hq) == {"id": key, "name": "POS"}
        assert await node(own, as_manager) == {"id": own, "username": manager}
        assert await node(theirs, as_manager) is None
        assert await node(key, as_manager) is None
        assert await node(own, {}) is None


async def test_head_office_changes_are_in_the_audit_log_without_secrets(
    settings: Settings, engine: AsyncEngine
) -> None:
    hq_name = await new_staff(engine, role=StaffRole.HQ_ADMIN)
    async with staff_app(settings, engine) as (gql, _):
        hq = bearer(await login(gql, hq_name))
        created = payload_of(
            await gql.execute(CREATE, new_account(password="secret-first-pw"), headers=hq)
        )["staff"]
        await gql.execute(DISABLE, {"id": created["id"]}, headers=hq)
        await gql.execute(RESET, {"id": created["id"], "password": "secret-temp-pw"}, headers=hq)
        key = payload_of(
            await gql.execute(
                CREATE_KEY, {"input": {"name": "POS", "scopes": ["stock:read"]}}, headers=hq
            )
        )
        await gql.execute(REVOKE_KEY, {"id": key["apiKey"]["id"]}, headers=hq)
        await gql.execute(CHANGE, {"current": PASSWORD, "new": "secret-new-pw-1"}, headers=hq)
    async with engine.connect() as conn:
        hq_id = await conn.scalar(sa.select(staff.c.id).where(staff.c.username == hq_name))
        new_id = await conn.scalar(
            sa.select(staff.c.id).where(staff.c.username == created["username"])
        )
        key_id = await conn.scalar(
            sa.select(api_keys.c.id).where(api_keys.c.prefix == key["key"].split("_")[1])
        )
        rows = (
            await conn.execute(
                sa.select(audit_log).where(audit_log.c.staff_id == hq_id).order_by(audit_log.c.id)
            )
        ).all()
    assert [(r.action, r.outcome, r.object_type, r.object_id) for r in rows] == [
        ("createStaffAccount", "DONE", "Staff", new_id),
        ("disableStaffAccount", "DONE", "Staff", new_id),
        ("resetStaffPassword", "DONE", "Staff", new_id),
        ("createApiKey", "DONE", "ApiKey", key_id),
        ("revokeApiKey", "DONE", "ApiKey", key_id),
        ("changeMyPassword", "DONE", "Staff", hq_id),
    ]
    for row in rows:
        assert "secret-" not in row.summary and key["key"] not in row.summary
