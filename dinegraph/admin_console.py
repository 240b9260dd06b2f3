"""The staff console at /admin: the single-page app built from the repository's ``admin/``.

`make run` builds it (``npm ci && npm run build`` in ``admin/``) into ``admin/dist``. Files
there are served as they are: Vite's hashed ``assets/`` for a year (their names change when
their content does), everything else revalidated. Any other path under /admin is one of the
app's own routes and gets ``index.html``. Without a build, /admin says how to get one.
The console talks to the public /graphql only, like any other client.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dinegraph.settings import Settings

PREFIX = "/admin"

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "admin" / "dist"
"""Where `npm run build` in the repository's admin/ folder writes the console."""

_HASHED = "assets/"
_FOREVER = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"

_MISSING = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>dinegraph 管理后台 · staff console</title></head>
<body style="font: 16px/1.6 system-ui, sans-serif; max-width: 44em; margin: 3em auto">
<h1>管理后台尚未构建 · The staff console is not built</h1>
<p>This server hands out the console from <code>{dist}</code>, which has no
<code>index.html</code>.</p>
<p>Install <a href="https://nodejs.org/">Node.js</a> (with npm), then run <code>make run</code>
in the repository: it installs the console's packages and builds it. Or build it yourself:
<code>cd admin &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload this page.
(<code>DINEGRAPH_ADMIN_DIST</code> points the server at another build.)</p>
<p>安装 Node.js 与 npm 后,在仓库中运行 <code>make run</code> 即可构建并打开管理后台。</p>
<p>The GraphQL endpoint works without it: <a href="/graphql">/graphql</a>.</p>
</body>
</html>
"""


def dist_dir(settings: Settings) -> Path:
    return settings.admin_dist or DEFAULT_DIST


def _file_in(directory: Path, relative: str) -> Path | None:
    """The file `relative` names inside `directory`, never one outside it."""
    if not relative or "\x00" in relative:
        return None
    root = directory.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def routes(settings: Settings) -> list[BaseRoute]:
    directory = dist_dir(settings)

    def index() -> Response:
        page = directory / "index.html"
        if not page.is_file():
            return HTMLResponse(_MISSING.format(dist=html.escape(str(directory))))
        return FileResponse(page, headers={"cache-control": _REVALIDATE})

    async def redirect(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=308)

    async def console(request: Request) -> Response:
        relative: str = request.path_params.get("path", "")
        found = _file_in(directory, relative)
        if found is not None:
            cache = _FOREVER if relative.startswith(_HASHED) else _REVALIDATE
            return FileResponse(found, headers={"cache-control": cache})
        if relative.startswith(_HASHED):
            # A missing hashed file is an old build's: the app's fallback page would be
            # answered as JavaScript and break the page that asked.
            return Response("Not Found", status_code=404, media_type="text/plain")
        return index()

    return [
        Route(PREFIX, redirect, methods=["GET", "HEAD"]),
        Route(PREFIX + "/{path:path}", console, methods=["GET", "HEAD"]),
    ]


def announcement(settings: Settings, base_url: str) -> str:
    """What `serve` says of the console when it starts: where it is, or how to get it."""
    directory = dist_dir(settings)
    if (directory / "index.html").is_file():
        return f"staff console: {base_url}{PREFIX}/"
    return (
        f"staff console: not built ({directory} has no index.html): install Node.js with npm, "
        "then `make run`, or `cd admin && npm ci && npm run build`"
    )
