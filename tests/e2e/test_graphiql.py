"""GraphiQL in development mode works offline: a real Chromium, cut off from everything
but loopback, renders the page a real server hands out and runs queries from it.

Chromium is driven over the DevTools protocol: it clicks GraphiQL's run button and reads
the result pane, and its network log shows every request the page made.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.sync.client import ClientConnection, connect

from dinegraph.app import create_app
from dinegraph.graphiql import ASSETS, DEFAULT_ASSETS, missing_assets
from dinegraph.settings import Settings
from tests.e2e.conftest import free_port, running_server, stop
from tests.e2e.test_stock_feed import STORE
from tests.tools import chromium, missing

HTML = {"Accept": "text/html,application/xhtml+xml"}
READY_SECONDS = 60  # a generous bound for every wait: a loaded CI machine is slow

# The page's editors are CodeMirror 5 instances: the wrapper element holds the editor.
EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
RESULT = "document.querySelector('.graphiql-response .CodeMirror')"


class DevTools:
    """A minimal Chrome DevTools Protocol client on one page; keeps the events it sees."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        sent = self.last_id
        self.ws.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv())
            if message.get("id") != sent:
                self.events.append(message)
                continue
            if "error" in message:
                raise AssertionError(f"{method}: {message['error']}")
            result: dict[str, Any] = message["result"]
            return result

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Polls `expression` until it is truthy, within a generous bound."""
        deadline = time.monotonic() + READY_SECONDS
        while True:
            value = self.evaluate(f"(() => {{ try {{ return {expression}; }} catch {{}} }})()")
            if value:
                return value
            if time.monotonic() > deadline:
                page = self.evaluate("document.body ? document.body.innerText : ''")
                pytest.fail(f"{what}: not within {READY_SECONDS}s; the page shows:\n{page}")
            time.sleep(0.2)  # the polling interval

    def requested(self) -> list[str]:
        """Every URL the page asked for: documents, scripts, styles, fetches, WebSockets."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ] + [
            e["params"]["url"] for e in self.events if e.get("method") == "Network.webSocketCreated"
        ]

    def failed(self) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == "Network.loadingFailed"]


@contextmanager
def offline_browser() -> Iterator[DevTools]:
    """Headless Chromium whose network reaches loopback only: names outside it do not
    resolve, and everything else goes to a proxy that refuses. Yields its one page."""
    executable = chromium()
    if missing_assets(DEFAULT_ASSETS):
        missing("graphiql/node_modules is missing: run `make test` (it runs `npm ci` in graphiql/)")
    # Chromium's helper processes may still write to the profile as the browser exits.
    with tempfile.TemporaryDirectory(
        prefix="dinegraph-chromium-", ignore_cleanup_errors=True
    ) as profile:
        log = Path(profile) / "chromium.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [
                    executable,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--no-first-run",
                    "--no-default-browser-check",
                    f"--user-data-dir={profile}",
                    "--remote-debugging-port=0",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    f"--proxy-server=http://127.0.0.1:{free_port()}",
                    "--window-size=1400,900",
                    "about:blank",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so its helpers end with it
            )
            try:
                page = _page_websocket(Path(profile), process, log)
                with connect(page, max_size=None) as ws:
                    devtools = DevTools(ws)
                    devtools.call("Network.enable")
                    devtools.call("Page.enable")
                    devtools.call("Runtime.enable")
                    yield devtools
            finally:
                stop(process)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def _page_websocket(profile: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The DevTools WebSocket of the browser's page, once Chromium is listening."""
    active_port = profile / "DevToolsActivePort"
    deadline = time.monotonic() + READY_SECONDS
    with httpx.Client(trust_env=False, timeout=5) as http:
        while True:
            if active_port.exists() and len(lines := active_port.read_text().splitlines()) >= 2:
                targets = (http.get(f"http://127.0.0.1:{lines[0]}/json/list")).json()
                pages = [t for t in targets if t["type"] == "page"]
                if pages:
                    url: str = pages[0]["webSocketDebuggerUrl"]
                    return url
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start its DevTools server:\n{log.read_text()}")
            time.sleep(0.1)  # the polling interval


def _open_graphiql(devtools: DevTools, server: str, query: str) -> None:
    """Loads the IDE with `query` in its editor (the page reads ?q=) and runs it."""
    devtools.call("Page.navigate", url=f"{server}/graphql?q={quote(query)}")
    editor = devtools.wait_for(f"{EDITOR}.CodeMirror.getValue()", "the GraphiQL editor")
    assert editor == query
    devtools.wait_for("document.querySelector('.graphiql-execute-button') !== null", "run button")
    devtools.evaluate("document.querySelector('.graphiql-execute-button').click()")


def _offline_only(devtools: DevTools, server: str) -> None:
    """The page loaded everything from our server; nothing went beyond it, nothing failed."""
    local = (server + "/", server.replace("http://", "ws://", 1) + "/", "data:", "about:")
    assert [url for url in devtools.requested() if not url.startswith(local)] == []
    assert devtools.failed() == []
    assert {u.removeprefix(server) for u in devtools.requested()} >= {
        f"/graphiql/static/{name}" for name in ASSETS
    }


def test_graphiql_renders_offline_and_runs_a_query(live_server: str) -> None:
    query = "{ shops: stores(first: 2) { edges { node { name } } } }"
    expected = httpx.post(f"{live_server}/graphql", json={"query": query}, timeout=10).json()
    assert expected["data"]["shops"]["edges"][0]["node"]["name"].startswith("味知堂")
    with offline_browser() as devtools:
        # The browser really is offline: the CDN GraphiQL used to come from is out of reach.
        blocked = devtools.evaluate(
            "fetch('https://unpkg.com/react@18.3.1/umd/react.production.min.js',"
            " {mode: 'no-cors'}).then(() => 'reached', () => 'blocked')"
        )
        assert blocked == "blocked"
        devtools.events.clear()

        _open_graphiql(devtools, live_server, query)
        shown = devtools.wait_for(
            f"{RESULT}.CodeMirror.getValue().includes('味知堂') && {RESULT}.CodeMirror.getValue()",
            "the query's result in the result pane",
        )
        assert json.loads(shown) == expected

        # The result came from the query the page posted to the same-origin endpoint.
        posted = [
            e["params"]["request"]
            for e in devtools.events
            if e.get("method") == "Network.requestWillBeSent"
            and e["params"]["request"]["method"] == "POST"
            and "shops: stores" in e["params"]["request"].get("postData", "")
        ]
        assert [request["url"] for request in posted] == [f"{live_server}/graphql"]
        _offline_only(devtools, live_server)


def test_graphiql_subscribes_over_the_same_origin_websocket(live_server: str) -> None:
    subscription = f'subscription {{ stockChanged(storeId: "{STORE}") {{ soldOut version }} }}'
    with offline_browser() as devtools:
        _open_graphiql(devtools, live_server, subscription)
        shown = devtools.wait_for(
            f"{RESULT}.CodeMirror.getValue().includes('stockChanged') && "
            f"{RESULT}.CodeMirror.getValue()",
            "the subscription's first event in the result pane",
        )
        assert set(json.loads(shown)["data"]["stockChanged"]) == {"soldOut", "version"}
        sockets = [
            e["params"]["url"]
            for e in devtools.events
            if e.get("method") == "Network.webSocketCreated"
        ]
        assert sockets == [live_server.replace("http://", "ws://", 1) + "/graphql"]
        acknowledged = [
            e
            for e in devtools.events
            if e.get("method") == "Network.webSocketFrameReceived"
            and '"connection_ack"' in e["params"]["response"]["payloadData"]
        ]
        assert acknowledged
        _offline_only(devtools, live_server)


def test_production_serves_no_ide_and_no_assets(settings: Settings) -> None:
    with running_server(settings, DINEGRAPH_MODE="production") as server:
        page = httpx.get(f"{server}/graphql", headers=HTML, timeout=10)
        assert "GraphiQL" not in page.text and "<html" not in page.text.lower()
        for name in ASSETS:
            assert httpx.get(f"{server}/graphiql/static/{name}", timeout=10).status_code == 404


async def test_the_page_says_how_to_install_missing_assets(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"graphiql_assets": tmp_path}), engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert "npm ci" in page.text and "make run" in page.text and str(tmp_path) in page.text
        assert "<script" not in page.text
        assert (await http.get("/graphiql/static/graphiql.min.js")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/static/package.json",
        "/graphiql/static/..%2Fpackage.json",
        "/graphiql/static/..%2F..%2Fgraphiql%2Fpackage.json",
        "/graphiql/static/graphiql.min.js.map",
        "/graphiql/static/",
    ],
)
async def test_only_the_listed_assets_are_served(
    settings: Settings, engine: AsyncEngine, path: str
) -> None:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get(path)).status_code == 404
