"""The CLI as an operator uses it: credentials it prints work against a real server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.e2e.conftest import SERVER_LOGS, cli_env, run_cli, running_server

SET_PRICE = """mutation($input: SetStorePriceInput!) {
  setStorePrice(input: $input) { sku { price { fen } } errors { code } }
}"""


def _set_price(server: str, headers: dict[str, str], store: int) -> dict[str, object]:
    response = httpx.post(
        f"{server}/graphql",
        json={
            "query": SET_PRICE,
            "variables": {
                "input": {
                    "storeId": encode_id("Store", store),
                    "skuId": encode_id("Sku", 40),
                    "priceFen": 999,
                }
            },
        },
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    payload: dict[str, object] = response.json()["data"]["setStorePrice"]
    return payload


def test_staff_token_for_a_store_manager_works_for_that_store_only(
    settings: Settings, live_server: str
) -> None:
    result = run_cli(settings, "staff-token", "--role", "STORE_MANAGER", "--store", "3")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert _set_price(live_server, headers, 3) == {"sku": {"price": {"fen": 999}}, "errors": []}
    assert _set_price(live_server, headers, 4) == {"sku": None, "errors": [{"code": "FORBIDDEN"}]}


def test_store_manager_without_a_store_and_unknown_stores_are_refused(settings: Settings) -> None:
    assert run_cli(settings, "staff-token", "--role", "STORE_MANAGER").returncode != 0
    unknown = run_cli(settings, "staff-token", "--role", "STORE_MANAGER", "--store", "9999")
    assert unknown.returncode != 0 and "9999" in unknown.stderr


def test_api_key_identifies_a_partner(settings: Settings, live_server: str) -> None:
    result = run_cli(
        settings, "create-api-key", "--name", "美团外卖", "--scopes", "stock:write", "--store", "1"
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("dg_")
    # A partner is known (not 401) but may not price stores.
    assert _set_price(live_server, {"X-Api-Key": key}, 1)["errors"] == [{"code": "FORBIDDEN"}]
    wrong = httpx.post(
        f"{live_server}/graphql",
        json={"query": "{ categories { id } }"},
        headers={"X-Api-Key": key[:-2] + "xx"},
        timeout=10,
    )
    assert wrong.status_code == 401


def test_a_delivery_key_is_bound_to_one_platform(settings: Settings) -> None:
    unbound = run_cli(settings, "create-api-key", "--name", "达达", "--scopes", "delivery:write")
    assert unbound.returncode != 0 and "--partner" in unbound.stdout + unbound.stderr
    unknown = run_cli(
        settings, "create-api-key", "--name", "x", "--scopes", "delivery:write", "--partner", "UBER"
    )
    assert unknown.returncode != 0
    bound = run_cli(
        settings,
        "create-api-key",
        "--name",
        "达达",
        "--scopes",
        "delivery:write",
        "--partner",
        "DADA",
    )
    assert bound.returncode == 0, bound.stderr
    assert "for DADA deliveries" in bound.stdout


def test_seeding_twice_leaves_the_data_alone(settings: Settings) -> None:
    result = run_cli(settings, "seed", "--demo")
    assert result.returncode == 0, result.stderr
    assert "already holds stores" in result.stdout
    assert result.stdout.strip().splitlines()[-1].count(".") == 2  # a JWT on the last line


def test_seed_and_staff_token_name_the_same_head_office_account(settings: Settings) -> None:
    seeded = run_cli(settings, "seed", "--demo")
    issued = run_cli(settings, "staff-token", "--role", "HQ_ADMIN")
    assert seeded.returncode == 0 and issued.returncode == 0, seeded.stderr + issued.stderr
    assert "(HQ_ADMIN hq-admin)" in seeded.stdout
    assert issued.stdout.startswith("staff hq-admin (HQ_ADMIN)")


def test_migrate_says_what_it_applied(settings: Settings, tmp_path: Path) -> None:
    empty = {"DINEGRAPH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"}
    first = run_cli(settings, "migrate", **empty)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("migrated from <none> to ")
    assert first.stdout.rstrip().endswith("revisions applied")
    head = first.stdout.split(" to ", 1)[1].split(":", 1)[0]
    again = run_cli(settings, "migrate", **empty)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"already at {head}: nothing to apply"


# What each path may load; the server, the GraphQL schema and the migrations are not among them.
SERVER_MODULES = ("uvicorn", "starlette", "strawberry", "graphql", "alembic", "httpx")


def _imported(settings: Settings, *args: str) -> set[str]:
    """The top-level packages a `dinegraph` command imports, from -X importtime."""
    launch = [sys.executable, "-X", "importtime", "-c", "from dinegraph.cli import main; main()"]
    run = subprocess.run(
        [*launch, *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line.split("|")[-1] for line in run.stderr.splitlines() if "import time:" in line]
    return {line.strip().split(".")[0] for line in lines}


def test_help_and_credentials_start_without_the_server(settings: Settings) -> None:
    help_only = _imported(settings, "--help")
    assert not help_only & {*SERVER_MODULES, "sqlalchemy", "pydantic_settings", "rich"}
    for command in (
        ("staff-token", "--role", "STORE_MANAGER", "--store", encode_id("Store", 1)),
        ("member-token", "--phone", "13800138000"),
        ("create-api-key", "--name", "POS", "--scopes", "stock:read"),
    ):
        assert not _imported(settings, *command) & set(SERVER_MODULES), command


def test_production_refuses_to_serve_without_a_secret_key(settings: Settings) -> None:
    result = run_cli(settings, "serve", DINEGRAPH_MODE="production", DINEGRAPH_SECRET_KEY="")
    assert result.returncode == 2
    assert "DINEGRAPH_SECRET_KEY" in result.stderr


def test_export_schema_prints_the_sdl(settings: Settings) -> None:
    result = run_cli(settings, "export-schema")
    assert result.returncode == 0
    assert "menu(storeId: ID!, channel: Channel!): Menu" in result.stdout


def _answers(server: str, headers: dict[str, str]) -> int:
    response = httpx.post(
        f"{server}/graphql", json={"query": "{ categories { id } }"}, headers=headers, timeout=10
    )
    return response.status_code


def _refused_within(server: str, headers: dict[str, str], seconds: float) -> bool:
    """Whether the server turns the credentials away (401) within ``seconds``: at once on a
    shared broker, within DINEGRAPH_CREDENTIAL_CACHE_SECONDS on the memory broker."""
    deadline = time.monotonic() + seconds
    while _answers(server, headers) == 200:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_revoked_api_key_and_a_disabled_staff_account_stop_working(
    settings: Settings, live_server: str
) -> None:
    created = run_cli(settings, "create-api-key", "--name", "旧POS", "--scopes", "stock:write")
    key = created.stdout.strip().splitlines()[-1]
    partner = {"X-Api-Key": key}
    assert _answers(live_server, partner) == 200  # remembered by the server from now on
    prefix = key.split("_")[1]
    revoked = run_cli(settings, "revoke-api-key", prefix)
    assert revoked.returncode == 0, revoked.stderr
    assert _refused_within(live_server, partner, settings.credential_cache_seconds + 5)
    again = run_cli(settings, "revoke-api-key", prefix)
    assert again.returncode == 1 and prefix in again.stderr

    issued = run_cli(settings, "staff-token", "--role", "OPERATOR", "--username", "leaver")
    staff = {"Authorization": f"Bearer {issued.stdout.strip().splitlines()[-1]}"}
    assert _answers(live_server, staff) == 200
    disabled = run_cli(settings, "disable-staff", "leaver")
    assert disabled.returncode == 0, disabled.stderr
    assert _refused_within(live_server, staff, settings.credential_cache_seconds + 5)
    assert run_cli(settings, "disable-staff", "leaver").returncode == 1
    # staff-token enables the account again, and its earlier token with it.
    assert (
        run_cli(settings, "staff-token", "--role", "OPERATOR", "--username", "leaver").returncode
        == 0
    )
    deadline = time.monotonic() + 10
    while _answers(live_server, staff) != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_serve_says_where_the_console_is_or_how_to_build_it(
    settings: Settings, tmp_path: Path
) -> None:
    """Without npm, `make run` builds no console: the server still serves the API, and says
    in its output, as on /admin, how to get the console."""
    unbuilt = tmp_path / "unbuilt"
    with running_server(settings, DINEGRAPH_ADMIN_DIST=str(unbuilt)) as url:
        said = SERVER_LOGS[url].read_text()
        page = httpx.get(f"{url}/admin/stock", timeout=10)
        api = httpx.post(f"{url}/graphql", json={"query": "{ __typename }"}, timeout=10)
    assert f"staff console: not built ({unbuilt}" in said
    assert "npm ci && npm run build" in said and "make run" in said
    assert "make run" in page.text and "npm" in page.text
    assert api.json()["data"] == {"__typename": "Query"}

    built = tmp_path / "built"
    built.mkdir()
    (built / "index.html").write_text("<!doctype html><title>console</title>")
    with running_server(settings, DINEGRAPH_ADMIN_DIST=str(built)) as url:
        said = SERVER_LOGS[url].read_text()
    assert f"staff console: {url}/admin/" in said
