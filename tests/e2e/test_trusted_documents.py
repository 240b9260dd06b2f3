"""Trusted documents: the mini-program's files, registered with the CLI, are all that runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from dinegraph.persisted import sha256_of
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.e2e.conftest import run_cli, running_server
from tests.tools import CLIENTS
from tests.wsclient import session

DOCUMENTS = sorted(str(p) for p in (CLIENTS / "miniprogram").glob("*.graphql"))
MANIFEST = CLIENTS / "miniprogram" / "persisted-documents.json"
STORE = encode_id("Store", 1)


def _by_name(manifest: dict[str, str], name: str) -> str:
    [sha] = [sha for sha, text in manifest.items() if f" {name}(" in text.split("\n")[0]]
    return sha


def _persisted(sha: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


async def test_only_registered_documents_run_over_http_and_websocket(
    settings: Settings, tmp_path: Path
) -> None:
    written = tmp_path / "manifest.json"
    loaded = run_cli(settings, "trust-documents", *DOCUMENTS, "--manifest", str(written))
    assert loaded.returncode == 0, loaded.stderr
    manifest: dict[str, str] = json.loads(written.read_text())
    assert loaded.stdout.strip().endswith(f"{len(manifest)} trusted documents, {len(manifest)} new")
    # The manifest the mini-program ships is the one these files make.
    assert json.loads(MANIFEST.read_text()) == manifest, "run: dinegraph trust-documents ..."
    assert all(sha256_of(text) == sha for sha, text in manifest.items())
    again = run_cli(settings, "trust-documents", str(written))
    assert again.returncode == 0 and again.stdout.strip().endswith(", 0 new"), again.stdout

    menu = _by_name(manifest, "StoreMenu")
    stranger = "query Mine { stores(first: 1) { totalCount } }"
    with running_server(settings, DINEGRAPH_TRUSTED_DOCUMENTS_ONLY="true") as url:
        variables = {"storeId": STORE, "channel": "PICKUP"}
        by_hash = httpx.get(  # noqa: ASYNC210 (one request; the server is another process)
            f"{url}/graphql",
            params={
                "extensions": json.dumps(_persisted(menu)),
                "variables": json.dumps(variables),
            },
        ).json()
        assert by_hash["data"]["menu"]["categories"], by_hash
        refused = httpx.post(f"{url}/graphql", json={"query": stranger}).json()  # noqa: ASYNC210
        assert refused["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"

        async with session(url) as ws:
            await ws.ws.send(
                json.dumps(
                    {
                        "id": "feed",
                        "type": "subscribe",
                        "payload": {
                            "variables": {"storeId": STORE},
                            "extensions": _persisted(_by_name(manifest, "StockFeed")),
                        },
                    }
                )
            )
            first = await ws.next_data()
            assert first["stockChanged"]["sku"]["id"]
            untrusted = await ws.subscribe(
                "subscription($s: ID!) { stockChanged(storeId: $s) { version } }", {"s": STORE}
            )
            error = await ws.receive()
            while error.get("id") != untrusted:  # the rest of the feed's first state
                error = await ws.receive()
            assert error["type"] == "error", error
            assert error["payload"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"


def test_a_document_that_does_not_validate_is_not_registered(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.graphql"
    bad.write_text("query Bad { nothingHere }")
    refused = run_cli(settings, "trust-documents", str(bad))
    assert refused.returncode != 0
    assert "nothingHere" in refused.stderr
