"""The audit log: one entry per staff or partner write, in the write's transaction; refusals
for want of rights as DENIED; read by head office only; the table refuses changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.db.audit import SqlAuditLog
from dinegraph.db.tables import audit_log, categories
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.audit import ActorKind, AuditDraft, AuditEntry, AuditFilter
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_staff_token, new_api_key
from dinegraph.settings import Settings
from tests.conftest import Credentials, GraphQLClient
from tests.shop import (
    PAY,
    PLACE,
    line,
    new_member,
    new_shop,
    new_sku,
    place_input,
    shop_client,
)

STORE_1 = encode_id("Store", 1)
STORE_2 = encode_id("Store", 2)
AUDIT = """query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    edges { cursor node {
      id at actorKind credential staffId apiKeyId action outcome errorCode
      objectType objectId storeId clientAddress summary
    } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
RESTOCK = """mutation($input: RestockInput!) {
  restock(input: $input) { movement { id } errors { code field } } }"""
ADJUST = """mutation($input: AdjustStockInput!) {
  adjustStock(input: $input) { movement { id } errors { code field } } }"""
SALE = """mutation($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code field } } }"""
MOVE = """mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { id status } errors { code field } } }"""
ADD_RIDER = """mutation($input: AddRiderInput!) {
  addRider(input: $input) { riderId errors { code field } } }"""
CHECK_IN = "mutation { checkIn { streak errors { code } } }"


async def fresh_staff(
    settings: Settings,
    engine: AsyncEngine,
    role: StaffRole = StaffRole.STORE_MANAGER,
    stores: tuple[int, ...] = (1,),
) -> tuple[int, dict[str, str]]:
    viewer = await identity_db.ensure_staff(
        engine, username=f"audit-{uuid.uuid4().hex[:8]}", role=role, store_ids=stores
    )
    token = issue_staff_token(settings, viewer)
    return viewer.staff_id, {"Authorization": f"Bearer {token}"}


async def fresh_partner(engine: AsyncEngine) -> tuple[int, dict[str, str]]:
    key = new_api_key()
    key_id = await identity_db.insert_api_key(
        engine,
        name="audit POS",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=["stock:write"],
        store_ids=[1],
    )
    return key_id, {"X-Api-Key": key.key}


async def entries(gql: GraphQLClient, hq: dict[str, str], **where: Any) -> list[dict[str, Any]]:
    body = await gql.execute(AUDIT, {"filter": where, "first": 100}, hq)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["auditLog"]["edges"]]


def restock_input(sku: int, reference: str, store: str = STORE_1) -> dict[str, Any]:
    return {
        "input": {
            "storeId": store,
            "skuId": encode_id("Sku", sku),
            "quantity": 3,
            "reference": reference,
        }
    }


async def test_a_staff_write_is_recorded_once_with_its_actor_object_and_address(
    settings: Settings, engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    staff_id, manager = await fresh_staff(settings, engine)
    sku = await new_sku(engine, price_fen=1200, stock={1: 5})
    before = datetime.now(UTC) - timedelta(seconds=1)
    # Behind a trusted proxy, the client is the address it forwards.
    async with shop_client(settings, engine, trusted_proxies="127.0.0.1") as (proxied, _):
        done = await proxied.execute(
            RESTOCK,
            restock_input(sku, "DN-audit-1"),
            {**manager, "X-Forwarded-For": "198.51.100.9, 203.0.113.7"},
        )
    assert done["data"]["restock"]["errors"] == []

    (entry,) = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    assert entry["actorKind"] == "STAFF"
    assert entry["credential"] == f"staff:{staff_id}"
    assert entry["staffId"] == encode_id("Staff", staff_id)
    assert entry["apiKeyId"] is None
    assert entry["action"] == "restock"
    assert entry["outcome"] == "DONE"
    assert entry["errorCode"] is None
    assert (entry["objectType"], entry["objectId"]) == ("Sku", encode_id("Sku", sku))
    assert entry["storeId"] == STORE_1
    assert entry["clientAddress"] == "203.0.113.7"
    assert '"reference":"DN-audit-1"' in entry["summary"]
    assert before <= datetime.fromisoformat(entry["at"]) <= datetime.now(UTC) + timedelta(hours=48)

    # Without a trusted proxy, X-Forwarded-For is nobody's word: the socket's address counts.
    again = await gql.execute(
        RESTOCK, restock_input(sku, "DN-audit-2"), {**manager, "X-Forwarded-For": "203.0.113.7"}
    )
    assert again["data"]["restock"]["errors"] == []
    newest, _ = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    assert newest["clientAddress"] == "127.0.0.1"


async def test_a_partner_write_is_recorded_under_its_api_key(
    engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    key_id, partner = await fresh_partner(engine)
    sku = await new_sku(engine, price_fen=1500, stock={1: 5})
    sold = await gql.execute(
        SALE,
        {
            "input": {
                "storeId": STORE_1,
                "source": "POS",
                "externalOrderId": f"pos-{uuid.uuid4().hex}",
                "lines": [{"skuId": encode_id("Sku", sku), "quantity": 2}],
            }
        },
        partner,
    )
    sale = sold["data"]["recordSale"]["sale"]["id"]

    (entry,) = await entries(gql, credentials.hq_admin, apiKeyId=encode_id("ApiKey", key_id))
    assert entry["actorKind"] == "PARTNER"
    assert entry["credential"] == f"api_key:{key_id}"
    assert entry["staffId"] is None
    assert entry["action"] == "recordSale"
    assert (entry["objectType"], entry["objectId"]) == ("StockMovement", sale)
    assert entry["storeId"] == STORE_1
    assert entry["clientAddress"] == "127.0.0.1"


async def test_an_order_write_names_the_order_and_its_store(
    settings: Settings, engine: AsyncEngine, client: GraphQLClient, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=2000, stock={shop.store_ids[0]: 5})
    _, member = await new_member(settings, engine)
    values = place_input(line(sku, 1), channel="PICKUP", store=shop.store())
    placed = await client.execute(PLACE, {"input": values}, member)
    order = placed["data"]["placeOrder"]["order"]["id"]
    paid = await client.execute(PAY, {"orderId": order}, member)
    assert paid["data"]["payOrder"]["errors"] == []
    staff_id, manager = await fresh_staff(settings, engine, stores=(shop.store_ids[0],))
    moved = await client.execute(MOVE, {"input": {"orderId": order, "status": "ACCEPTED"}}, manager)
    assert moved["data"]["updateOrderStatus"]["errors"] == []

    (entry,) = await entries(client, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    assert (entry["action"], entry["objectType"]) == ("updateOrderStatus", "Order")
    assert (entry["objectId"], entry["storeId"]) == (order, shop.store())
    assert '"status":"ACCEPTED"' in entry["summary"]
    by_store = await entries(client, credentials.hq_admin, storeId=shop.store())
    assert [e["action"] for e in by_store] == ["updateOrderStatus"]  # the member's are not


async def test_a_created_object_is_named_and_personal_data_is_left_out(
    settings: Settings, engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    staff_id, manager = await fresh_staff(settings, engine)
    added = await gql.execute(
        ADD_RIDER,
        {"input": {"storeId": STORE_1, "name": "王师傅", "phone": "13912345678"}},
        manager,
    )
    rider = added["data"]["addRider"]["riderId"]
    (entry,) = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    assert (entry["action"], entry["objectId"]) == ("addRider", rider)
    assert "13912345678" not in entry["summary"] and "王师傅" not in entry["summary"]
    assert '"phone":"***"' in entry["summary"]


async def test_refused_and_rolled_back_writes_leave_no_done_entry(
    settings: Settings, engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    staff_id, manager = await fresh_staff(settings, engine)
    key_id, partner = await fresh_partner(engine)
    sku = await new_sku(engine, price_fen=900, stock={1: 1, 2: 1})
    # The movement is written, then the take fails: the transaction rolls back, entry too.
    below = await gql.execute(
        ADJUST,
        {
            "input": {
                "storeId": STORE_1,
                "skuId": encode_id("Sku", sku),
                "delta": -5,
                "reason": "盘点",
                "reference": f"adj-{uuid.uuid4().hex}",
            }
        },
        manager,
    )
    assert below["data"]["adjustStock"]["errors"]
    # Refusals for want of rights are kept, as DENIED, and change nothing else.
    other_store = await gql.execute(RESTOCK, restock_input(sku, "DN-x", STORE_2), manager)
    assert other_store["data"]["restock"]["errors"] == [{"code": "FORBIDDEN", "field": ["storeId"]}]
    sale = {
        "storeId": STORE_2,
        "source": "POS",
        "externalOrderId": "x",
        "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}],
    }
    refused = await gql.execute(SALE, {"input": sale}, partner)
    assert refused["data"]["recordSale"]["errors"][0]["code"] == "FORBIDDEN"

    by_staff = await entries(gql, credentials.hq_admin, staffId=encode_id("Staff", staff_id))
    assert [(e["action"], e["outcome"], e["errorCode"]) for e in by_staff] == [
        ("restock", "DENIED", "FORBIDDEN")
    ]
    assert by_staff[0]["storeId"] == STORE_2
    by_key = await entries(gql, credentials.hq_admin, apiKeyId=encode_id("ApiKey", key_id))
    assert [(e["action"], e["outcome"]) for e in by_key] == [("recordSale", "DENIED")]


async def test_an_entry_rolls_back_with_its_unit_of_work(engine: AsyncEngine) -> None:
    name = f"回滚-{uuid.uuid4().hex[:6]}"
    entry = AuditEntry(
        at=datetime.now(UTC),
        actor_kind=ActorKind.STAFF,
        credential="staff:999999",
        staff_id=999999,
        action="createCategory",
    )
    uow = SqlUnitOfWork(engine)
    uow.audit = AuditDraft(entry)
    with pytest.raises(RuntimeError):
        async with uow:
            category = await uow.catalog.add_category(name=name, parent_id=None, sort=0)
            uow.wrote("Category", category.id)
            raise RuntimeError("after the write, before the commit")
    log = SqlAuditLog(engine)
    assert await log.entries(AuditFilter(staff_id=999999), before_id=None, limit=10) == []
    async with engine.connect() as conn:
        assert (
            await conn.scalar(sa.select(categories.c.id).where(categories.c.name == name)) is None
        )

    # Committed, it is there once, however many units the write then opens.
    draft = AuditDraft(entry)
    for _ in range(2):
        uow = SqlUnitOfWork(engine)
        uow.audit = draft
        async with uow:
            category = await uow.catalog.add_category(name=name, parent_id=None, sort=0)
            uow.wrote("Category", category.id)
            await uow.commit()
    (kept,) = await log.entries(AuditFilter(staff_id=999999), before_id=None, limit=10)
    assert kept.entry.object_type == "Category" and kept.entry.object_id is not None


async def test_filters_and_pages_newest_first(
    settings: Settings, engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    staff_id, manager = await fresh_staff(settings, engine)
    skus = [await new_sku(engine, price_fen=1000 + n, stock={1: 5}) for n in range(2)]
    started = datetime.now(UTC) - timedelta(seconds=1)
    references = [f"DN-page-{n}-{uuid.uuid4().hex[:6]}" for n in range(5)]
    for n, reference in enumerate(references):
        body = await gql.execute(RESTOCK, restock_input(skus[n % 2], reference), manager)
        assert body["data"]["restock"]["errors"] == []
    staff = encode_id("Staff", staff_id)

    seen: list[str] = []
    after = None
    while True:
        body = await gql.execute(
            AUDIT, {"filter": {"staffId": staff}, "first": 2, "after": after}, credentials.hq_admin
        )
        page = body["data"]["auditLog"]
        assert len(page["edges"]) <= 2
        seen += [edge["node"]["summary"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"]
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5
    for summary, reference in zip(seen, reversed(references), strict=True):
        assert reference in summary  # newest first

    hq = credentials.hq_admin
    first_sku = encode_id("Sku", skus[0])
    assert len(await entries(gql, hq, staffId=staff, objectId=first_sku)) == 3
    assert len(await entries(gql, hq, staffId=staff, action="restock", storeId=STORE_1)) == 5
    assert await entries(gql, hq, staffId=staff, action="adjustStock") == []
    assert len(await entries(gql, hq, staffId=staff, actorKind="STAFF")) == 5
    assert await entries(gql, hq, staffId=staff, actorKind="PARTNER") == []
    assert await entries(gql, hq, staffId=staff, storeId=STORE_2) == []
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert len(await entries(gql, hq, staffId=staff, to=future)) == 5
    assert await entries(gql, hq, staffId=staff, to=started.isoformat()) == []
    assert await entries(gql, hq, staffId=staff, **{"from": future}) == []

    naive = await gql.execute(
        AUDIT, {"filter": {"from": "2026-01-01T00:00:00"}}, credentials.hq_admin
    )
    assert naive["errors"][0]["extensions"]["code"] == "INVALID_WINDOW"
    bad = await gql.execute(AUDIT, {"filter": {"staffId": first_sku}}, credentials.hq_admin)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_only_head_office_admins_read_the_log(
    engine: AsyncEngine, gql: GraphQLClient, credentials: Credentials
) -> None:
    for headers, code in [
        (credentials.operator, "FORBIDDEN"),
        (credentials.manager_store_1, "FORBIDDEN"),
        (credentials.partner, "FORBIDDEN"),
        (credentials.member, "FORBIDDEN"),
        ({}, "UNAUTHENTICATED"),
    ]:
        body = await gql.execute(AUDIT, {"filter": {"action": "restock"}}, headers)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == code


async def test_member_writes_are_not_audited(gql: GraphQLClient, credentials: Credentials) -> None:
    async def newest() -> str | None:
        body = await gql.execute(AUDIT, {"first": 1}, credentials.hq_admin)
        edges = body["data"]["auditLog"]["edges"]
        return edges[0]["node"]["id"] if edges else None

    before = await newest()
    checked = await gql.execute(CHECK_IN, headers=credentials.member)
    assert checked["data"]["checkIn"]["errors"] in ([], [{"code": "ALREADY_CHECKED_IN"}])
    assert await newest() == before


async def test_the_table_refuses_updates_and_deletes(
    settings: Settings, engine: AsyncEngine, gql: GraphQLClient
) -> None:
    _, manager = await fresh_staff(settings, engine)
    sku = await new_sku(engine, price_fen=800, stock={1: 1})
    await gql.execute(RESTOCK, restock_input(sku, "DN-locked"), manager)
    async with engine.connect() as conn:
        newest = await conn.scalar(sa.select(sa.func.max(audit_log.c.id)))
    assert newest is not None
    for statement in (
        audit_log.update().where(audit_log.c.id == newest).values(action="nothing"),
        audit_log.delete().where(audit_log.c.id == newest),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(statement)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(audit_log).where(audit_log.c.id == newest))).one()
    assert row.action == "restock"
