"""The GraphQL-over-HTTP spec's own server audit (npm graphql-http) against a real server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from dinegraph.settings import Settings
from tests.e2e.conftest import PATIENCE_SECONDS, running_server
from tests.tools import CLIENTS, node

AUDIT = CLIENTS / "reference" / "audit.mjs"


def _audit(url: str) -> list[dict[str, Any]]:
    ran = subprocess.run(
        [node(), str(AUDIT), f"{url}/graphql"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
        cwd=CLIENTS,
    )
    assert ran.returncode == 0, ran.stderr
    results = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(results) > 50, ran.stdout  # the whole audit ran, not a part of it
    return results


def test_development_passes_every_audit(live_server: str) -> None:
    results = _audit(live_server)
    assert [r for r in results if r["status"] != "ok"] == []


def test_production_differs_only_where_an_audit_needs_introspection(settings: Settings) -> None:
    with running_server(
        settings, DINEGRAPH_MODE="production", DINEGRAPH_SECRET_KEY="p" * 40
    ) as url:
        results = _audit(url)
    differing = [r for r in results if r["status"] != "ok"]
    # Those audits query `__type`, which production refuses; every other one passes.
    assert all("introspection has been disabled" in r.get("body", "") for r in differing)
    assert len(differing) < len(results) / 10, differing


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{"},  # does not parse
        {"query": "{ nope }"},  # does not validate
        {"query": "query($n: Int!) { stores(first: $n) { totalCount } }", "variables": {"n": "x"}},
    ],
)
def test_request_errors_are_400_without_data_for_graphql_response_clients(
    live_server: str, body: dict[str, Any]
) -> None:
    response = httpx.post(
        f"{live_server}/graphql",
        json=body,
        headers={"Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    assert "data" not in response.json() and response.json()["errors"]
    plain = httpx.post(f"{live_server}/graphql", json=body)
    assert plain.status_code == 200 and plain.json()["data"] is None
