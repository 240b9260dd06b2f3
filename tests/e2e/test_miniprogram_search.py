"""The mini-program's search documents (clients/miniprogram/search.graphql), sent verbatim
by operation name to a real `dinegraph serve` on the demo chain: initials, pinyin, a typo, a
synonym and a tag find the right dishes, each on sale at the store as its menu shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dinegraph.settings import Settings
from tests.e2e.conftest import running_server
from tests.e2e.test_miniprogram_documents import CIVIC_CENTRE, MiniProgram
from tests.integration.test_client_documents import operation_document
from tests.shop import next_noon

WANTED = ("糖醋排骨", "鲜做糖醋排骨", "香辣小龙虾")


@pytest.fixture(scope="module")
def search_server(settings: Settings) -> Iterator[str]:
    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        yield url


def _on_sale(menu: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The menu's products with some SKU not sold out, by name."""
    return {
        product["name"]: product
        for category in menu["categories"]
        for product in category["products"]
        if any(not sku["stock"]["soldOut"] for sku in product["skus"])
    }


async def _store_selling(app: MiniProgram) -> tuple[str, dict[str, dict[str, Any]]]:
    """An open store near the civic centre selling every WANTED dish for delivery now."""
    nearby = (await app.send("NearbyStores", {**CIVIC_CENTRE, "first": 14}))["stores"]
    for edge in nearby["edges"]:
        store = edge["node"]
        if not store["isOpen"]:
            continue
        menu = (await app.send("StoreMenu", {"storeId": store["id"], "channel": "DELIVERY"}))[
            "menu"
        ]
        selling = _on_sale(menu)
        if all(name in selling for name in WANTED):
            return store["id"], selling
    raise AssertionError("no open demo store sells the dishes searched for")


async def test_the_search_box_finds_dishes_as_customers_type_them(search_server: str) -> None:
    async with httpx.AsyncClient(base_url=search_server, timeout=30) as client:
        app = MiniProgram(client)
        store_id, selling = await _store_selling(app)

        async def search(query: str) -> list[dict[str, Any]]:
            variables = {"query": query, "storeId": store_id, "channel": "DELIVERY"}
            found = (await app.send("SearchProducts", variables))["searchProducts"]
            assert found["totalCount"] >= len(found["edges"])
            for edge in found["edges"]:
                # Every result is on sale there, priced and stocked as the menu shows it.
                product = edge["node"]
                assert product == selling[product["name"]], product["name"]
            edges: list[dict[str, Any]] = found["edges"]
            return edges

        def first(edges: list[dict[str, Any]]) -> tuple[str, str]:
            return edges[0]["node"]["name"], edges[0]["matchedBy"]

        tcpg = await search("tcpg")
        assert first(tcpg) == ("糖醋排骨", "INITIALS")
        assert "鲜做糖醋排骨" in [e["node"]["name"] for e in tcpg]
        assert first(await search("tangcu")) == ("糖醋排骨", "PINYIN")
        assert first(await search("tangcupaigo")) == ("糖醋排骨", "TYPO")
        # 麻小 is the operator's synonym of 小龙虾: every crayfish dish, each by the synonym
        # (which of them leads follows the store's sales, which the demo history moves).
        by_synonym = await search("麻小")
        assert {e["matchedBy"] for e in by_synonym} == {"SYNONYM"}
        assert "香辣小龙虾" in [e["node"]["name"] for e in by_synonym]
        by_tag = {(e["node"]["name"], e["matchedBy"]) for e in await search("夜宵")}
        assert ("香辣小龙虾", "TAG") in by_tag
        assert await search("   ") == []

        suggested = await app.send("SearchSuggestions", {"prefix": "tang"})
        assert "糖醋排骨" in suggested["searchSuggestions"]
        assert len(suggested["searchSuggestions"]) <= 8

        # 10 KB typed (or pasted) into the box: a coded refusal, never a server error.
        response = await client.post(
            "/graphql",
            json={
                "query": operation_document("SearchProducts"),
                "operationName": "SearchProducts",
                "variables": {"query": "糖" * 10_240, "storeId": store_id, "channel": "DELIVERY"},
            },
        )
        assert response.status_code == 200, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "TOO_LONG", "field": ["query"]}
