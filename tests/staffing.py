"""Staff accounts that sign in, and apps to sign in to, for the staff tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Services
from dinegraph.db.staff_accounts import create_account
from dinegraph.domain.identity import StaffRole
from dinegraph.passwords import Argon2Passwords
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient

PASSWORD = "correct-horse-battery"
_passwords = Argon2Passwords()

STAFF_FIELDS = "id username displayName role stores { id name } totpEnabled"
LOGIN = f"""
mutation StaffLogin($input: StaffLoginInput!) {{
  staffLogin(input: $input) {{
    accessToken refreshToken expiresAt
    staff {{ {STAFF_FIELDS} mustChangePassword }}
    errors {{ code field message }}
  }}
}}
"""
REFRESH = f"""
mutation RefreshStaffSession($input: RefreshStaffSessionInput!) {{
  refreshStaffSession(input: $input) {{
    accessToken refreshToken expiresAt
    staff {{ {STAFF_FIELDS} }}
    errors {{ code field message }}
  }}
}}
"""
LOGOUT = """
mutation StaffLogout($input: StaffLogoutInput!) {
  staffLogout(input: $input) { errors { code field message } }
}
"""
ME = f"query Me {{ viewer {{ staff {{ {STAFF_FIELDS} mustChangePassword }} }} }}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_staff(
    engine: AsyncEngine,
    *,
    role: StaffRole = StaffRole.HQ_ADMIN,
    stores: list[int] | None = None,
    password: str = PASSWORD,
    password_hash: str | None = None,
    username: str | None = None,
) -> str:
    """A new account signing in with ``password``; its username."""
    name = username or unique(role.value.lower())
    await create_account(
        engine,
        username=name,
        display_name=f"{name} 的名字",
        role=role,
        store_ids=stores or [],
        password_hash=password_hash or _passwords.hash_now(password),
    )
    return name


@asynccontextmanager
async def staff_app(
    settings: Settings,
    engine: AsyncEngine,
    *,
    client_ip: str = "127.0.0.1",
    lifespan: bool = False,
    **overrides: Any,
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    """An in-process app whose requests come from ``client_ip``; the per-address limit is
    out of the way unless ``overrides`` set it. With ``lifespan``, it runs as a server does:
    following its broker, writing API keys' last use."""
    values = {"staff_login_failures_per_address": 10_000, **overrides}
    app_settings = settings.model_copy(update=values)
    services = default_services(app_settings)
    app = create_app(app_settings, engine, services=services)
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    async with contextlib.AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30)
        )
        yield GraphQLClient(client), services


async def login(
    gql: GraphQLClient, username: str, password: str = PASSWORD, totp: str | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"username": username, "password": password}
    if totp is not None:
        variables["totpCode"] = totp
    answer = await gql.execute(LOGIN, {"input": variables})
    assert "errors" not in answer, answer
    payload: dict[str, Any] = answer["data"]["staffLogin"]
    return payload


def bearer(payload: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {payload['accessToken']}"}
