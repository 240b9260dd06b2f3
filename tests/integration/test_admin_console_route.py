"""/admin hands out the console's build: hashed assets cached for good, the app's own
routes answered with its page, nothing outside the build, and without a build a page
that says how to get one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.settings import Mode, Settings
from tests.conftest import make_settings

PAGE = (
    '<!doctype html><html><head><script src="/admin/assets/index-abc123.js"></script></head></html>'
)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    built = tmp_path / "dist"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text(PAGE)
    (built / "assets" / "index-abc123.js").write_text("console.log('console')")
    (built / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return built


async def _client(settings: Settings, engine: AsyncEngine, dist: Path) -> httpx.AsyncClient:
    app = create_app(settings.model_copy(update={"admin_dist": dist}), engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def http(
    settings: Settings, engine: AsyncEngine, dist: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(settings, engine, dist) as client:
        yield client


async def test_the_console_page_is_revalidated_and_its_routes_fall_back_to_it(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/admin/", "/admin/stock", "/admin/orders/123", "/admin/index.html"):
        page = await http.get(path)
        assert page.status_code == 200, path
        assert page.text == PAGE
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
    bare = await http.get("/admin")
    assert bare.status_code == 308 and bare.headers["location"] == "/admin/"


async def test_hashed_assets_are_cached_for_a_year_and_other_files_revalidated(
    http: httpx.AsyncClient,
) -> None:
    asset = await http.get("/admin/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.text == "console.log('console')"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]
    icon = await http.get("/admin/favicon.svg")
    assert icon.status_code == 200 and icon.headers["cache-control"] == "no-cache"
    # An old build's asset is a 404, not the page answered as JavaScript.
    gone = await http.get("/admin/assets/index-old999.js")
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/admin/..%2Fsecret.txt", "/admin/%2E%2E/secret.txt", "/admin/assets/..%2F..%2Fsecret.txt"],
)
async def test_nothing_outside_the_build_is_served(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)
    assert "outside the build" not in answer.text


async def test_without_a_build_the_page_says_how_to_get_one(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    async with await _client(settings, engine, tmp_path / "nothing") as http:
        page = await http.get("/admin/stock")
        assert page.status_code == 200
        assert "make run" in page.text and "npm" in page.text
        assert str(tmp_path / "nothing") in page.text
        assert "<script" not in page.text


async def test_production_serves_the_console_too(
    settings: Settings, engine: AsyncEngine, dist: Path
) -> None:
    production = make_settings(settings.database_url, mode=Mode.PRODUCTION)
    assert production.production
    async with await _client(production, engine, dist) as http:
        page = await http.get("/admin/campaigns")
        assert page.status_code == 200 and page.text == PAGE
