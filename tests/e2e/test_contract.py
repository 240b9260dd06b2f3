"""The documents the mini-program is written against, verbatim, on a real server."""

from __future__ import annotations

import httpx

NEARBY_STORES = """
query NearbyStores($lat: Float!, $lng: Float!) {
  stores(near: {lat: $lat, lng: $lng}, first: 5) {
    edges { node { id name distanceMeters } }
  }
}
"""

STORE_MENU = """
query StoreMenu($storeId: ID!) {
  menu(storeId: $storeId, channel: DELIVERY) {
    store { id name }
    categories {
      id name
      products {
        id name kind tags
        skus { id name price { fen display } stock { available soldOut } }
      }
    }
  }
}
"""

# 深圳市民中心, in GCJ-02.
CIVIC_CENTRE = {"lat": 22.5431, "lng": 114.0579}


def test_nearby_stores_then_the_nearest_store_menu(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        stores = client.post(
            "/graphql", json={"query": NEARBY_STORES, "variables": CIVIC_CENTRE}
        ).json()
        assert "errors" not in stores
        edges = stores["data"]["stores"]["edges"]
        assert len(edges) == 5
        distances = [e["node"]["distanceMeters"] for e in edges]
        assert distances == sorted(distances)
        nearest = edges[0]["node"]
        assert nearest["name"].startswith("味知堂")

        menu = client.post(
            "/graphql", json={"query": STORE_MENU, "variables": {"storeId": nearest["id"]}}
        ).json()
    assert "errors" not in menu
    data = menu["data"]["menu"]
    assert data["store"] == {"id": nearest["id"], "name": nearest["name"]}
    assert len(data["categories"]) >= 5
    products = [p for c in data["categories"] for p in c["products"]]
    assert len(products) >= 40
    assert {p["kind"] for p in products} == {"DISH", "COMBO", "RETAIL"}
    assert any(p["name"] == "糖醋排骨" and p["kind"] == "RETAIL" for p in products)
    for product in products:
        assert product["skus"]
        for sku in product["skus"]:
            assert sku["price"]["fen"] > 0
            assert sku["price"]["display"].startswith("¥")
            available = sku["stock"]["available"]
            if product["kind"] == "RETAIL":
                assert isinstance(available, int) and available >= 0
                assert sku["stock"]["soldOut"] is (available == 0) or sku["stock"]["soldOut"]
            else:
                assert available is None


def test_graphiql_is_served_in_development(live_server: str) -> None:
    page = httpx.get(f"{live_server}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "graphiql" in page.text.lower()
