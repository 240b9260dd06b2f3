"""Orders: quotes, placement, idempotency, payment, the lifecycle, refunds and reads."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db import identity as identity_db
from dinegraph.db.tables import coupons, orders, points_ledger, refunds, stock_ledger, store_loads
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.catalog import Channel
from dinegraph.domain.identity import StaffRole
from dinegraph.domain.services.orders import cancel_expired
from dinegraph.domain.tiers import Tier
from dinegraph.payments import sign
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_staff_token
from dinegraph.settings import Mode, Settings
from tests.conftest import PRODUCTION_ADAPTER_VALUES, Credentials, GraphQLClient
from tests.integration.test_coupons import new_template
from tests.shop import (
    PAY,
    Shop,
    level_of,
    line,
    new_member,
    new_shop,
    new_sku,
    place_input,
    shop_client,
)

QUOTE = """
query Quote($input: QuoteOrderInput!) {
  quoteOrder(input: $input) {
    store { id } distanceMeters placeable
    lines { quantity problem unitPrice { fen } amount { fen } }
    subtotal { fen } tierDiscount { fen } couponDiscount { fen }
    deliveryFee { fen } deliveryDiscount { fen } deliveryWaiver packagingFee { fen } total { fen }
    couponProblem storeProblem storeRefusals { store { id } reason }
  }
}
"""
PLACE_FULL = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status version total { fen } subtotal { fen } pickupCode store { id pendingOrders }
            lines { lineId quantity refundedQuantity } }
    replayed storeRefusals { store { id } reason }
    errors { code message field }
  }
}
"""
ORDER = """
query Order($id: ID!) {
  order(id: $id) { id status version total { fen } refunded { fen } pickupCode paidAt
                   address { detail } lines { lineId quantity refundedQuantity } }
}
"""
MOVE = """
mutation Move($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { id status version } errors { code field } }
}
"""
REFUND = """
mutation Refund($input: RefundOrderInput!) {
  refundOrder(input: $input) { order { id status refunded { fen } lines { lineId refundedQuantity } }
                               errors { code field } }
}
"""  # noqa: E501
CLAIM = "mutation($t: ID!) { claimCoupon(templateId: $t) { coupon { id } errors { code } } }"


async def manager_of(settings: Settings, engine: AsyncEngine, shop: Shop) -> dict[str, str]:
    """A STORE_MANAGER of the shop's first store."""
    viewer = await identity_db.ensure_staff(
        engine,
        username=f"manager-{shop.store_ids[0]}",
        role=StaffRole.STORE_MANAGER,
        store_ids=shop.store_ids[:1],
    )
    return {"Authorization": f"Bearer {issue_staff_token(settings, viewer)}"}


async def place(
    client: GraphQLClient, headers: dict[str, str], values: dict[str, Any]
) -> dict[str, Any]:
    body = await client.execute(PLACE_FULL, {"input": values}, headers)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["placeOrder"]
    return payload


async def placed(client: GraphQLClient, headers: dict[str, str], values: dict[str, Any]) -> str:
    payload = await place(client, headers, values)
    assert payload["errors"] == [], payload
    return str(payload["order"]["id"])


async def move(
    client: GraphQLClient, headers: dict[str, str], order_id: str, status: str
) -> dict[str, Any]:
    body = await client.execute(MOVE, {"input": {"orderId": order_id, "status": status}}, headers)
    payload: dict[str, Any] = body["data"]["updateOrderStatus"]
    return payload


async def read_order(client: GraphQLClient, headers: dict[str, str], order_id: str) -> Any:
    body = await client.execute(ORDER, {"id": order_id}, headers)
    return body["data"]["order"]


async def claimed_coupon(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    member: dict[str, str],
    **fields: Any,
) -> str:
    template = await new_template(gql, credentials, **fields)
    body = await client.execute(CLAIM, {"t": template}, member)
    assert body["data"]["claimCoupon"]["errors"] == [], body
    return str(body["data"]["claimCoupon"]["coupon"]["id"])


async def coupon_status(engine: AsyncEngine, coupon_id: str) -> str:
    async with engine.connect() as conn:
        return str(
            await conn.scalar(
                sa.select(coupons.c.status).where(
                    coupons.c.id == decode_id(coupon_id, "Coupon", [])
                )
            )
        )


# --- quotes ---------------------------------------------------------------------------


async def test_quote_routes_to_the_nearest_store_and_prices_every_part(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 4000))
    sku = await new_sku(engine, price_fen=1800, stock={s: 10 for s in shop.store_ids})
    _, member = await new_member(settings, engine)
    # 3.5 km north of store 0 is 0.5 km from store 1: store 1 wins.
    body = await client.execute(
        QUOTE,
        {"input": {"channel": "DELIVERY", "address": shop.near(3500), "lines": [line(sku, 2)]}},
        member,
    )
    q = body["data"]["quoteOrder"]
    assert q["store"]["id"] == shop.store(1)
    assert 450 <= q["distanceMeters"] <= 550
    assert q["placeable"] is True
    assert q["subtotal"]["fen"] == 3600
    assert q["deliveryFee"]["fen"] == 400  # within the first 3 km band
    assert q["deliveryDiscount"]["fen"] == 0
    assert q["packagingFee"]["fen"] == 200  # 2 units
    assert q["total"]["fen"] == 3600 + 400 + 200


async def test_quote_waives_delivery_above_the_threshold_and_for_gold_members(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=2000, stock={shop.store_ids[0]: 50})
    _, normal = await new_member(settings, engine)
    _, gold = await new_member(settings, engine, Tier.GOLD, age_days=400)
    variables = {
        "input": {"channel": "DELIVERY", "address": shop.near(4000), "lines": [line(sku, 3)]}
    }
    above = (await client.execute(QUOTE, variables, normal))["data"]["quoteOrder"]
    assert above["deliveryFee"]["fen"] == 600 and above["deliveryDiscount"]["fen"] == 600
    assert above["deliveryWaiver"] == "ABOVE_THRESHOLD"
    variables["input"]["lines"] = [line(sku, 1)]
    low = (await client.execute(QUOTE, variables, normal))["data"]["quoteOrder"]
    assert low["deliveryDiscount"]["fen"] == 0 and low["total"]["fen"] == 2000 + 600 + 100
    golden = (await client.execute(QUOTE, variables, gold))["data"]["quoteOrder"]
    assert golden["deliveryWaiver"] == "TIER"
    assert golden["tierDiscount"]["fen"] == 100  # 5% of 2000
    assert golden["total"]["fen"] == 2000 - 100 + 100


async def test_quote_gives_a_reason_for_each_line_and_coupon_that_cannot_apply(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    ok = await new_sku(engine, price_fen=1000, stock={store: 5})
    short = await new_sku(engine, price_fen=500, stock={store: 1})
    dine_in = await new_sku(
        engine, price_fen=800, stock={store: 5}, channels=frozenset({Channel.DINE_IN})
    )
    _, member = await new_member(settings, engine)
    coupon = await claimed_coupon(
        client, gql, credentials, member, kind="THRESHOLD", amountOffFen=500, thresholdFen=9000
    )
    body = await client.execute(
        QUOTE,
        {
            "input": {
                "channel": "PICKUP",
                "storeId": shop.store(),
                "lines": [line(ok, 2), line(short, 3), line(dine_in, 1)],
                "couponId": coupon,
            }
        },
        member,
    )
    q = body["data"]["quoteOrder"]
    assert [entry["problem"] for entry in q["lines"]] == [None, "OUT_OF_STOCK", "NOT_ON_CHANNEL"]
    assert q["subtotal"]["fen"] == 2000  # only the line that can be ordered
    assert q["couponProblem"] == "BELOW_THRESHOLD"
    assert q["placeable"] is False
    assert q["deliveryFee"]["fen"] == 0


async def test_no_store_can_serve_names_the_reason_of_each_nearby_store(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 3000))
    sku = await new_sku(engine, price_fen=1000, stock={shop.store_ids[0]: 1, shop.store_ids[1]: 1})
    _, member = await new_member(settings, engine)
    values = place_input(line(sku, 2), address=shop.near(1500))
    payload = await place(client, member, values)
    assert [e["code"] for e in payload["errors"]] == ["NO_STORE_CAN_SERVE"]
    assert payload["order"] is None
    reasons = {r["store"]["id"]: r["reason"] for r in payload["storeRefusals"]}
    assert reasons == {shop.store(0): "OUT_OF_STOCK", shop.store(1): "OUT_OF_STOCK"}
    far = await place(client, member, place_input(line(sku, 1), address=shop.near(-30_000)))
    assert [e["code"] for e in far["errors"]] == ["NO_STORE_CAN_SERVE"]
    assert far["storeRefusals"] == []  # no store within 10 km to name


async def test_a_quote_runs_the_same_number_of_statements_whatever_its_lines(
    settings: Settings, engine: AsyncEngine
) -> None:
    """The lines' SKUs, prices and stock are each read in one go, not one line at a time."""
    shop = await new_shop(engine, stores_north_m=(0, 4000))
    skus = [
        await new_sku(engine, price_fen=1000 + n, stock={s: 10 for s in shop.store_ids})
        for n in range(20)
    ]
    _, member = await new_member(settings, engine)
    document = QUOTE.replace("lines {", "lines { sku { id price { fen } stock { available } }")
    statements: dict[int, int] = {}
    async with shop_client(settings, engine, server_timing=True) as (timed, _):
        # Not counted: the first request also recognises the member (one read, then known).
        await timed.execute(QUOTE, {"input": {"channel": "DELIVERY", "lines": []}}, member)
        for size in (1, 5, 20):
            values: dict[str, Any] = {"channel": "DELIVERY", "address": shop.near(3500)}
            values["lines"] = [line(sku, 1) for sku in skus[:size]]
            response = await timed.http.post(
                "/graphql", json={"query": document, "variables": {"input": values}}, headers=member
            )
            q = response.json()["data"]["quoteOrder"]
            assert (len(q["lines"]), q["placeable"]) == (size, True)
            match = re.fullmatch(r'db;desc="(\d+) statements"', response.headers["server-timing"])
            assert match, response.headers
            statements[size] = int(match.group(1))
    assert statements[1] == statements[5] == statements[20], statements


# --- placement ------------------------------------------------------------------------


async def test_placing_holds_stock_locks_the_coupon_and_freezes_the_total(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=2500, stock={store: 10})
    _, member = await new_member(settings, engine)
    coupon = await claimed_coupon(client, gql, credentials, member, amountOffFen=300)
    quote = await client.execute(
        QUOTE,
        {
            "input": {
                "channel": "DELIVERY",
                "address": shop.near(200),
                "lines": [line(sku, 2)],
                "couponId": coupon,
            }
        },
        member,
    )
    expected = quote["data"]["quoteOrder"]["total"]["fen"]
    assert quote["data"]["quoteOrder"]["couponDiscount"]["fen"] == 300
    payload = await place(
        client, member, place_input(line(sku, 2), address=shop.near(200), coupon=coupon)
    )
    assert payload["errors"] == []
    order = payload["order"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["total"]["fen"] == expected == 5000 - 300 + 400 + 200
    assert await level_of(engine, store, sku) == 8
    assert await coupon_status(engine, coupon) == "LOCKED"
    async with engine.connect() as conn:
        kinds = (
            await conn.execute(
                sa.select(stock_ledger.c.kind, stock_ledger.c.delta).where(
                    stock_ledger.c.store_id == store, stock_ledger.c.sku_id == sku
                )
            )
        ).all()
    assert [tuple(k) for k in kinds] == [("ORDER_HOLD", -2)]
    # A price change afterwards leaves the placed order's total as it was.
    async with SqlUnitOfWork(engine) as uow:
        await uow.catalog.set_store_price(store, sku, 9900)
        await uow.commit()
    found = await read_order(client, member, order["id"])
    assert found["total"]["fen"] == expected
    assert found["address"]["detail"] == "1号楼 101"


async def test_a_replayed_key_returns_the_first_order_and_another_payload_is_refused(
    client: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1000, stock={shop.store_ids[0]: 10})
    _, member = await new_member(settings, engine)
    values = place_input(line(sku, 1), channel="PICKUP", store=shop.store())
    first = await place(client, member, values)
    again = await place(client, member, values)
    assert again["order"]["id"] == first["order"]["id"] and again["replayed"] is True
    assert await level_of(engine, shop.store_ids[0], sku) == 9  # held once
    changed = {**values, "lines": [line(sku, 2)]}
    reused = await place(client, member, changed)
    assert [(e["code"], e["field"]) for e in reused["errors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["idempotencyKey"])
    ]
    # Keys are per member: another member's same key is a different order.
    _, other = await new_member(settings, engine)
    theirs = await place(client, other, values)
    assert theirs["errors"] == [] and theirs["order"]["id"] != first["order"]["id"]


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        ({"lines": []}, "REQUIRED", ["lines"]),
        ({"channel": "PICKUP"}, "REQUIRED", ["storeId"]),
        ({"address": None}, "REQUIRED", ["address"]),
        ({"idempotencyKey": " "}, "REQUIRED", ["idempotencyKey"]),
        ({"lines": [{"skuId": "bad", "quantity": 1}]}, "INVALID_ID", ["lines", "0", "skuId"]),
        ({"note": "长" * 201}, "TOO_LONG", ["note"]),
    ],
)
async def test_bad_input_is_refused_with_a_code_and_changes_nothing(
    client: GraphQLClient,
    settings: Settings,
    engine: AsyncEngine,
    values: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1000, stock={shop.store_ids[0]: 3})
    _, member = await new_member(settings, engine)
    base = place_input(line(sku, 1), address=shop.near(100))
    payload = await place(client, member, {**base, **values})
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await level_of(engine, shop.store_ids[0], sku) == 3


async def test_guests_and_staff_cannot_place_orders(
    client: GraphQLClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1000, stock={shop.store_ids[0]: 3})
    values = place_input(line(sku, 1), address=shop.near(100))
    guest = await place(client, {}, values)
    staff = await place(client, credentials.hq_admin, values)
    assert guest["errors"][0]["code"] == "UNAUTHENTICATED"
    assert staff["errors"][0]["code"] == "UNAUTHENTICATED"


# --- payment --------------------------------------------------------------------------


async def test_paying_uses_the_coupon_queues_the_kitchen_and_gives_a_pickup_code(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1500, stock={shop.store_ids[0]: 5})
    _, member = await new_member(settings, engine)
    coupon = await claimed_coupon(client, gql, credentials, member, amountOffFen=200)
    order_id = await placed(
        client,
        member,
        place_input(line(sku, 1), channel="PICKUP", store=shop.store(), coupon=coupon),
    )
    body = await client.execute(PAY, {"orderId": order_id}, member)
    assert body["data"]["payOrder"] == {"order": {"id": order_id, "status": "PAID"}, "errors": []}
    again = await client.execute(PAY, {"orderId": order_id}, member)
    assert again["data"]["payOrder"]["errors"] == []  # the same payment, told twice
    found = await read_order(client, member, order_id)
    assert found["pickupCode"] is not None and len(found["pickupCode"]) == 4
    assert await coupon_status(engine, coupon) == "USED"
    store = await client.execute(
        "query($id: ID!) { store(id: $id) { pendingOrders } }", {"id": shop.store()}
    )
    assert store["data"]["store"]["pendingOrders"] == 1
    _, stranger = await new_member(settings, engine)
    theirs = await client.execute(PAY, {"orderId": order_id}, stranger)
    assert theirs["data"]["payOrder"]["errors"][0]["code"] == "NOT_FOUND"


async def notify(
    client: GraphQLClient,
    key: bytes,
    payload: dict[str, Any],
    *,
    at: int | None = None,
    signature: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    header = signature or sign(key, body, at if at is not None else int(time.time()))
    response = await client.http.post(
        "/payments/notify",
        content=body,
        headers={"content-type": "application/json", "dinegraph-signature": header},
    )
    return response.status_code, response.json()


async def test_payment_notifications_are_signed_and_idempotent(
    client: GraphQLClient, services: Services, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=2000, stock={shop.store_ids[0]: 5})
    _, member = await new_member(settings, engine)
    order_id = await placed(client, member, place_input(line(sku, 1), address=shop.near(100)))
    total = (await read_order(client, member, order_id))["total"]["fen"]
    key = services.payment_notify_key
    note = {
        "provider": "wechatpay",
        "orderId": order_id,
        "transactionId": "wx-1",
        "amountFen": total,
    }
    assert (await notify(client, b"wrong key", note))[0] == 401
    assert (await notify(client, key, note, at=int(time.time()) - 3600))[0] == 401  # stale
    assert (await notify(client, key, note, signature="t=1,v1=00"))[0] == 401
    wrong = await notify(client, key, {**note, "amountFen": total - 1, "transactionId": "wx-0"})
    assert wrong == (409, {"code": "PAYMENT_MISMATCH", "detail": wrong[1]["detail"]})
    assert (await read_order(client, member, order_id))["status"] == "PENDING_PAYMENT"
    status, answer = await notify(client, key, note)
    assert (status, answer) == (200, {"orderId": order_id, "status": "PAID"})
    status, answer = await notify(client, key, note)  # the provider retries
    assert (status, answer["status"]) == (200, "PAID")
    second = await notify(client, key, {**note, "transactionId": "wx-2"})  # paid twice
    assert second[0] == 409 and second[1]["code"] == "INVALID_TRANSITION"
    async with engine.connect() as conn:
        version = await conn.scalar(
            sa.select(orders.c.version).where(orders.c.id == decode_id(order_id, "Order", []))
        )
    assert version == 2  # placed, paid: nothing else moved it
    assert (await notify(client, key, {**note, "orderId": "nope"}))[0] == 400


# --- the unpaid-order timeout ---------------------------------------------------------


async def test_unpaid_orders_are_cancelled_once_with_stock_and_coupon_back(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    services: Services,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=1000, stock={store: 10})
    _, member = await new_member(settings, engine)
    coupon = await claimed_coupon(client, gql, credentials, member, amountOffFen=100)
    with_coupon = await placed(
        client, member, place_input(line(sku, 3), address=shop.near(10), coupon=coupon)
    )
    paid = await placed(client, member, place_input(line(sku, 2), address=shop.near(10)))
    await client.execute(PAY, {"orderId": paid}, member)
    assert await level_of(engine, store, sku) == 5
    later = services.clock() + timedelta(minutes=16)
    # Two sweeps at once (two server processes): each order is cancelled by exactly one.
    results = await asyncio.gather(
        *(cancel_expired(later, uow=SqlUnitOfWork(engine)) for _ in range(4))
    )
    swept = [oid for result in results for oid in result]
    target = decode_id(with_coupon, "Order", [])
    assert swept.count(target) == 1
    assert decode_id(paid, "Order", []) not in swept
    assert (await read_order(client, member, with_coupon))["status"] == "CANCELLED"
    assert (await read_order(client, member, paid))["status"] == "PAID"
    assert await level_of(engine, store, sku) == 8
    assert await coupon_status(engine, coupon) == "AVAILABLE"
    async with engine.connect() as conn:
        releases = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(stock_ledger)
            .where(stock_ledger.c.sku_id == sku, stock_ledger.c.kind == "RELEASE")
        )
    assert releases == 1
    late = await client.execute(PAY, {"orderId": with_coupon}, member)
    assert late["data"]["payOrder"]["errors"][0]["code"] == "INVALID_TRANSITION"


# --- the lifecycle --------------------------------------------------------------------


async def test_staff_move_an_order_to_completed_and_points_and_tier_follow(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=60_000, stock={shop.store_ids[0]: 5})
    member_id, member = await new_member(settings, engine)
    order_id = await placed(
        client, member, place_input(line(sku, 2), channel="PICKUP", store=shop.store())
    )
    staff = await manager_of(settings, engine, shop)
    await client.execute(PAY, {"orderId": order_id}, member)
    wrong = await move(client, staff, order_id, "READY")
    assert wrong["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await read_order(client, member, order_id))["version"] == 2  # nothing changed
    for status in ("ACCEPTED", "PREPARING", "READY"):
        assert (await move(client, staff, order_id, status))["errors"] == []
    assert (await move(client, staff, order_id, "DELIVERING"))["errors"][0]["code"] == (
        "INVALID_TRANSITION"  # a pickup order is not delivered
    )
    assert (await move(client, member, order_id, "PICKED_UP"))["errors"][0]["code"] == (
        "INVALID_TRANSITION"  # the customer only cancels
    )
    assert (await move(client, staff, order_id, "PICKED_UP"))["errors"] == []
    done = await move(client, staff, order_id, "COMPLETED")
    assert done["errors"] == [] and done["order"]["status"] == "COMPLETED"
    viewer = await client.execute("{ viewer { member { points tier } } }", headers=member)
    # ¥1,200 paid (plus ¥2 packaging): 1,202 points at NORMAL; the spend reaches SILVER.
    assert viewer["data"]["viewer"]["member"] == {"points": 1202, "tier": "SILVER"}
    async with engine.connect() as conn:
        pending = await conn.scalar(
            sa.select(store_loads.c.pending_orders).where(
                store_loads.c.store_id == shop.store_ids[0]
            )
        )
    assert pending == 0
    assert member_id > 0


async def test_customers_cancel_before_acceptance_and_get_their_money_back(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=1000, stock={store: 5})
    _, member = await new_member(settings, engine)
    order_id = await placed(client, member, place_input(line(sku, 2), address=shop.near(100)))
    await client.execute(PAY, {"orderId": order_id}, member)
    cancelled = await move(client, member, order_id, "CANCELLED")
    assert cancelled["errors"] == [] and cancelled["order"]["status"] == "CANCELLED"
    found = await read_order(client, member, order_id)
    assert found["refunded"]["fen"] == found["total"]["fen"]
    assert await level_of(engine, store, sku) == 5
    accepted = await placed(client, member, place_input(line(sku, 1), address=shop.near(100)))
    await client.execute(PAY, {"orderId": accepted}, member)
    assert (await move(client, credentials.hq_admin, accepted, "ACCEPTED"))["errors"] == []
    late = await move(client, member, accepted, "CANCELLED")
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"
    other_manager = credentials.manager_store_1  # manages demo store 1 only
    assert (await move(client, other_manager, accepted, "PREPARING"))["errors"][0]["code"] == (
        "FORBIDDEN"
    )
    _, stranger = await new_member(settings, engine)
    assert (await move(client, stranger, accepted, "CANCELLED"))["errors"][0]["code"] == "NOT_FOUND"
    assert await read_order(client, stranger, accepted) is None


# --- refunds --------------------------------------------------------------------------


async def test_a_partial_refund_returns_unprepared_units_and_a_full_one_the_coupon(
    client: GraphQLClient,
    gql: GraphQLClient,
    credentials: Credentials,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    a = await new_sku(engine, price_fen=1000, stock={store: 10})
    b = await new_sku(engine, price_fen=3000, stock={store: 10})
    _, member = await new_member(settings, engine)
    coupon = await claimed_coupon(client, gql, credentials, member, amountOffFen=400)
    order_id = await placed(
        client,
        member,
        place_input(line(a, 2), line(b, 1), channel="PICKUP", store=shop.store(), coupon=coupon),
    )
    await client.execute(PAY, {"orderId": order_id}, member)
    staff = await manager_of(settings, engine, shop)
    refund = {
        "orderId": order_id,
        "reason": "少一份",
        "idempotencyKey": "r1",
        "lines": [{"lineId": 1, "quantity": 1}],
    }
    first = (await client.execute(REFUND, {"input": refund}, staff))["data"]["refundOrder"]
    assert first["errors"] == []
    # 1000 of 5000 in dishes, which cost 4600 after the coupon: 920 back.
    assert first["order"]["refunded"]["fen"] == 920
    assert first["order"]["status"] == "PAID"
    assert await level_of(engine, store, a) == 9  # 2 held, 1 back
    replay = (await client.execute(REFUND, {"input": refund}, staff))["data"]["refundOrder"]
    assert replay["order"]["refunded"]["fen"] == 920  # the same key refunds nothing more
    too_many = {**refund, "idempotencyKey": "r2", "lines": [{"lineId": 1, "quantity": 2}]}
    bad = (await client.execute(REFUND, {"input": too_many}, staff))["data"]["refundOrder"]
    assert bad["errors"] == [{"code": "OUT_OF_RANGE", "field": ["lines", "0", "quantity"]}]
    rest = {"orderId": order_id, "reason": "门店缺货", "idempotencyKey": "r3"}
    full = (await client.execute(REFUND, {"input": rest}, staff))["data"]["refundOrder"]
    assert full["errors"] == [] and full["order"]["status"] == "REFUNDED"
    found = await read_order(client, member, order_id)
    assert found["refunded"]["fen"] == found["total"]["fen"]
    assert await level_of(engine, store, a) == 10 and await level_of(engine, store, b) == 10
    assert await coupon_status(engine, coupon) == "AVAILABLE"
    by_member = await client.execute(REFUND, {"input": {**rest, "idempotencyKey": "r4"}}, member)
    assert by_member["data"]["refundOrder"]["errors"][0]["code"] == "FORBIDDEN"  # staff refund


async def test_a_refund_after_completion_takes_back_points_and_spend(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=10_000, stock={shop.store_ids[0]: 5})
    member_id, member = await new_member(settings, engine)
    order_id = await placed(
        client, member, place_input(line(sku, 2), channel="DINE_IN", store=shop.store())
    )
    await client.execute(PAY, {"orderId": order_id}, member)
    staff = await manager_of(settings, engine, shop)
    for status in ("ACCEPTED", "PREPARING", "READY", "PICKED_UP", "COMPLETED"):
        assert (await move(client, staff, order_id, status))["errors"] == []
    refund = {
        "orderId": order_id,
        "reason": "菜品有问题",
        "idempotencyKey": "k",
        "lines": [{"lineId": 1, "quantity": 1}],
    }
    result = (await client.execute(REFUND, {"input": refund}, staff))["data"]["refundOrder"]
    assert result["errors"] == [] and result["order"]["refunded"]["fen"] == 10_000
    assert await level_of(engine, shop.store_ids[0], sku) == 3  # eaten: nothing goes back
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(points_ledger.c.kind, points_ledger.c.delta)
                .where(points_ledger.c.member_id == member_id)
                .order_by(points_ledger.c.id)
            )
        ).all()
        refund_rows = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(refunds)
            .where(refunds.c.order_id == decode_id(order_id, "Order", []))
        )
    assert [tuple(r) for r in rows] == [("EARN", 200), ("REFUND", -100)]
    assert refund_rows == 1


# --- reads ----------------------------------------------------------------------------


async def test_members_list_their_orders_and_staff_read_the_board_with_tickets(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=1200, stock={shop.store_ids[0]: 20}, name="卤肉饭")
    _, member = await new_member(settings, engine)
    ids = [
        await placed(
            client,
            member,
            place_input(line(sku, 1), channel="PICKUP", store=shop.store(), note=f"第{n}单"),
        )
        for n in range(3)
    ]
    for order_id in ids:
        await client.execute(PAY, {"orderId": order_id}, member)
    mine = await client.execute(
        "{ viewer { member { orders(first: 2) { edges { node { id } } "
        "pageInfo { hasNextPage endCursor } } } } }",
        headers=member,
    )
    page = mine["data"]["viewer"]["member"]["orders"]
    assert [e["node"]["id"] for e in page["edges"]] == [ids[2], ids[1]]
    assert page["pageInfo"]["hasNextPage"] is True
    board = await client.execute(
        """query($s: ID!) { storeOrders(storeId: $s, status: [PAID], first: 10) {
             edges { node { id kitchenTicket { pickupCode text lines { name quantity } } } } } }""",
        {"s": shop.store()},
        credentials.hq_admin,
    )
    edges = board["data"]["storeOrders"]["edges"]
    assert [e["node"]["id"] for e in edges] == list(reversed(ids))
    ticket = edges[0]["node"]["kitchenTicket"]
    assert ticket["lines"] == [{"name": "卤肉饭", "quantity": 1}]
    assert "1 x 卤肉饭" in ticket["text"] and "备注: 第2单" in ticket["text"]
    forbidden = await client.execute(
        "query($s: ID!) { storeOrders(storeId: $s) { edges { node { id } } } }",
        {"s": shop.store()},
        credentials.manager_store_1,
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own_ticket = await client.execute(
        "query($id: ID!) { order(id: $id) { kitchenTicket { text } } }", {"id": ids[0]}, member
    )
    assert own_ticket["data"]["order"]["kitchenTicket"] is None
    store = await client.execute(
        "query($id: ID!) { store(id: $id) { pendingOrders } }", {"id": shop.store()}
    )
    assert store["data"]["store"]["pendingOrders"] == 3


async def test_a_busy_kitchen_sends_orders_to_a_farther_store(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 400))
    sku = await new_sku(engine, price_fen=800, stock={s: 50 for s in shop.store_ids})
    buyers = [(await new_member(settings, engine))[1] for _ in range(3)]
    address = shop.near(100)  # 100 m from store 0, 300 m from store 1
    variables = {"input": {"channel": "DELIVERY", "address": address, "lines": [line(sku, 1)]}}
    before = (await client.execute(QUOTE, variables, buyers[0]))["data"]["quoteOrder"]
    assert before["store"]["id"] == shop.store(0)
    for member in buyers[:2]:  # two paid orders wait in store 0's kitchen: 2 × 300 m more
        order_id = await placed(
            client, member, place_input(line(sku, 1), channel="PICKUP", store=shop.store(0))
        )
        await client.execute(PAY, {"orderId": order_id}, member)
    after = (await client.execute(QUOTE, variables, buyers[2]))["data"]["quoteOrder"]
    assert after["store"]["id"] == shop.store(1)
    payload = await place(client, buyers[2], place_input(line(sku, 1), address=address))
    assert payload["order"]["store"]["id"] == shop.store(1)
    assert payload["order"]["store"]["pendingOrders"] == 0


async def test_the_address_is_for_the_member_and_the_store_only(
    client: GraphQLClient, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=800, stock={shop.store_ids[0]: 5})
    _, member = await new_member(settings, engine)
    order_id = await placed(client, member, place_input(line(sku, 1), address=shop.near(50)))
    query = "query($id: ID!) { order(id: $id) { id address { contactPhone } } }"
    seen = {
        name: (await client.execute(query, {"id": order_id}, headers))["data"]["order"]
        for name, headers in [
            ("member", member),
            ("hq", credentials.hq_admin),
            ("operator", credentials.operator),
        ]
    }
    assert seen["member"]["address"] == {"contactPhone": "13900000000"}
    assert seen["hq"]["address"] == {"contactPhone": "13900000000"}
    assert seen["operator"] == {"id": order_id, "address": None}  # head office marketing


async def test_production_has_no_development_payments(
    settings: Settings, engine: AsyncEngine
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=800, stock={shop.store_ids[0]: 5})
    _, member = await new_member(settings, engine)
    async with shop_client(settings, engine, mode=Mode.PRODUCTION, **PRODUCTION_ADAPTER_VALUES) as (
        production,
        _,
    ):
        order_id = await placed(
            production, member, place_input(line(sku, 1), address=shop.near(50))
        )
        body = await production.execute(PAY, {"orderId": order_id}, member)
    # Production pays through WeChat Pay only (here on a closed port): nothing marks the
    # order paid.
    assert body["data"]["payOrder"]["errors"][0]["code"] == "PAYMENT_PROVIDER_UNAVAILABLE"
    async with engine.connect() as conn:
        status = await conn.scalar(
            sa.select(orders.c.status).where(orders.c.id == decode_id(order_id, "Order", ["id"]))
        )
    assert status == "PENDING_PAYMENT"
