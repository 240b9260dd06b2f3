"""The mini-program's own documents (clients/miniprogram/*.graphql), taken by operation name,
on a real server: find a store, read its menu, sign in by SMS code, quote, place and pay,
read the order back, with the stock feed and the order's feed following along."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dinegraph.settings import Settings
from tests.e2e.conftest import running_server
from tests.e2e.test_member_contract import _code_from_log
from tests.integration.test_client_documents import operation_document
from tests.shop import next_noon
from tests.wsclient import session

# 深圳市民中心, as the README's NearbyStores example.
CIVIC_CENTRE = {"lat": 22.5431, "lng": 114.0579}


@pytest.fixture(scope="module")
def noon_server(settings: Settings) -> Iterator[str]:
    """A real server whose clock says noon, so the demo stores are open."""
    with running_server(settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        yield url


class MiniProgram:
    """Sends the documents by operation name, as the mini-program does."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.token: str | None = None

    async def send(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.client.post(
            "/graphql",
            json={
                "query": operation_document(name),
                "operationName": name,
                "variables": variables or {},
            },
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


async def _store_with_stock(app: MiniProgram) -> tuple[dict[str, Any], dict[str, Any]]:
    """The nearest open store with a pre-made dish in stock for pickup, and that SKU."""
    nearby = (await app.send("NearbyStores", {**CIVIC_CENTRE, "first": 14}))["stores"]
    assert nearby["totalCount"] >= 10
    distances = [e["node"]["distanceMeters"] for e in nearby["edges"]]
    assert distances == sorted(distances)
    for edge in nearby["edges"]:
        store = edge["node"]
        if not store["isOpen"]:
            continue
        menu = (await app.send("StoreMenu", {"storeId": store["id"], "channel": "PICKUP"}))["menu"]
        assert menu["store"]["id"] == store["id"] and menu["channel"] == "PICKUP"
        for category in menu["categories"]:
            for product in category["products"]:
                for sku in product["skus"]:
                    stock = sku["stock"]
                    if (stock["available"] or 0) >= 5 and not stock["soldOut"]:
                        assert product["kind"] == "RETAIL"
                        return store, sku
    raise AssertionError("no open demo store holds a pre-made dish")


async def test_sign_in_quote_place_and_pay_with_the_mini_programs_documents(
    noon_server: str,
) -> None:
    phone = f"135{random.randrange(10**8):08d}"
    async with httpx.AsyncClient(base_url=noon_server, timeout=30) as client:
        app = MiniProgram(client)
        store, sku = await _store_with_stock(app)

        asked = await app.send("RequestLoginCode", {"phone": phone})
        assert asked["requestLoginCode"]["errors"] == []
        code = _code_from_log(noon_server, phone)
        login = (await app.send("LoginWithSmsCode", {"phone": phone, "code": code}))["login"]
        assert login["errors"] == []
        assert login["member"]["tier"] == "NORMAL"
        assert login["member"]["phone"] == f"{phone[:3]}****{phone[-4:]}"
        assert login["refreshToken"]
        app.token = login["token"]
        wallet = (await app.send("Wallet"))["viewer"]["member"]
        assert (wallet["id"], wallet["points"], wallet["tier"]) == (
            login["member"]["id"],
            0,
            "NORMAL",
        )

        cart = {
            "channel": "PICKUP",
            "storeId": store["id"],
            "lines": [{"skuId": sku["id"], "quantity": 2}],
        }
        async with session(noon_server) as stock_feed:
            await stock_feed.subscribe(
                operation_document("StockFeed"), {"storeId": store["id"], "skuIds": [sku["id"]]}
            )
            before = (await stock_feed.next_data(within=30))["stockChanged"]
            assert before["sku"]["id"] == sku["id"]
            assert before["available"] == sku["stock"]["available"]

            quote = (await app.send("QuoteCart", {"input": cart}))["quoteOrder"]
            assert quote["placeable"] is True
            assert quote["store"]["id"] == store["id"]
            assert quote["storeProblem"] is None and quote["storeRefusals"] == []
            [line] = quote["lines"]
            assert (line["sku"]["id"], line["quantity"], line["problem"]) == (sku["id"], 2, None)
            assert line["unitPrice"] == sku["price"]
            assert line["amount"]["fen"] == 2 * sku["price"]["fen"]
            assert quote["subtotal"]["fen"] == line["amount"]["fen"]
            assert quote["total"]["fen"] == (
                quote["subtotal"]["fen"]
                - quote["tierDiscount"]["fen"]
                - quote["couponDiscount"]["fen"]
                + quote["deliveryFee"]["fen"]
                - quote["deliveryDiscount"]["fen"]
                + quote["packagingFee"]["fen"]
            )
            assert quote["total"]["display"] == f"¥{quote['total']['fen'] / 100:.2f}"

            key = f"miniprogram-{uuid.uuid4().hex}"
            placed = (await app.send("PlaceOrder", {"input": {**cart, "idempotencyKey": key}}))[
                "placeOrder"
            ]
            assert placed["errors"] == [] and placed["replayed"] is False
            order = placed["order"]
            assert order["status"] == "PENDING_PAYMENT"
            assert order["total"] == quote["total"]
            assert order["store"]["id"] == store["id"]
            assert [(x["sku"]["id"], x["quantity"]) for x in order["lines"]] == [(sku["id"], 2)]

            # The order holds the stock: the feed hears it at once.
            held = (await stock_feed.next_data(within=30))["stockChanged"]
            assert held["available"] == before["available"] - 2
            assert held["version"] == before["version"] + 1

        async with session(noon_server, {"authorization": f"Bearer {app.token}"}) as order_feed:
            await order_feed.subscribe(operation_document("OrderUpdates"), {"orderId": order["id"]})
            now = (await order_feed.next_data(within=30))["orderUpdates"]
            assert (now["id"], now["status"]) == (order["id"], "PENDING_PAYMENT")

            paid = (await app.send("PayOrder", {"orderId": order["id"]}))["payOrder"]
            assert paid["errors"] == []
            assert (paid["order"]["id"], paid["order"]["status"]) == (order["id"], "PAID")
            assert paid["order"]["paidAt"] is not None
            pickup_code = paid["order"]["pickupCode"]
            assert pickup_code is not None and len(pickup_code) == 4 and pickup_code.isdigit()

            update = (await order_feed.next_data(within=30))["orderUpdates"]
            assert (update["status"], update["pickupCode"]) == ("PAID", pickup_code)
            assert update["version"] > now["version"]

        read = (await app.send("OrderDetail", {"id": order["id"]}))["order"]
        assert read["status"] == "PAID" and read["number"] == order["number"]
        assert read["total"] == quote["total"] and read["pickupCode"] == pickup_code
        mine = (await app.send("MyOrders", {"first": 5}))["viewer"]["member"]["orders"]
        assert [e["node"]["id"] for e in mine["edges"]] == [order["id"]]
        assert mine["edges"][0]["node"]["status"] == "PAID"

        again = (await app.send("PlaceOrder", {"input": {**cart, "idempotencyKey": key}}))[
            "placeOrder"
        ]
        assert again["replayed"] is True and again["order"]["id"] == order["id"]
