"""The CLI's credential commands leave audit entries, as an operator would read them."""

from __future__ import annotations

import re
import socket
import uuid
from typing import Any

import httpx

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.e2e.conftest import run_cli

AUDIT = """query($filter: AuditLogFilter) {
  auditLog(filter: $filter, first: 50) {
    edges { node { actorKind credential staffId apiKeyId action outcome objectType objectId
                   clientAddress summary } }
  }
}"""


def _last_line(settings: Settings, *args: str) -> str:
    done = run_cli(settings, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _entries(server: str, token: str, **where: Any) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{server}/graphql",
        json={"query": AUDIT, "variables": {"filter": where}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["auditLog"]["edges"]]


def test_credential_commands_are_recorded_as_the_cli(settings: Settings, live_server: str) -> None:
    username = f"audit-{uuid.uuid4().hex[:8]}"
    _last_line(settings, "staff-token", "--role", "STORE_MANAGER", "--store", "1",
               "--username", username)  # fmt: skip
    created = run_cli(settings, "create-api-key", "--name", "审计POS", "--scopes", "stock:write")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    match = re.search(r"API key (\d+) for", created.stdout)
    assert match
    key_id = encode_id("ApiKey", int(match.group(1)))
    assert run_cli(settings, "revoke-api-key", key.split("_")[1]).returncode == 0
    assert run_cli(settings, "disable-staff", username).returncode == 0
    hq = _last_line(settings, "staff-token", "--role", "HQ_ADMIN")

    issued = [
        e
        for e in _entries(live_server, hq, actorKind="CLI", action="staff-token")
        if f'"username":"{username}"' in e["summary"]
    ]
    assert len(issued) == 1
    staff = issued[0]["objectId"]
    assert issued[0]["objectType"] == "Staff"
    on_staff = _entries(live_server, hq, objectId=staff)
    assert [(e["action"], e["actorKind"], e["credential"]) for e in on_staff] == [
        ("disable-staff", "CLI", "cli"),
        ("staff-token", "CLI", "cli"),
    ]
    on_key = _entries(live_server, hq, objectId=key_id)
    assert [e["action"] for e in on_key] == ["revoke-api-key", "create-api-key"]
    for entry in on_staff + on_key:
        assert entry["outcome"] == "DONE"
        assert entry["staffId"] is None and entry["apiKeyId"] is None
        assert entry["clientAddress"] == socket.gethostname()[:64]
    # dg_<prefix>_<secret>: the secret is URL-safe base64 and may itself hold "_".
    secret = key.split("_", 2)[2]
    assert key not in on_key[1]["summary"] and secret not in on_key[1]["summary"]
    assert '"scopes":["stock:write"]' in on_key[1]["summary"]
