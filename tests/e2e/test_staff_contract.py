"""The staff sign-in contract (the console is written against it), verbatim, on a real
`dinegraph serve` over a database loaded by `dinegraph seed --demo`."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dinegraph.db import demo_data
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import make_settings
from tests.databases import fresh_database
from tests.e2e.conftest import DINEGRAPH, PATIENCE_SECONDS, cli_env, run_cli, running_server
from tests.wsclient import session

# The documents of the contract, as the console sends them.
STAFF_LOGIN = """
mutation StaffLogin($input: StaffLoginInput!) {          # {username, password, totpCode?}
  staffLogin(input: $input) {
    accessToken refreshToken expiresAt                     # expiresAt: DateTime of the access token
    staff { id username displayName role stores { id name } totpEnabled }
    errors { code field message }
  }
}
"""
REFRESH_STAFF_SESSION = """
mutation RefreshStaffSession($input: RefreshStaffSessionInput!) {   # {refreshToken}
  refreshStaffSession(input: $input) {
    accessToken refreshToken expiresAt
    staff { id username displayName role stores { id name } totpEnabled }
    errors { code field message }
  }
}
"""
STAFF_LOGOUT = """
mutation StaffLogout($input: StaffLogoutInput!) { staffLogout(input: $input) { errors { code field message } } }
"""
ME = """
query Me { viewer { staff { id username displayName role stores { id name } totpEnabled } } }
"""


SERVED: dict[str, Settings] = {}  # the settings of each demo server, by its URL


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on a fresh database seeded by the command; and what the command printed."""
    with fresh_database(tmp_path_factory.mktemp("staff-contract")) as url:
        settings = make_settings(url)
        seeded = run_cli(settings, "seed", "--demo")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        with running_server(settings) as server:
            SERVED[server] = settings
            yield server, seeded.stdout


def call(
    client: httpx.Client, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def sign_in(client: httpx.Client, username: str, password: str) -> dict[str, Any]:
    answer = call(client, STAFF_LOGIN, {"input": {"username": username, "password": password}})
    payload: dict[str, Any] = answer["staffLogin"]
    return payload


def test_the_seed_prints_the_demo_accounts(demo_server: tuple[str, str]) -> None:
    printed = demo_server[1]
    for line in (
        "hq / hq-demo-2026 (HQ_ADMIN)",
        "manager1 / manager-demo-2026 (STORE_MANAGER)",
        "manager2 / manager-demo-2026 (STORE_MANAGER)",
    ):
        assert line in printed


def test_head_office_signs_in_and_sees_itself(demo_server: tuple[str, str]) -> None:
    with httpx.Client(base_url=demo_server[0], timeout=30) as client:
        before = datetime.now(UTC)
        hq = sign_in(client, "hq", "hq-demo-2026")
        assert hq["errors"] == []
        expires = datetime.fromisoformat(hq["expiresAt"])
        assert before < expires <= before + timedelta(minutes=15, seconds=1)
        staff = hq["staff"]
        assert staff["username"] == "hq" and staff["role"] == "HQ_ADMIN"
        assert staff["displayName"] and staff["totpEnabled"] is False
        assert sorted(s["name"] for s in staff["stores"]) == sorted(
            s["name"] for s in demo_data.STORES
        )
        me = call(client, ME, {}, hq["accessToken"])
        assert me["viewer"]["staff"] == staff
        assert call(client, ME, {})["viewer"]["staff"] is None


@pytest.mark.parametrize(("username", "store"), [("manager1", 0), ("manager2", 1)])
def test_managers_sign_in_to_their_store(
    demo_server: tuple[str, str], username: str, store: int
) -> None:
    with httpx.Client(base_url=demo_server[0], timeout=30) as client:
        manager = sign_in(client, username, "manager-demo-2026")
        assert manager["errors"] == []
        staff = manager["staff"]
        assert staff["role"] == "STORE_MANAGER"
        assert [s["name"] for s in staff["stores"]] == [demo_data.STORES[store]["name"]]


def test_wrong_password_and_unknown_user_are_one_answer(demo_server: tuple[str, str]) -> None:
    with httpx.Client(base_url=demo_server[0], timeout=30) as client:
        wrong = sign_in(client, "manager2", "not-the-password")
        unknown = sign_in(client, "no-such-manager", "manager-demo-2026")
        assert wrong == unknown
        assert [e["code"] for e in wrong["errors"]] == ["INVALID_CREDENTIALS"]
        assert wrong["accessToken"] is None and wrong["staff"] is None


def test_refresh_rotates_reuse_ends_and_logout_ends(demo_server: tuple[str, str]) -> None:
    with httpx.Client(base_url=demo_server[0], timeout=30) as client:
        first = sign_in(client, "manager1", "manager-demo-2026")

        def refresh(token: str) -> dict[str, Any]:
            payload: dict[str, Any] = call(
                client, REFRESH_STAFF_SESSION, {"input": {"refreshToken": token}}
            )["refreshStaffSession"]
            return payload

        second = refresh(first["refreshToken"])
        assert second["errors"] == [] and second["staff"] == first["staff"]
        assert second["refreshToken"] != first["refreshToken"]
        assert call(client, ME, {}, second["accessToken"])["viewer"]["staff"] == first["staff"]
        assert [e["code"] for e in refresh(first["refreshToken"])["errors"]] == ["INVALID_TOKEN"]
        assert [e["code"] for e in refresh(second["refreshToken"])["errors"]] == ["INVALID_TOKEN"]

        third = sign_in(client, "manager1", "manager-demo-2026")
        out = call(client, STAFF_LOGOUT, {"input": {"refreshToken": third["refreshToken"]}})
        assert out["staffLogout"]["errors"] == []
        assert [e["code"] for e in refresh(third["refreshToken"])["errors"]] == ["INVALID_TOKEN"]


def test_the_access_token_signs_in_a_websocket(demo_server: tuple[str, str]) -> None:
    with httpx.Client(base_url=demo_server[0], timeout=30) as client:
        manager = sign_in(client, "manager2", "manager-demo-2026")

    async def over_websocket() -> dict[str, Any]:
        init = {"authorization": f"Bearer {manager['accessToken']}"}
        async with session(demo_server[0], init) as ws:
            await ws.subscribe(ME)
            return await ws.next_data()

    data = asyncio.run(over_websocket())
    assert data["viewer"]["staff"] == manager["staff"]


def test_demo_accounts_are_not_made_in_production(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        settings = make_settings(url)
        seeded = run_cli(settings, "seed", "--demo", DINEGRAPH_MODE="production")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        assert "hq-demo-2026" not in seeded.stdout


def test_the_first_head_office_account_starts_with_the_command(
    demo_server: tuple[str, str],
) -> None:
    server = demo_server[0]
    settings = SERVED[server]
    made = run_cli(
        settings,
        "create-staff",
        "--username",
        "li.hq",
        "--role",
        "HQ_ADMIN",
        "--display-name",
        "李总",
        DINEGRAPH_NEW_STAFF_PASSWORD="li-first-password",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    # Asked twice on a terminal (here, on standard input), when the variable is not set.
    prompted = subprocess.run(
        [
            DINEGRAPH,
            "create-staff",
            "--username",
            "wang.m",
            "--role",
            "STORE_MANAGER",
            "--store",
            "2",
        ],
        env=cli_env(settings),
        input="wang-password-2\nwang-password-2\n",
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )
    assert prompted.returncode == 0, prompted.stdout + prompted.stderr
    taken = run_cli(
        settings,
        "create-staff",
        "--username",
        "li.hq",
        "--role",
        "HQ_ADMIN",
        DINEGRAPH_NEW_STAFF_PASSWORD="li-first-password",
    )
    assert taken.returncode == 1 and "taken" in taken.stderr
    weak = run_cli(
        settings,
        "create-staff",
        "--username",
        "zhao.m",
        "--role",
        "OPERATOR",
        DINEGRAPH_NEW_STAFF_PASSWORD="short",
    )
    assert weak.returncode == 2 and "10 characters" in weak.stderr
    with httpx.Client(base_url=server, timeout=30) as client:
        li = sign_in(client, "li.hq", "li-first-password")
        assert li["errors"] == []
        assert li["staff"]["displayName"] == "李总" and li["staff"]["role"] == "HQ_ADMIN"
        wang = sign_in(client, "wang.m", "wang-password-2")
        assert [s["id"] for s in wang["staff"]["stores"]] == [encode_id("Store", 2)]
        assert [e["code"] for e in sign_in(client, "zhao.m", "short")["errors"]] == [
            "INVALID_CREDENTIALS"
        ]
