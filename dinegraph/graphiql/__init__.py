"""GraphiQL served by the server itself, in development mode: no CDN, so it works offline.

The browser builds come from the npm package in the repository's ``graphiql/`` folder
(`make run` runs `npm ci` there). The page at GET /graphql loads them from
``/graphiql/static/<name>``; only the few files listed in ``ASSETS`` are ever served.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from dinegraph.settings import Settings

STATIC_PREFIX = "/graphiql/static"

DEFAULT_ASSETS = Path(__file__).resolve().parent.parent.parent / "graphiql" / "node_modules"
"""The npm packages installed next to the source tree (`cd graphiql && npm ci`)."""

ASSETS: dict[str, str] = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "plugin-explorer.umd.js": "@graphiql/plugin-explorer/dist/index.umd.js",
    "plugin-explorer.css": "@graphiql/plugin-explorer/dist/style.css",
}
"""The files the page loads: the name in the URL, and where npm puts it."""

_PAGE = Path(__file__).with_name("page.html")

_MISSING = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 44em; margin: 3em auto">
<h1>GraphiQL is not installed</h1>
<p>This server hands out GraphiQL itself, so it works offline, but its browser files are
missing from <code>{assets}</code>.</p>
<p>Install them with npm: <code>make run</code> does it when npm is present, or run
<code>cd graphiql &amp;&amp; npm ci</code> in the repository, then reload this page.
(Or point <code>DINEGRAPH_GRAPHIQL_ASSETS</code> at a <code>node_modules</code> folder holding
them.)</p>
<p>Missing: {missing}</p>
<p>The GraphQL endpoint itself works: POST your queries to this URL.</p>
</body>
</html>
"""


def assets_dir(settings: Settings) -> Path:
    return settings.graphiql_assets or DEFAULT_ASSETS


def missing_assets(directory: Path) -> list[str]:
    return [name for name, path in ASSETS.items() if not (directory / path).is_file()]


def render_page(settings: Settings) -> Response:
    """The GraphiQL page, or, where npm has not installed its files, how to install them."""
    directory = assets_dir(settings)
    missing = missing_assets(directory)
    if missing:
        body = _MISSING.format(
            assets=html.escape(str(directory)),
            missing=", ".join(f"<code>{html.escape(name)}</code>" for name in missing),
        )
        return HTMLResponse(body)
    page = _PAGE.read_text(encoding="utf-8").replace("{{STATIC}}", STATIC_PREFIX)
    return HTMLResponse(page)


def routes(settings: Settings) -> list[BaseRoute]:
    """The asset routes: none in production, which serves no IDE."""
    if settings.production:
        return []
    directory = assets_dir(settings)

    async def asset(request: Request) -> Response:
        path = ASSETS.get(request.path_params["name"])
        if path is None or not (directory / path).is_file():
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(directory / path, headers={"cache-control": "no-cache"})

    return [Route(STATIC_PREFIX + "/{name}", asset, methods=["GET", "HEAD"])]
