"""Kitchen stations, the tickets an accepted order is split into, printing them, and combos
sold out by their components: on both databases, through the API."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import kitchen_stations, kitchen_tickets, station_routes, stock_levels
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.catalog import Channel, ComboComponent, ProductKind
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.integration.test_orders import QUOTE, manager_of, move, place
from tests.integration.test_read_cache import MENU, SOLD_OUT, menu_of, serving, sku_in
from tests.shop import PAY, Shop, line, new_member, new_shop, place_input

STATION = "id name sort isDefault categoryIds productIds"
CREATE = f"""mutation($input: CreateKitchenStationInput!) {{
  createKitchenStation(input: $input) {{ station {{ {STATION} }} errors {{ code field }} }} }}"""
UPDATE = f"""mutation($input: UpdateKitchenStationInput!) {{
  updateKitchenStation(input: $input) {{ station {{ {STATION} }} errors {{ code field }} }} }}"""
REMOVE = f"""mutation($id: ID!) {{
  removeKitchenStation(stationId: $id) {{ stations {{ {STATION} }} errors {{ code field }} }} }}"""
REORDER = f"""mutation($input: ReorderKitchenStationsInput!) {{
  reorderKitchenStations(input: $input) {{ stations {{ {STATION} }} errors {{ code field }} }} }}"""
ROUTE = f"""mutation($input: RouteToKitchenStationInput!) {{
  routeToKitchenStation(input: $input) {{ stations {{ {STATION} }} errors {{ code field }} }} }}"""
STATIONS = f"""query($store: ID!) {{ kitchenStations(storeId: $store) {{ {STATION} }} }}"""
PRINT = """mutation($store: ID!, $orders: [ID!]!, $station: ID) {
  printTickets(storeId: $store, orderIds: $orders, station: $station) {
    tickets {
      id stationId stationName orderId orderNumber shortNumber channel source tableNumber
      pickupCode note acceptedAt printCount reprints printedAt
      items { name quantity combo specs { name value } }
      narrow: text(paper: MM58) wide: text(paper: MM80) escpos(paper: MM58)
    }
    errors { code field }
  } }"""


@dataclass(frozen=True)
class KitchenMenu:
    """A stir-fry and a cold dish made to order, a counted drink, and a combo of all three."""

    hot_category: int
    cold_category: int
    wok: int  # SKUs
    cold: int
    drink: int
    drink_product: int
    combo: int


async def new_kitchen_menu(engine: AsyncEngine, store_id: int, drinks: int = 10) -> KitchenMenu:
    tag = uuid.uuid4().hex[:6]
    async with SqlUnitOfWork(engine) as uow:

        async def product(category: int, kind: ProductKind, name: str) -> int:
            made = await uow.catalog.add_product(
                category_id=category,
                kind=kind,
                name=name,
                description="",
                tags=(),
                image_urls=(),
                channels=frozenset(Channel),
                listed=True,
                sort=0,
            )
            return made.id

        async def sku(
            product_id: int, *, tracked: bool, parts: tuple[ComboComponent, ...] = ()
        ) -> int:
            made = await uow.catalog.add_sku(
                product_id=product_id,
                name="",
                specs={},
                price_fen=1800,
                tracked=tracked,
                sort=0,
                components=parts,
            )
            return made.id

        hot = await uow.catalog.add_category(name=f"热菜{tag}", parent_id=None, sort=0)
        cold = await uow.catalog.add_category(name=f"凉菜{tag}", parent_id=None, sort=1)
        wok = await sku(await product(hot.id, ProductKind.DISH, "宫保鸡丁"), tracked=False)
        cucumber = await sku(await product(cold.id, ProductKind.DISH, "拍黄瓜"), tracked=False)
        drink_product = await product(hot.id, ProductKind.RETAIL, "酸梅汤")
        drink = await sku(drink_product, tracked=True)
        combo = await sku(
            await product(hot.id, ProductKind.COMBO, "商务套餐A"),
            tracked=False,
            parts=(ComboComponent(wok, 1), ComboComponent(cucumber, 2), ComboComponent(drink, 1)),
        )
        await uow.commit()
    async with engine.begin() as conn:
        await conn.execute(
            stock_levels.insert().values(
                store_id=store_id,
                sku_id=drink,
                available=drinks,
                sold_out=False,
                low_stock_threshold=0,
                version=1,
            )
        )
    return KitchenMenu(hot.id, cold.id, wok, cucumber, drink, drink_product, combo)


async def call(
    client: GraphQLClient, query: str, variables: dict[str, Any], who: dict[str, str]
) -> dict[str, Any]:
    body = await client.execute(query, variables, who)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


async def stations_of(client: GraphQLClient, shop: Shop, who: dict[str, str]) -> list[Any]:
    body = await client.execute(STATIONS, {"store": shop.store()}, who)
    assert "errors" not in body, body
    found: list[Any] = body["data"]["kitchenStations"]
    return found


async def create(
    client: GraphQLClient, shop: Shop, who: dict[str, str], name: str, **more: Any
) -> dict[str, Any]:
    return await call(
        client, CREATE, {"input": {"storeId": shop.store(), "name": name, **more}}, who
    )


async def test_store_staff_set_up_rename_order_and_remove_stations(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    wok = (await create(client, shop, manager, " 热炒 "))["station"]
    assert (wok["name"], wok["isDefault"], wok["sort"]) == ("热炒", True, 0)  # the first
    cold = (await create(client, shop, manager, "凉菜"))["station"]
    drinks = (await create(client, shop, credentials.hq_admin, "饮品", isDefault=True))["station"]
    assert (cold["isDefault"], cold["sort"], drinks["sort"]) == (False, 1, 2)
    assert [(s["name"], s["isDefault"]) for s in await stations_of(client, shop, manager)] == [
        ("热炒", False),
        ("凉菜", False),
        ("饮品", True),
    ]
    renamed = await call(
        client, UPDATE, {"input": {"stationId": cold["id"], "name": "冷菜", "sort": 9}}, manager
    )
    assert (renamed["station"]["name"], renamed["station"]["sort"]) == ("冷菜", 9)
    ordered = await call(
        client,
        REORDER,
        {"input": {"storeId": shop.store(), "stationIds": [drinks["id"], cold["id"], wok["id"]]}},
        manager,
    )
    assert [s["name"] for s in ordered["stations"]] == ["饮品", "冷菜", "热炒"]
    left = await call(client, REMOVE, {"id": drinks["id"]}, manager)
    # The default went with 饮品: the first station left takes it over.
    assert [(s["name"], s["isDefault"]) for s in left["stations"]] == [
        ("冷菜", True),
        ("热炒", False),
    ]


async def test_bad_station_input_and_strangers_change_nothing(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    menu = await new_kitchen_menu(engine, shop.store_ids[0])
    wok = (await create(client, shop, manager, "热炒"))["station"]
    cold = (await create(client, shop, manager, "凉菜"))["station"]
    before = await stations_of(client, shop, manager)

    async def refused(query: str, variables: dict[str, Any], who: dict[str, str]) -> Any:
        payload = await call(client, query, variables, who)
        assert payload["errors"], payload
        return (payload["errors"][0]["code"], payload["errors"][0]["field"])

    store = shop.store()
    assert await refused(CREATE, {"input": {"storeId": store, "name": "凉菜"}}, manager) == (
        "DUPLICATE",
        ["name"],
    )
    assert await refused(CREATE, {"input": {"storeId": store, "name": "  "}}, manager) == (
        "REQUIRED",
        ["name"],
    )
    assert (await refused(CREATE, {"input": {"storeId": store, "name": "热" * 21}}, manager))[
        0
    ] == "TOO_LONG"
    assert (
        await refused(CREATE, {"input": {"storeId": store, "name": "面点", "sort": -1}}, manager)
    )[0] == "OUT_OF_RANGE"
    assert await refused(UPDATE, {"input": {"stationId": wok["id"], "name": "凉菜"}}, manager) == (
        "DUPLICATE",
        ["name"],
    )
    assert await refused(
        UPDATE, {"input": {"stationId": wok["id"], "isDefault": False}}, manager
    ) == ("INVALID_INPUT", ["isDefault"])
    assert await refused(
        REORDER, {"input": {"storeId": store, "stationIds": [cold["id"]]}}, manager
    ) == ("INVALID_INPUT", ["stationIds"])
    assert await refused(
        REORDER, {"input": {"storeId": store, "stationIds": [wok["id"], wok["id"]]}}, manager
    ) == ("INVALID_INPUT", ["stationIds"])
    nowhere = encode_id("Store", 999_999_999)
    for query, values in (
        (CREATE, {"input": {"storeId": nowhere, "name": "面点"}}),
        (REORDER, {"input": {"storeId": nowhere, "stationIds": []}}),
        (ROUTE, {"input": {"storeId": nowhere, "stationId": None, "productIds": []}}),
    ):
        found = await refused(query, values, credentials.hq_admin)
        assert found[0] in ("NOT_FOUND", "REQUIRED"), found
    assert await refused(
        REORDER, {"input": {"storeId": nowhere, "stationIds": []}}, credentials.hq_admin
    ) == ("NOT_FOUND", ["storeId"])
    unknown_category = encode_id("Category", 999_999_999)
    assert await refused(
        ROUTE,
        {
            "input": {
                "storeId": store,
                "stationId": cold["id"],
                "categoryIds": [encode_id("Category", menu.cold_category), unknown_category],
            }
        },
        manager,
    ) == ("NOT_FOUND", ["categoryIds", "1"])
    assert await refused(
        ROUTE, {"input": {"storeId": store, "stationId": cold["id"]}}, manager
    ) == ("REQUIRED", ["categoryIds"])
    assert await refused(
        ROUTE, {"input": {"storeId": store, "stationId": "bm9wZQ", "productIds": []}}, manager
    ) == ("INVALID_ID", ["stationId"])
    assert await refused(REMOVE, {"id": encode_id("KitchenStation", 999_999_999)}, manager) == (
        "NOT_FOUND",
        ["stationId"],
    )
    # Another store's manager, a member: refused, and told nothing of the station.
    other = credentials.manager_store_1
    assert (await refused(CREATE, {"input": {"storeId": store, "name": "面点"}}, other))[0] == (
        "FORBIDDEN"
    )
    assert (await refused(REMOVE, {"id": wok["id"]}, other))[0] == "FORBIDDEN"
    assert (await refused(UPDATE, {"input": {"stationId": wok["id"], "name": "x"}}, other))[
        0
    ] == "FORBIDDEN"
    _, member = await new_member(settings, engine)
    assert (await refused(CREATE, {"input": {"storeId": store, "name": "面点"}}, member))[0] in (
        "FORBIDDEN",
        "UNAUTHENTICATED",
    )
    body = await client.execute(STATIONS, {"store": store}, other)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await client.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": wok["id"]}, other
    )
    assert node["data"]["node"] is None

    assert await stations_of(client, shop, manager) == before
    async with engine.connect() as conn:
        routes = await conn.scalar(
            sa.select(sa.func.count()).where(station_routes.c.store_id == shop.store_ids[0])
        )
        count = await conn.scalar(
            sa.select(sa.func.count()).where(kitchen_stations.c.store_id == shop.store_ids[0])
        )
    assert (routes, count) == (0, 2)


async def kitchen_of(
    client: GraphQLClient, shop: Shop, manager: dict[str, str], menu: KitchenMenu
) -> dict[str, str]:
    """热炒 (the default), 凉菜 (cold dishes' category) and 饮品 (the drink product)."""
    ids = {}
    for name in ("热炒", "凉菜", "饮品"):
        ids[name] = (await create(client, shop, manager, name))["station"]["id"]
    routed = await call(
        client,
        ROUTE,
        {
            "input": {
                "storeId": shop.store(),
                "stationId": ids["凉菜"],
                "categoryIds": [encode_id("Category", menu.cold_category)],
            }
        },
        manager,
    )
    assert routed["errors"] == []
    routed = await call(
        client,
        ROUTE,
        {
            "input": {
                "storeId": shop.store(),
                "stationId": ids["饮品"],
                "productIds": [encode_id("Product", menu.drink_product)],
            }
        },
        manager,
    )
    by_name = {s["name"]: s for s in routed["stations"]}
    assert by_name["凉菜"]["categoryIds"] == [encode_id("Category", menu.cold_category)]
    assert by_name["饮品"]["productIds"] == [encode_id("Product", menu.drink_product)]
    return ids


async def test_an_accepted_order_is_split_into_station_tickets_and_printed_in_batches(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    menu = await new_kitchen_menu(engine, shop.store_ids[0])
    stations = await kitchen_of(client, shop, manager, menu)
    _, member = await new_member(settings, engine)
    orders = []
    for note in ("少辣", ""):
        placed = await place(
            client,
            member,
            place_input(
                line(menu.combo, 2),
                line(menu.wok, 1),
                channel="PICKUP",
                store=shop.store(),
                note=note or None,
            ),
        )
        assert placed["errors"] == [], placed
        orders.append(placed["order"]["id"])
        await client.execute(PAY, {"orderId": orders[-1]}, member)
    store = shop.store()

    # Paid, not accepted: nothing for the kitchen yet.
    early = await call(client, PRINT, {"store": store, "orders": orders[:1]}, manager)
    assert early["errors"] == [{"code": "NOT_FOUND", "field": ["orderIds", "0"]}]
    for order_id in orders:
        assert (await move(client, manager, order_id, "ACCEPTED"))["errors"] == []

    batch = await call(client, PRINT, {"store": store, "orders": orders}, manager)
    assert batch["errors"] == []
    tickets = batch["tickets"]
    assert [(t["orderId"], t["stationName"]) for t in tickets] == [
        (orders[0], "热炒"),
        (orders[0], "凉菜"),
        (orders[0], "饮品"),
        (orders[1], "热炒"),
        (orders[1], "凉菜"),
        (orders[1], "饮品"),
    ]
    wok, cold, drinks = tickets[:3]
    assert [s["stationId"] for s in tickets[:3]] == [stations[n] for n in ("热炒", "凉菜", "饮品")]
    assert [(i["name"], i["quantity"], i["combo"]) for i in wok["items"]] == [
        ("宫保鸡丁", 2, "商务套餐A"),
        ("宫保鸡丁", 1, None),
    ]
    assert [(i["name"], i["quantity"], i["combo"]) for i in cold["items"]] == [
        ("拍黄瓜", 4, "商务套餐A")
    ]
    assert [(i["name"], i["quantity"]) for i in drinks["items"]] == [("酸梅汤", 2)]
    assert (wok["channel"], wok["source"], wok["tableNumber"]) == ("PICKUP", "MINI_PROGRAM", None)
    assert wok["shortNumber"] == wok["pickupCode"] and wok["pickupCode"]
    assert wok["note"] == "少辣" and tickets[3]["note"] == ""
    assert wok["acceptedAt"].endswith("+08:00")  # the stores' time, as printed
    local_time = wok["acceptedAt"][11:16]
    assert local_time in wok["narrow"] and local_time in wok["wide"]
    assert (wok["printCount"], wok["reprints"]) == (1, 0) and wok["printedAt"]
    assert max(len(line.encode("gb18030")) for line in wok["narrow"].split("\n")) <= 32
    assert max(len(line.encode("gb18030")) for line in wok["wide"].split("\n")) <= 48
    raw = base64.b64decode(wok["escpos"])
    assert raw.startswith(b"\x1b@") and raw.endswith(b"\x1dVB\x00")
    assert "宫保鸡丁".encode("gb18030") in raw

    # A reprint of one station's tickets: counted, and said on the ticket.
    again = await call(
        client, PRINT, {"store": store, "orders": orders[:1], "station": stations["凉菜"]}, manager
    )
    (reprint,) = again["tickets"]
    assert (reprint["id"], reprint["printCount"], reprint["reprints"]) == (cold["id"], 2, 1)
    assert "重打" in reprint["narrow"]

    # Strangers and wrong stores print nothing.
    other = await call(
        client, PRINT, {"store": store, "orders": orders}, credentials.manager_store_1
    )
    assert other["errors"][0]["code"] == "FORBIDDEN"
    elsewhere = await call(
        client, PRINT, {"store": encode_id("Store", 1), "orders": orders}, credentials.hq_admin
    )
    assert elsewhere["errors"] == [{"code": "NOT_FOUND", "field": ["orderIds", "0"]}]
    too_many = await call(client, PRINT, {"store": store, "orders": orders * 26}, manager)
    assert too_many["errors"][0]["code"] == "OUT_OF_RANGE"
    empty = await call(client, PRINT, {"store": store, "orders": []}, manager)
    assert empty["errors"][0]["code"] == "REQUIRED"
    async with engine.connect() as conn:
        counts = (
            await conn.execute(
                sa.select(kitchen_tickets.c.print_count)
                .where(kitchen_tickets.c.store_id == shop.store_ids[0])
                .order_by(kitchen_tickets.c.id)
            )
        ).scalars()
        assert list(counts) == [1, 2, 1, 1, 1, 1]


async def test_an_order_accepted_with_no_stations_is_one_ticket_of_the_kitchen(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    menu = await new_kitchen_menu(engine, shop.store_ids[0])
    _, member = await new_member(settings, engine)
    placed = await place(
        client, member, place_input(line(menu.combo, 1), channel="PICKUP", store=shop.store())
    )
    order_id = placed["order"]["id"]
    await client.execute(PAY, {"orderId": order_id}, member)
    assert (await move(client, manager, order_id, "ACCEPTED"))["errors"] == []
    batch = await call(client, PRINT, {"store": shop.store(), "orders": [order_id]}, manager)
    (ticket,) = batch["tickets"]
    assert (ticket["stationName"], ticket["stationId"]) == ("厨房", None)
    assert [i["name"] for i in ticket["items"]] == ["宫保鸡丁", "拍黄瓜", "酸梅汤"]
    # The order's own one-piece ticket is in the stores' time too, not UTC.
    body = await client.execute(
        "query($id: ID!) { order(id: $id) { placedAt kitchenTicket { placedAt text } } }",
        {"id": order_id},
        manager,
    )
    found = body["data"]["order"]
    local = found["kitchenTicket"]["placedAt"]
    assert (
        local.endswith("+08:00") and local[:16].replace("T", " ") in found["kitchenTicket"]["text"]
    )


async def test_a_combo_is_sold_out_where_a_component_is_in_menu_quote_and_order(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    menu = await new_kitchen_menu(engine, store, drinks=10)
    _, member = await new_member(settings, engine)
    where = {"storeId": shop.store()}

    async with serving(settings, engine) as app:

        async def combo_sold_out() -> bool:
            read, _ = await app.read(MENU, menu_of(store))
            return bool(sku_in(read, menu.combo)["stock"]["soldOut"])  # type: ignore[index]

        async def quoted() -> tuple[bool, str | None]:
            body = await app.http.post(
                "/graphql",
                json={
                    "query": QUOTE,
                    "variables": {
                        "input": {
                            "channel": "PICKUP",
                            "storeId": shop.store(),
                            "lines": [line(menu.combo, 1)],
                        }
                    },
                },
                headers=member,
            )
            answer = body.json()["data"]["quoteOrder"]
            return answer["placeable"], answer["lines"][0]["problem"]

        async def ordered() -> list[Any]:
            body = await app.http.post(
                "/graphql",
                json={
                    "query": """mutation($input: PlaceOrderInput!) {
                      placeOrder(input: $input) { order { id } errors { code field } } }""",
                    "variables": {
                        "input": place_input(
                            line(menu.combo, 1), channel="PICKUP", store=shop.store()
                        )
                    },
                },
                headers=member,
            )
            errors: list[Any] = body.json()["data"]["placeOrder"]["errors"]
            return errors

        assert not await combo_sold_out()
        _, hit = await app.read(MENU, menu_of(store))
        assert hit  # kept: what follows must drop it
        assert await quoted() == (True, None)

        # 沽清 of a component made to order.
        await app.write(
            SOLD_OUT,
            {"input": {**where, "skuId": encode_id("Sku", menu.cold), "soldOut": True}},
            credentials.hq_admin,
        )
        assert await combo_sold_out()
        assert await quoted() == (False, "SOLD_OUT")
        assert await ordered() == [{"code": "SOLD_OUT", "field": ["lines", "0", "skuId"]}]
        await app.write(
            SOLD_OUT,
            {"input": {**where, "skuId": encode_id("Sku", menu.cold), "soldOut": False}},
            credentials.hq_admin,
        )
        assert not await combo_sold_out()
        assert await quoted() == (True, None)

        # A counted component running out (a sale elsewhere takes the last drinks).
        sale = """mutation($input: RecordSaleInput!) {
          recordSale(input: $input) { errors { code } } }"""
        await app.write(
            sale,
            {
                "input": {
                    **where,
                    "source": "POS",
                    "externalOrderId": uuid.uuid4().hex,
                    "lines": [{"skuId": encode_id("Sku", menu.drink), "quantity": 10}],
                }
            },
            credentials.hq_admin,
        )
        assert await combo_sold_out()
        assert await quoted() == (False, "SOLD_OUT")
        assert (await ordered())[0]["code"] == "SOLD_OUT"
        _, hit = await app.read(MENU, menu_of(store))
        assert hit  # and kept again, until the next change


async def test_racing_set_ups_keep_names_unique_and_one_default(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    names = ["热炒", "热炒", "热炒", "凉菜", "饮品", "面点", "烧腊", "汤品"]
    answers = await asyncio.gather(*(create(client, shop, manager, n) for n in names))
    refused = [a["errors"][0]["code"] for a in answers if a["errors"]]
    assert refused == ["DUPLICATE", "DUPLICATE"]
    made = await stations_of(client, shop, manager)
    assert sorted(s["name"] for s in made) == sorted(set(names))
    assert sum(s["isDefault"] for s in made) == 1


async def test_racing_acceptances_make_one_set_of_tickets_and_racing_prints_all_count(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    manager = await manager_of(settings, engine, shop)
    menu = await new_kitchen_menu(engine, shop.store_ids[0])
    await kitchen_of(client, shop, manager, menu)
    _, member = await new_member(settings, engine)
    placed = await place(
        client, member, place_input(line(menu.combo, 1), channel="PICKUP", store=shop.store())
    )
    order_id = placed["order"]["id"]
    await client.execute(PAY, {"orderId": order_id}, member)
    moves = await asyncio.gather(*(move(client, manager, order_id, "ACCEPTED") for _ in range(4)))
    assert sorted(bool(m["errors"]) for m in moves) == [False, True, True, True]
    prints = await asyncio.gather(
        *(
            call(client, PRINT, {"store": shop.store(), "orders": [order_id]}, manager)
            for _ in range(5)
        )
    )
    assert all(p["errors"] == [] for p in prints)
    async with engine.connect() as conn:
        counts = (
            await conn.execute(
                sa.select(kitchen_tickets.c.print_count).where(
                    kitchen_tickets.c.order_id == decode_id(order_id, "Order", ["id"])
                )
            )
        ).scalars()
        assert list(counts) == [5, 5, 5]  # one ticket per station, each printed five times
