"""Personal data is unreadable in a copy of the database, and everything still works with it.

Each test has a database of its own (SQLite, or PostgreSQL when the run targets it): a copy
of the SQLite file, or the values PostgreSQL stores, must hold no phone, name or address in
clear; signing in by phone still finds the member; the migration converts a database
written before it; rotating keys rewrites every value once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import default_services
from dinegraph.db import identity as identity_db
from dinegraph.db.calls import SqlCallStore
from dinegraph.db.data_keys import personal_columns, rotate_data_keys
from dinegraph.db.engine import create_engine
from dinegraph.db.migrate import alembic_config, upgrade
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.personal import (
    BlindIndex,
    Encrypted,
    PersonalCipher,
    PersonalDataError,
    PersonalDate,
    PersonalFloat,
    PersonalJson,
    key_id,
)
from dinegraph.db.staff_accounts import SqlStaffAccounts
from dinegraph.db.tables import login_codes, metadata, riders
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.delivery import Courier
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import StaffRole
from dinegraph.security import issue_staff_token
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient, make_settings
from tests.databases import fresh_database
from tests.shop import PAY, PLACE, line, new_shop, new_sku, place_input

BEFORE = "7c3e9a1f0b42"  # the revision before personal data was encrypted
K1 = "k1:" + "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
K2 = "k2:" + "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI="

REQUEST_CODE = "mutation($p: String!) { requestLoginCode(phone: $p) { errors { code } } }"
LOGIN = """mutation($p: String!, $c: String!) {
  login(phone: $p, code: $c) { token member { id phone } errors { code } } }"""
SAVE_ADDRESS = """mutation($i: SaveAddressInput!) {
  saveAddress(input: $i) { address { contactName contactPhone address } errors { code } } }"""
MOVE = """mutation($i: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $i) { errors { code } } }"""
ORDER = """query($id: ID!) { order(id: $id) {
  dropoff: delivery { courier { name phone } } address { detail contactName contactPhone } } }"""


class CapturedSms:
    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def send_login_code(self, phone: str, code: str) -> None:
        self.codes[phone] = code


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def own(database: str) -> AsyncIterator[tuple[Settings, AsyncEngine]]:
    settings = make_settings(database)
    engine = create_engine(settings)
    try:
        yield settings, engine
    finally:
        await engine.dispose()


async def raw_values(engine: AsyncEngine) -> dict[str, list[str]]:
    """What the database stores in each personal column, as stored (no decryption)."""
    found: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        for table, names in {**personal_columns(), "members": ("phone", "phone_index")}.items():
            raw = sa.table(table, *(sa.column(n) for n in names))
            for row in await conn.execute(sa.select(raw)):
                for name in names:
                    found.setdefault(f"{table}.{name}", [])
                    if getattr(row, name) is not None:
                        found[f"{table}.{name}"].append(str(getattr(row, name)))
        codes = sa.table("login_codes", sa.column("phone_index"))
        found["login_codes.phone_index"] = list(
            (await conn.execute(sa.select(codes.c.phone_index))).scalars()
        )
    return found


def assert_nothing_in_clear(stored: dict[str, list[str]], secrets: list[str]) -> None:
    for column, values in stored.items():
        for value in values:
            for secret in secrets:
                assert secret not in value, f"{secret!r} in clear in {column}"
            if not column.endswith("phone_index"):
                assert value.startswith("v1:"), f"{column} holds {value[:12]!r}…"


def file_bytes(url: str) -> bytes:
    """The SQLite database file and its journal, as a copy of them would hold."""
    path = Path(make_url(url).database or "")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_signing_in_saving_an_address_and_a_delivery_store_nothing_in_clear(
    own: tuple[Settings, AsyncEngine], database: str
) -> None:
    settings, engine = own
    phone = "13712340001"
    secrets = [
        phone,
        "隐私张三",
        "13712340002",
        "隐私路42号绝密小区",
        "秘密大厦1707",
        "李隐私",
        "13712340003",
        "骑手王隐私",
        "13712340004",
    ]
    shop = await new_shop(engine)
    sku = await new_sku(engine, price_fen=3000, stock={shop.store_ids[0]: 5})
    staff = await identity_db.ensure_staff(
        engine, username="hq", role=StaffRole.HQ_ADMIN, store_ids=[]
    )
    hq = {"Authorization": f"Bearer {issue_staff_token(settings, staff)}"}
    async with SqlUnitOfWork(engine) as uow:
        await uow.deliveries.add_rider(shop.store_ids[0], Courier("骑手王隐私", "13712340004"))
        await uow.commit()

    sms = CapturedSms()
    async with _app(settings, engine, sms) as client:
        member_ids = []
        for _ in range(2):  # the second sign-in finds the member through the blind index
            asked = await client.execute(REQUEST_CODE, {"p": phone})
            assert asked["data"]["requestLoginCode"]["errors"] == []
            login = (await client.execute(LOGIN, {"p": phone, "c": sms.codes[phone]}))["data"]
            assert login["login"]["errors"] == [], login
            member_ids.append(login["login"]["member"]["id"])
            await _forget_resend_interval(engine)
        assert member_ids[0] == member_ids[1]
        me = {"Authorization": f"Bearer {login['login']['token']}"}
        saved = await client.execute(
            SAVE_ADDRESS,
            {
                "i": {
                    "contactName": "隐私张三",
                    "contactPhone": "13712340002",
                    "address": "隐私路42号绝密小区",
                    "location": {"lat": 22.5, "lng": 114.0},
                }
            },
            me,
        )
        assert saved["data"]["saveAddress"]["address"] == {
            "contactName": "隐私张三",
            "contactPhone": "13712340002",
            "address": "隐私路42号绝密小区",
        }
        address = {
            **shop.near(2000),
            "detail": "秘密大厦1707",
            "contactName": "李隐私",
            "contactPhone": "13712340003",
        }
        placed = await client.execute(
            PLACE, {"input": place_input(line(sku, 1), address=address)}, me
        )
        order_id = placed["data"]["placeOrder"]["order"]["id"]
        assert (await client.execute(PAY, {"orderId": order_id}, me))["data"]
        for status in ("ACCEPTED", "PREPARING", "READY"):
            moved = await client.execute(MOVE, {"i": {"orderId": order_id, "status": status}}, hq)
            assert moved["data"]["updateOrderStatus"]["errors"] == [], moved
        seen = (await client.execute(ORDER, {"id": order_id}, hq))["data"]["order"]
        assert seen["address"] == {
            "detail": "秘密大厦1707",
            "contactName": "李隐私",
            "contactPhone": "13712340003",
        }
        courier = seen["dropoff"]["courier"]
        assert courier["name"].endswith("师傅") and len(courier["phone"]) == 11
        secrets += [courier["name"], courier["phone"]]

    stored = await raw_values(engine)
    assert stored["members.phone"] and stored["orders.contact_phone"]
    assert stored["deliveries.courier_phone"] and stored["riders.phone"]
    assert stored["login_codes.phone_index"] and stored["member_addresses.address"]
    assert_nothing_in_clear(stored, secrets)
    if engine.dialect.name == "sqlite":
        await engine.dispose()  # the last connection checkpoints the journal into the file
        copy = file_bytes(database)
        for secret in secrets:
            assert secret.encode() not in copy, f"{secret!r} in clear in the database file"


async def _forget_resend_interval(engine: AsyncEngine) -> None:
    """Codes a minute older, so the next one may be sent at once."""
    async with SqlUnitOfWork(engine) as uow:
        conn = uow._conn
        assert conn is not None
        await conn.execute(
            login_codes.update().values(created_at=datetime.now(UTC) - timedelta(minutes=2))
        )
        await uow.commit()


def _app(settings: Settings, engine: AsyncEngine, sms: CapturedSms) -> Any:
    """The noon shop app, with the SMS sender capturing codes."""
    from contextlib import asynccontextmanager

    import httpx

    from dinegraph.app import create_app
    from dinegraph.context import Clock
    from tests.shop import next_noon

    @asynccontextmanager
    async def running() -> AsyncIterator[GraphQLClient]:
        services = replace(default_services(settings), sms=sms, clock=Clock(next_noon()))
        app = create_app(settings, engine, services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield GraphQLClient(http)

    return running()


# --- the migration converts a database written before it ----------------------------------


def _before(kind: Any) -> Any:
    if isinstance(kind, PersonalFloat):
        return sa.Float()
    if isinstance(kind, PersonalDate):
        return sa.Date()
    if isinstance(kind, PersonalJson):
        return sa.JSON()
    return sa.Text() if isinstance(kind, Encrypted | BlindIndex) else kind


def _plain(table: sa.Table, *extra: str) -> sa.TableClause:
    """The table as written before the migration: personal columns as plain text."""
    columns = [sa.column(c.name, _before(c.type)) for c in table.columns]
    return sa.table(table.name, *columns, *(sa.column(n, sa.Text()) for n in extra))


async def _write_before_migration(engine: AsyncEngine) -> dict[str, int]:
    now = datetime.now(UTC)
    t = metadata.tables
    async with engine.begin() as conn:
        store_id = await conn.scalar(
            _plain(t["stores"])
            .insert()
            .values(
                code="OLD-1",
                name="旧店",
                address="门店路1号",
                lat=22.5,
                lng=114.0,
                delivery_radius_m=5000,
                opens=datetime(2026, 1, 1).time(),
                closes=datetime(2026, 1, 1).time(),
                is_open=True,
                delivery_provider="DADA",
                created_at=now,
            )
            .returning(sa.column("id"))
        )
        member_id = await conn.scalar(
            _plain(t["members"])
            .insert()
            .values(
                phone="13655550001",
                birthday=date(1990, 5, 17),
                nickname="老会员",
                tier="NORMAL",
                points=0,
                created_at=now,
            )
            .returning(sa.column("id"))
        )
        await conn.execute(
            _plain(t["login_codes"], "phone")
            .insert()
            .values(
                phone="13655550001",
                ip="127.0.0.1",
                code_hash="x" * 64,
                created_at=now,
                expires_at=now + timedelta(minutes=5),
                failures=0,
                consumed=False,
            )
        )
        await conn.execute(
            _plain(t["member_addresses"])
            .insert()
            .values(
                member_id=member_id,
                contact_name="旧联系人",
                contact_phone="13655550002",
                address="旧地址街9号",
                lat=22.5432,
                lng=114.0579,
                is_default=True,
            )
        )
        order_id = await conn.scalar(
            _plain(t["orders"])
            .insert()
            .values(
                member_id=member_id,
                store_id=store_id,
                channel="DELIVERY",
                status="PAID",
                idempotency_key="old",
                fingerprint="f",
                subtotal_fen=100,
                tier_discount_fen=0,
                coupon_discount_fen=0,
                delivery_fee_fen=0,
                delivery_discount_fen=0,
                packaging_fee_fen=0,
                total_fen=100,
                refunded_fen=0,
                points_earned=0,
                address_lat=22.5,
                address_lng=114.0,
                address_detail="旧订单地址8楼",
                contact_name="旧收货人",
                contact_phone="13655550003",
                note="",
                placed_at=now,
                pay_by=now,
                updated_at=now,
                version=1,
            )
            .returning(sa.column("id"))
        )
        rider_id = await conn.scalar(
            _plain(t["riders"])
            .insert()
            .values(
                store_id=store_id,
                name="旧骑手",
                phone="13655550004",
                active=True,
                busy=False,
                created_at=now,
            )
            .returning(sa.column("id"))
        )
        await conn.execute(
            _plain(t["deliveries"])
            .insert()
            .values(
                order_id=order_id,
                store_id=store_id,
                member_id=member_id,
                provider="OWN_RIDER",
                status="ASSIGNED",
                courier_name="旧骑手",
                courier_phone="13655550004",
                rider_id=rider_id,
                origin_lat=22.5,
                origin_lng=114.0,
                destination_lat=22.51,
                destination_lng=114.0,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            _plain(t["outbound_calls"])
            .insert()
            .values(
                kind="sms.login_code",
                key="m-1",
                payload={"phone": "13655550006", "code": "424242"},
                status="PENDING",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await conn.execute(
            _plain(t["staff"])
            .insert()
            .values(
                username="old-manager",
                display_name="旧店长王五",
                role="STORE_MANAGER",
                store_ids=[int(store_id or 0)],
                active=True,
                created_at=now,
            )
        )
        await conn.execute(
            _plain(t["event_outbox"])
            .insert()
            .values(topic="courier.1", payload='{"courier_phone": "13655550005"}', created_at=now)
        )
    assert member_id is not None and order_id is not None
    return {"member": int(member_id), "order": int(order_id)}


OLD_SECRETS = [
    "13655550001",
    "旧联系人",
    "13655550002",
    "旧地址街9号",
    "旧订单地址8楼",
    "旧收货人",
    "13655550003",
    "旧骑手",
    "13655550004",
    "13655550005",
    "13655550006",
    "旧店长王五",
]


def test_the_migration_encrypts_a_database_written_before_it(tmp_path: Path) -> None:
    with fresh_database(tmp_path, migrated=False) as url:
        settings = make_settings(url)
        upgrade(url, BEFORE, settings)

        async def before() -> dict[str, int]:
            engine = create_engine(settings)
            try:
                return await _write_before_migration(engine)
            finally:
                await engine.dispose()

        ids = asyncio.run(before())
        if not url.startswith("postgresql"):  # the scan below can see what is in clear
            assert all(secret.encode() in file_bytes(url) for secret in OLD_SECRETS)
        upgrade(url, "head", settings)

        async def after() -> None:
            engine = create_engine(settings)
            try:
                assert_nothing_in_clear(await raw_values(engine), OLD_SECRETS)
                async with SqlUnitOfWork(engine) as uow:
                    member = await uow.members.by_phone("13655550001")
                    assert member is not None and member.id == ids["member"]
                    assert member.phone == "13655550001"
                    assert member.birthday == date(1990, 5, 17)
                    (address,) = await uow.members.addresses(member.id)
                    assert (address.contact_name, address.address) == ("旧联系人", "旧地址街9号")
                    assert address.location == GeoPoint(22.5432, 114.0579)
                    order = await uow.orders.get(ids["order"])
                    assert order is not None and order.address is not None
                    assert order.address.contact_phone == "13655550003"
                    delivery = await uow.deliveries.latest_for_order(ids["order"])
                    assert delivery is not None and delivery.courier == Courier(
                        "旧骑手", "13655550004"
                    )
                    assert delivery.destination == GeoPoint(22.51, 114.0)
                    assert await uow.members.codes_since(
                        phone="13655550001", since=datetime.now(UTC) - timedelta(hours=1)
                    )
                relayed: list[tuple[str, str]] = []

                async def publish(messages: Sequence[tuple[str, str]]) -> None:
                    relayed.extend(messages)

                await SqlOutbox(engine).relay(datetime.now(UTC) + timedelta(1), 10, publish)
                assert relayed == [("courier.1", '{"courier_phone": "13655550005"}')]
                (call,) = await SqlCallStore(engine).take(
                    now=datetime.now(UTC), lease_until=datetime.now(UTC) + timedelta(1), limit=5
                )
                assert call.call.payload == {"phone": "13655550006", "code": "424242"}
                manager = await SqlStaffAccounts(engine).by_username("old-manager")
                assert manager is not None and manager.display_name == "旧店长王五"
            finally:
                await engine.dispose()

        asyncio.run(after())
        if not url.startswith("postgresql"):
            copy = file_bytes(url)
            for secret in OLD_SECRETS:
                assert secret.encode() not in copy, f"{secret!r} in clear in the migrated file"

        command.downgrade(alembic_config(url, settings), BEFORE)  # decrypts them again

        async def downgraded() -> None:
            engine = create_engine(settings)
            try:
                async with engine.connect() as conn:
                    rows = _plain(metadata.tables["orders"])
                    # Only the columns of that revision: later ones may add others.
                    columns = sa.select(rows.c.contact_phone, rows.c.address_lat)
                    row = (await conn.execute(columns)).one()
                    assert (row.contact_phone, row.address_lat) == ("13655550003", 22.5)
            finally:
                await engine.dispose()

        asyncio.run(downgraded())


# --- rotation -------------------------------------------------------------------------------


async def test_rotation_rewrites_every_value_under_the_new_key_once(database: str) -> None:
    old = create_engine(make_settings(database, data_keys=K1))
    try:
        async with SqlUnitOfWork(old) as uow:
            member = await uow.members.add(phone="13611112222", openid=None, nickname="轮换")
            await uow.members.save_profile(replace(member, birthday=date(1988, 8, 8)))
            await uow.commit()
    finally:
        await old.dispose()

    both = create_engine(make_settings(database, data_keys=f"{K2},{K1}"))
    try:
        async with SqlUnitOfWork(both) as uow:  # both keys read old values
            found = await uow.members.get(member.id)
            assert found is not None and found.phone == "13611112222"
            second = await uow.members.add(phone="13611113333", openid=None, nickname="新")
            await uow.commit()
        report = {c.column: c for c in await rotate_data_keys(both, batch_size=1)}
        assert (report["members.phone"].rotated, report["members.phone"].current) == (1, 1)
        assert (report["members.birthday"].rotated, report["members.birthday"].current) == (1, 0)
        assert report["members.phone_index"].rotated == 0  # the index key stayed
        again = {c.column: c for c in await rotate_data_keys(both)}
        assert (again["members.phone"].rotated, again["members.phone"].current) == (0, 2)
        assert all(c.rotated == 0 for c in again.values())
        assert {key_id(v) for v in (await raw_values(both))["members.phone"]} == {"k2"}
    finally:
        await both.dispose()

    new_only = create_engine(make_settings(database, data_keys=K2))
    try:
        async with SqlUnitOfWork(new_only) as uow:
            assert (await uow.members.by_phone("13611112222")) is not None
            assert (await uow.members.by_phone("13611113333")) == second
            rotated = await uow.members.get(member.id)
            assert rotated is not None and rotated.birthday == date(1988, 8, 8)
    finally:
        await new_only.dispose()
    old = create_engine(make_settings(database, data_keys=K1))
    try:
        async with SqlUnitOfWork(old) as uow:
            with pytest.raises(PersonalDataError, match="k2"):
                await uow.members.get(member.id)
    finally:
        await old.dispose()


async def test_a_new_blind_index_key_indexes_phones_again(database: str) -> None:
    first = create_engine(make_settings(database))
    try:
        async with SqlUnitOfWork(first) as uow:
            member = await uow.members.add(phone="13622223333", openid=None, nickname="索引")
            await uow.commit()
    finally:
        await first.dispose()
    other_index = "c" * 43 + "="
    moved = create_engine(make_settings(database, blind_index_key=other_index))
    try:
        async with SqlUnitOfWork(moved) as uow:
            assert await uow.members.by_phone("13622223333") is None  # not yet indexed again
        report = {c.column: c for c in await rotate_data_keys(moved)}
        assert report["members.phone_index"].rotated == 1
        async with SqlUnitOfWork(moved) as uow:
            found = await uow.members.by_phone("+86 136 2222 3333")
            assert found is not None and found.id == member.id
    finally:
        await moved.dispose()


async def test_a_value_moved_to_another_column_does_not_decrypt(
    own: tuple[Settings, AsyncEngine],
) -> None:
    _, engine = own
    async with SqlUnitOfWork(engine) as uow:
        member = await uow.members.add(phone="13633334444", openid=None, nickname="搬")
        await uow.commit()
    shop = await new_shop(engine)
    async with SqlUnitOfWork(engine) as uow:
        rider_id = await uow.deliveries.add_rider(shop.store_ids[0], Courier("骑手", "13633335555"))
        await uow.commit()
    member_rows = sa.table("members", sa.column("id"), sa.column("phone"))
    rider_rows = sa.table("riders", sa.column("id"), sa.column("phone"))
    async with engine.begin() as conn:  # someone with the database copies a value across
        stored = await conn.scalar(
            sa.select(member_rows.c.phone).where(member_rows.c.id == member.id)
        )
        assert stored is not None and stored.startswith("v1:test1:")
        await conn.execute(
            rider_rows.update().where(rider_rows.c.id == rider_id).values(phone=stored)
        )
    async with engine.connect() as conn:
        with pytest.raises(PersonalDataError, match=r"riders\.phone"):
            (await conn.execute(sa.select(riders).where(riders.c.id == rider_id))).all()


MENU = """query($s: ID!) { menu(storeId: $s, channel: DELIVERY) {
  store { name address } categories { products { name skus { price { fen } } } } } }"""
ADDRESSES = "{ viewer { member { addresses { contactName address } } } }"


async def test_menus_decrypt_nothing_and_a_member_s_addresses_do(
    own: tuple[Settings, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = own
    shop = await new_shop(engine)
    await new_sku(engine, price_fen=1200, stock={shop.store_ids[0]: 3})
    decrypted: list[str] = []
    decrypt = PersonalCipher.decrypt

    def counting(self: PersonalCipher, stored: str, column: str) -> str:
        decrypted.append(column)
        return decrypt(self, stored, column)

    monkeypatch.setattr(PersonalCipher, "decrypt", counting)
    sms = CapturedSms()
    async with _app(settings, engine, sms) as client:
        menu = await client.execute(MENU, {"s": shop.store(0)})
        assert menu["data"]["menu"]["categories"], menu
        assert decrypted == []

        await client.execute(REQUEST_CODE, {"p": "13744440000"})
        login = await client.execute(LOGIN, {"p": "13744440000", "c": sms.codes["13744440000"]})
        me = {"Authorization": f"Bearer {login['data']['login']['token']}"}
        address = {
            "contactName": "读者",
            "contactPhone": "13744440001",
            "address": "读路1号",
            "location": {"lat": 22.5, "lng": 114.0},
        }
        await client.execute(SAVE_ADDRESS, {"i": address}, me)
        decrypted.clear()
        seen = await client.execute(ADDRESSES, headers=me)
        assert seen["data"]["viewer"]["member"]["addresses"] == [
            {"contactName": "读者", "address": "读路1号"}
        ]
        assert "member_addresses.address" in decrypted
