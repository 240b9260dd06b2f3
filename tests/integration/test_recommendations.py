"""猜你喜欢 and behaviour events on the demo chain's database (seeded with order history and
a built model): what a demo member is shown, availability, trackEvents' rules, bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.engine import create_engine
from dinegraph.db.recommendations import build_recommendations, current_version
from dinegraph.db.tables import (
    behaviour_events,
    members,
    order_lines,
    orders,
    products,
    recommendation_models,
    recommendation_neighbours,
    recommendation_popularity,
    skus,
    stock_levels,
)
from dinegraph.domain.behaviour import MAX_BATCH, MAX_KEPT, MAX_PER_MINUTE
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_member_token
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient, make_settings
from tests.databases import fresh_database
from tests.shop import new_member

STORE_1 = encode_id("Store", 1)

RECOMMEND = """
query($scene: RecommendationScene!, $store: ID, $product: ID, $cart: [ID!],
      $context: RecommendationContextInput, $device: String, $first: Int! = 10) {
  recommendations(scene: $scene, storeId: $store, productId: $product, cart: $cart,
                  context: $context, deviceId: $device, first: $first) {
    product { id name tags skus { id price { fen } } }
    reason
    reasonKind
    score
  }
}"""

DELIVERY = """
query($scene: RecommendationScene!, $store: ID, $channel: Channel!,
      $context: RecommendationContextInput) {
  recommendations(scene: $scene, storeId: $store, channel: $channel, context: $context) {
    product { id channels }
  }
}"""

TRACK = """
mutation($input: TrackEventsInput!) {
  trackEvents(input: $input) { accepted duplicates merged errors { code field } }
}"""

MENU = """
query($store: ID!) { menu(storeId: $store, channel: PICKUP) {
  categories { products { id skus { id price { fen } stock { soldOut } } } } } }"""


async def _demo_member(settings: Settings, engine: AsyncEngine, n: int = 1) -> dict[str, str]:
    async with engine.connect() as conn:
        member_id = await conn.scalar(
            sa.select(members.c.id).where(members.c.wechat_openid == f"demo-member-{n}")
        )
    assert member_id is not None, "the demo seed has its demo members"
    return {"Authorization": f"Bearer {issue_member_token(settings, member_id)}"}


async def _product_id(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(products.c.id).where(products.c.name == name))
    assert found is not None
    return int(found)


def _event(kind: str = "VIEW_PRODUCT", product: str | None = None, **more: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"clientEventId": f"ev-{uuid.uuid4().hex}", "kind": kind, **more}
    if product is not None:
        event["productId"] = product
    return event


async def test_a_demo_members_home_shows_dishes_the_store_sells_now_with_reasons(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    member = await _demo_member(settings, engine)
    body = await client.execute(RECOMMEND, {"scene": "HOME", "store": STORE_1}, member)
    found = body["data"]["recommendations"]
    assert len(found) == 10
    assert all(r["reason"] for r in found)
    # 爱吃辣的小王 likes 川湘辣味: their history shows in the reasons and the dishes.
    kinds = {r["reasonKind"] for r in found}
    assert kinds & {"ORDER_AGAIN", "TASTE", "ALSO_LIKED", "BOUGHT_TOGETHER"}
    assert sum("辣" in " ".join(r["product"]["tags"]) for r in found) >= 3
    menu = await client.execute(MENU, {"store": STORE_1})
    on_sale = {
        p["id"]
        for c in menu["data"]["menu"]["categories"]
        for p in c["products"]
        if any(not s["stock"]["soldOut"] for s in p["skus"])
    }
    assert {r["product"]["id"] for r in found} <= on_sale
    prices = {
        s["id"]: s["price"]["fen"]
        for c in menu["data"]["menu"]["categories"]
        for p in c["products"]
        for s in p["skus"]
    }
    # Priced at the store, as its menu says (the CBD store charges more for some dishes).
    assert all(s["price"]["fen"] == prices[s["id"]] for r in found for s in r["product"]["skus"])
    english = await client.execute(
        RECOMMEND, {"scene": "HOME", "store": STORE_1}, {**member, "Accept-Language": "en"}
    )
    first_reason = english["data"]["recommendations"][0]["reason"]
    assert first_reason.startswith(("Often", "People", "You", "Order", "Something", "Popular"))


async def test_a_product_page_shows_what_is_bought_with_it(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    body = await client.execute(RECOMMEND, {"scene": "PRODUCT", "store": STORE_1, "product": ribs})
    found = body["data"]["recommendations"]
    assert found and ribs not in {r["product"]["id"] for r in found}
    together = [r for r in found if r["reasonKind"] == "BOUGHT_TOGETHER"]
    assert together and together[0]["reason"] == "常与鲜做糖醋排骨一起购买"


async def test_a_sold_out_dish_is_never_recommended(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    member = await _demo_member(settings, engine)
    before = await client.execute(RECOMMEND, {"scene": "HOME", "store": STORE_1}, member)
    top = before["data"]["recommendations"][0]["product"]
    product_id = int(await _product_id(engine, top["name"]))
    async with engine.begin() as conn:
        sku_ids = list(
            await conn.scalars(sa.select(skus.c.id).where(skus.c.product_id == product_id))
        )
        kept = (
            await conn.execute(
                sa.select(stock_levels).where(
                    stock_levels.c.store_id == 1, stock_levels.c.sku_id.in_(sku_ids)
                )
            )
        ).all()
        await conn.execute(
            stock_levels.delete().where(
                stock_levels.c.store_id == 1, stock_levels.c.sku_id.in_(sku_ids)
            )
        )
        await conn.execute(
            stock_levels.insert(),
            [
                {
                    "store_id": 1,
                    "sku_id": s,
                    "available": None,
                    "sold_out": True,
                    "low_stock_threshold": 5,
                    "version": 1,
                }
                for s in sku_ids
            ],
        )
    try:
        after = await client.execute(RECOMMEND, {"scene": "HOME", "store": STORE_1}, member)
        shown = {r["product"]["id"] for r in after["data"]["recommendations"]}
        assert top["id"] not in shown and len(shown) == 10
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                stock_levels.delete().where(
                    stock_levels.c.store_id == 1, stock_levels.c.sku_id.in_(sku_ids)
                )
            )
            if kept:
                await conn.execute(stock_levels.insert(), [dict(r._mapping) for r in kept])


async def test_the_cart_scene_leaves_out_what_is_in_the_cart(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    body = await client.execute(RECOMMEND, {"scene": "CART", "store": STORE_1, "cart": [ribs]})
    found = body["data"]["recommendations"]
    assert found and ribs not in {r["product"]["id"] for r in found}


async def _order_of(
    engine: AsyncEngine, member_id: int, product_name: str, status: str, placed_at: datetime
) -> None:
    """An order of one dish at store 1, as the order service leaves it in ``status``."""
    product_id = await _product_id(engine, product_name)
    async with engine.begin() as conn:
        sku = (
            await conn.execute(
                sa.select(skus.c.id, skus.c.price_fen).where(skus.c.product_id == product_id)
            )
        ).first()
        assert sku is not None
        paid = placed_at if status != "PENDING_PAYMENT" else None
        order_id = await conn.scalar(
            orders.insert()
            .values(
                member_id=member_id,
                store_id=1,
                channel="PICKUP",
                status=status,
                idempotency_key=uuid.uuid4().hex,
                fingerprint="test-order",
                subtotal_fen=sku.price_fen,
                tier_discount_fen=0,
                coupon_discount_fen=0,
                delivery_fee_fen=0,
                delivery_discount_fen=0,
                packaging_fee_fen=0,
                total_fen=sku.price_fen,
                placed_at=placed_at,
                pay_by=placed_at + timedelta(minutes=15),
                paid_at=paid,
                updated_at=placed_at,
                version=1,
            )
            .returning(orders.c.id)
        )
        await conn.execute(
            order_lines.insert().values(
                order_id=order_id,
                line_no=1,
                sku_id=sku.id,
                product_id=product_id,
                name=product_name,
                specs={},
                unit_price_fen=sku.price_fen,
                quantity=1,
            )
        )


async def test_the_page_after_an_order_follows_that_order_even_before_it_is_paid(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    member_id, member = await new_member(settings, engine)
    now = datetime.now(UTC)
    await _order_of(engine, member_id, "花胶炖鸡汤", "COMPLETED", now - timedelta(days=3))
    home = await client.execute(RECOMMEND, {"scene": "HOME", "store": STORE_1}, member)
    assert home["data"]["recommendations"]  # the member's profile is read, and kept a minute
    await _order_of(engine, member_id, "鲜做糖醋排骨", "PENDING_PAYMENT", now)
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    body = await client.execute(RECOMMEND, {"scene": "ORDER_DONE", "store": STORE_1}, member)
    found = body["data"]["recommendations"]
    assert found and ribs not in {r["product"]["id"] for r in found}
    together = [r for r in found if r["reasonKind"] == "BOUGHT_TOGETHER"]
    assert together and together[0]["reason"] == "常与鲜做糖醋排骨一起购买", found


async def test_a_new_visitor_gets_the_stores_popular_dishes_and_rain_brings_soup(
    client: GraphQLClient,
) -> None:
    body = await client.execute(RECOMMEND, {"scene": "HOME", "store": STORE_1, "first": 20})
    found = body["data"]["recommendations"]
    assert len(found) == 20
    assert {r["reasonKind"] for r in found} <= {"POPULAR_NOW", "POPULAR"}
    rainy = await client.execute(
        RECOMMEND,
        {"scene": "HOME", "store": STORE_1, "first": 20, "context": {"weather": "RAIN"}},
    )
    assert "雨天热汤" in {r["reason"] for r in rainy["data"]["recommendations"]}
    near = await client.execute(
        RECOMMEND, {"scene": "HOME", "context": {"lat": 22.5367, "lng": 114.0553}}
    )
    assert near["data"]["recommendations"]  # the nearest open store's
    far_away = {"lat": 39.9042, "lng": 116.4074}  # Beijing: no store delivers there
    for variables in (
        {"scene": "HOME", "channel": "DELIVERY", "context": far_away},
        {"scene": "HOME", "channel": "DELIVERY", "store": STORE_1, "context": far_away},
    ):
        body = await client.execute(DELIVERY, variables)
        assert body["data"]["recommendations"] == [], body
    nearby = await client.execute(
        DELIVERY,
        {"scene": "HOME", "channel": "DELIVERY", "context": {"lat": 22.5367, "lng": 114.0553}},
    )
    assert nearby["data"]["recommendations"]
    assert all("DELIVERY" in r["product"]["channels"] for r in nearby["data"]["recommendations"])


async def test_bad_input_gets_a_code_or_an_empty_answer(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    unknown_store = await client.execute(
        RECOMMEND, {"scene": "HOME", "store": encode_id("Store", 999999)}
    )
    assert unknown_store["data"]["recommendations"] == []
    unknown_product = await client.execute(
        RECOMMEND,
        {"scene": "PRODUCT", "store": STORE_1, "product": encode_id("Product", 999999)},
    )
    assert unknown_product["data"]["recommendations"] == []
    cases: list[tuple[dict[str, Any], str]] = [
        ({"scene": "HOME", "store": "not-an-id"}, "INVALID_ID"),
        ({"scene": "HOME", "store": encode_id("Product", 1)}, "INVALID_ID"),
        ({"scene": "PRODUCT", "store": STORE_1}, "REQUIRED"),
        ({"scene": "HOME"}, "REQUIRED"),
        ({"scene": "HOME", "store": STORE_1, "first": 0}, "OUT_OF_RANGE"),
        ({"scene": "HOME", "store": STORE_1, "first": 51}, "OUT_OF_RANGE"),
        ({"scene": "HOME", "context": {"lat": 91, "lng": 114}}, "INVALID_COORDINATES"),
        ({"scene": "HOME", "store": STORE_1, "context": {"lat": 22.5}}, "INVALID_COORDINATES"),
        ({"scene": "HOME", "store": STORE_1, "device": "x"}, "INVALID_INPUT"),
    ]
    for variables, code in cases:
        body = await client.execute(RECOMMEND, variables)
        assert body["errors"][0]["extensions"]["code"] == code, (variables, body)
    bad_scene = await client.execute(RECOMMEND, {"scene": "KITCHEN", "store": STORE_1})
    assert bad_scene["data"] is None and "KITCHEN" in bad_scene["errors"][0]["message"]


async def test_events_are_recorded_once_however_often_a_batch_is_sent(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    batch = [
        _event("VIEW_PRODUCT", ribs, storeId=STORE_1),
        _event("SEARCH", query="  酸菜鱼 "),
        _event("FAVOURITE", ribs),
        _event("ADD_TO_CART", ribs),
    ]
    first = await client.execute(TRACK, {"input": {"events": batch}}, member)
    assert first["data"]["trackEvents"] == {
        "accepted": 4,
        "duplicates": 0,
        "merged": 0,
        "errors": [],
    }
    again = await client.execute(TRACK, {"input": {"events": batch}}, member)
    assert again["data"]["trackEvents"]["accepted"] == 0
    assert again["data"]["trackEvents"]["duplicates"] == 4
    mine = await client.execute(
        "{ myBehaviour(first: 10) { kind query product { name } } }", headers=member
    )
    events = mine["data"]["myBehaviour"]
    assert len(events) == 4
    assert {"kind": "SEARCH", "query": "酸菜鱼", "product": None} in events
    cleared = await client.execute(
        "mutation { clearMyBehaviour { cleared errors { code } } }", headers=member
    )
    assert cleared["data"]["clearMyBehaviour"] == {"cleared": 4, "errors": []}
    empty = await client.execute("{ myBehaviour { kind } }", headers=member)
    assert empty["data"]["myBehaviour"] == []
    signed_out = await client.execute("{ myBehaviour { kind } }")
    assert signed_out["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_devices_events_become_the_members_on_sign_in(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    device = f"device-{uuid.uuid4().hex}"
    soup = encode_id("Product", await _product_id(engine, "花胶炖鸡汤"))
    anonymous = await client.execute(
        TRACK, {"input": {"deviceId": device, "events": [_event("VIEW_PRODUCT", soup)]}}
    )
    assert anonymous["data"]["trackEvents"]["accepted"] == 1
    nobody = await client.execute(TRACK, {"input": {"events": [_event("VIEW_PRODUCT", soup)]}})
    assert nobody["data"]["trackEvents"]["errors"][0]["code"] == "UNAUTHENTICATED"
    _, member = await new_member(settings, engine)
    signed_in = await client.execute(
        TRACK, {"input": {"deviceId": device, "events": [_event("FAVOURITE", soup)]}}, member
    )
    assert signed_in["data"]["trackEvents"]["merged"] == 1
    mine = await client.execute("{ myBehaviour { kind } }", headers=member)
    assert [e["kind"] for e in mine["data"]["myBehaviour"]] == ["FAVOURITE", "VIEW_PRODUCT"]


async def test_track_events_refuses_bad_batches_and_changes_nothing(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    too_many = [_event("VIEW_PRODUCT", ribs) for _ in range(MAX_BATCH + 1)]
    cases: list[tuple[list[dict[str, Any]], str, list[str]]] = [
        (too_many, "OUT_OF_RANGE", ["events"]),
        ([], "REQUIRED", ["events"]),
        ([_event("VIEW_PRODUCT")], "REQUIRED", ["events", "0", "productId"]),
        ([_event("SEARCH", query=" ")], "REQUIRED", ["events", "0", "query"]),
        ([_event("SEARCH", query="辣" * 51)], "TOO_LONG", ["events", "0", "query"]),
        (
            [_event("VIEW_PRODUCT", encode_id("Product", 999999))],
            "NOT_FOUND",
            ["events", "0", "productId"],
        ),
        ([_event("VIEW_PRODUCT", "nonsense")], "INVALID_ID", ["events", "0", "productId"]),
        (
            [{"clientEventId": "x", "kind": "VIEW_PRODUCT", "productId": ribs}],
            "INVALID_INPUT",
            ["events", "0", "clientEventId"],
        ),
        (
            [_event("VIEW_PRODUCT", ribs, storeId=encode_id("Store", 999999))],
            "NOT_FOUND",
            ["events", "0", "storeId"],
        ),
    ]
    for events, code, field in cases:
        body = await client.execute(TRACK, {"input": {"events": events}}, member)
        payload = body["data"]["trackEvents"]
        assert payload["accepted"] is None
        assert payload["errors"] == [{"code": code, "field": field}], events[:1]
    mine = await client.execute("{ myBehaviour { kind } }", headers=member)
    assert mine["data"]["myBehaviour"] == []


async def test_a_member_reporting_too_much_in_a_minute_is_rate_limited(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    sent = 0
    while sent + MAX_BATCH <= MAX_PER_MINUTE:
        batch = [_event("VIEW_PRODUCT", ribs) for _ in range(MAX_BATCH)]
        body = await client.execute(TRACK, {"input": {"events": batch}}, member)
        assert body["data"]["trackEvents"]["errors"] == []
        sent += MAX_BATCH
    over = [_event("VIEW_PRODUCT", ribs) for _ in range(MAX_PER_MINUTE - sent + 1)]
    body = await client.execute(TRACK, {"input": {"events": over}}, member)
    assert body["data"]["trackEvents"]["errors"][0]["code"] == "RATE_LIMITED"


async def test_batches_sent_at_once_never_pass_the_bound_of_a_minute(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    member_id, member = await new_member(settings, engine)
    ribs = encode_id("Product", await _product_id(engine, "鲜做糖醋排骨"))
    batches = [[_event("VIEW_PRODUCT", ribs) for _ in range(MAX_BATCH)] for _ in range(4)]
    bodies = await asyncio.gather(
        *(client.execute(TRACK, {"input": {"events": b}}, member) for b in batches)
    )
    answers = [body["data"]["trackEvents"] for body in bodies]
    assert sum(a["accepted"] or 0 for a in answers) == MAX_PER_MINUTE // MAX_BATCH * MAX_BATCH
    refused = [a["errors"] for a in answers if a["errors"]]
    assert refused == [[{"code": "RATE_LIMITED", "field": ["events"]}]] * (4 - 2)
    async with engine.connect() as conn:
        kept = await conn.scalar(
            sa.select(sa.func.count()).where(behaviour_events.c.actor == f"m:{member_id}")
        )
    assert kept == MAX_PER_MINUTE // MAX_BATCH * MAX_BATCH


async def test_a_member_keeps_only_their_latest_events(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    member_id, member = await new_member(settings, engine)
    ribs_id = await _product_id(engine, "鲜做糖醋排骨")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with engine.begin() as conn:
        await conn.execute(
            behaviour_events.insert(),
            [
                {
                    "actor": f"m:{member_id}",
                    "member_id": member_id,
                    "client_event_id": f"old-{n:06d}",
                    "kind": "VIEW_PRODUCT",
                    "product_id": ribs_id,
                    "occurred_at": an_hour_ago,
                    "created_at": an_hour_ago,
                }
                for n in range(MAX_KEPT)
            ],
        )
    batch = [_event("FAVOURITE", encode_id("Product", ribs_id)) for _ in range(2)]
    body = await client.execute(TRACK, {"input": {"events": batch}}, member)
    assert body["data"]["trackEvents"]["accepted"] == 2
    async with engine.connect() as conn:
        kept = set(
            await conn.scalars(
                sa.select(behaviour_events.c.client_event_id).where(
                    behaviour_events.c.actor == f"m:{member_id}"
                )
            )
        )
    assert len(kept) == MAX_KEPT
    assert {e["clientEventId"] for e in batch} <= kept
    assert not {"old-000000", "old-000001"} & kept  # the oldest went


async def test_two_builds_at_once_leave_one_whole_model(engine: AsyncEngine) -> None:
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    tz = ZoneInfo("Asia/Shanghai")
    first, second = await asyncio.gather(
        build_recommendations(engine, now, tz), build_recommendations(engine, now, tz)
    )
    newest = max(first.version, second.version)
    assert await current_version(engine) == newest
    async with engine.connect() as conn:
        versions = set(
            await conn.scalars(sa.select(recommendation_neighbours.c.version).distinct())
        )
        ready = set(
            await conn.scalars(
                sa.select(recommendation_models.c.version).where(
                    recommendation_models.c.status == "READY"
                )
            )
        )
    assert newest in versions and newest in ready
    assert first.products == second.products > 50


async def test_a_build_forgets_the_rows_a_slower_older_build_wrote_after_its_model_went(
    engine: AsyncEngine,
) -> None:
    from zoneinfo import ZoneInfo

    before = await current_version(engine)
    assert before is not None
    # What an older build leaves when a newer one finished first and deleted its model row
    # while it was still writing: neighbours and popularity of a version no model names.
    async with engine.begin() as conn:
        await conn.execute(
            recommendation_neighbours.insert().values(
                version=before - 1, product_id=1, rank=0, neighbour_id=2, score=0.5, together=True
            )
        )
        await conn.execute(
            recommendation_popularity.insert().values(
                version=before - 1, store_id=1, period="", rank=0, product_id=1, score=1.0
            )
        )
    built = await build_recommendations(engine, datetime.now(UTC), ZoneInfo("Asia/Shanghai"))
    async with engine.connect() as conn:
        for table in (recommendation_neighbours, recommendation_popularity):
            kept = set(await conn.scalars(sa.select(table.c.version).distinct()))
            assert kept == {built.version}, table.name


async def test_the_server_rebuilds_the_model_on_its_schedule_when_asked(
    settings: Settings, engine: AsyncEngine
) -> None:
    from dinegraph.app import create_app

    before = await current_version(engine)
    assert before is not None  # the demo seed built one
    often = settings.model_copy(update={"recommendations_rebuild_minutes": 0.005})
    app = create_app(often, engine)
    async with app.router.lifespan_context(app):
        deadline = asyncio.get_running_loop().time() + 60
        while (await current_version(engine) or 0) <= before:
            assert asyncio.get_running_loop().time() < deadline, "no rebuild within 60 s"
            await asyncio.sleep(0.05)
    assert settings.recommendations_rebuild_minutes == 0  # off in the other tests


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


async def test_a_server_on_a_database_no_build_has_reached_builds_at_once(
    empty_database: str,
) -> None:
    from dinegraph.app import create_app

    hourly = make_settings(empty_database, recommendations_rebuild_minutes=60)
    engine = create_engine(hourly)
    try:
        assert await current_version(engine) is None
        app = create_app(hourly, engine)
        async with app.router.lifespan_context(app):
            deadline = asyncio.get_running_loop().time() + 60
            while await current_version(engine) is None:
                assert asyncio.get_running_loop().time() < deadline, "no build within 60 s"
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def test_a_build_forgets_events_past_their_retention(engine: AsyncEngine) -> None:
    from zoneinfo import ZoneInfo

    from dinegraph.domain.behaviour import RETENTION_DAYS

    now = datetime.now(UTC)
    device = f"d:old-{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        await conn.execute(
            behaviour_events.insert(),
            [
                {
                    "actor": device,
                    "device_id": device[2:],
                    "client_event_id": f"e-{n}-{uuid.uuid4().hex}",
                    "kind": "SEARCH",
                    "query": "老火汤",
                    "occurred_at": now - timedelta(days=days),
                    "created_at": now - timedelta(days=days),
                }
                for n, days in enumerate((RETENTION_DAYS + 1, RETENTION_DAYS - 1))
            ],
        )
    built = await build_recommendations(engine, now, ZoneInfo("Asia/Shanghai"))
    assert built.pruned_events >= 1
    async with engine.connect() as conn:
        left = await conn.scalar(
            sa.select(sa.func.count()).where(behaviour_events.c.actor == device)
        )
    assert left == 1
