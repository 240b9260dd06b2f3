"""Kitchen tickets: splitting an order by station, the printers' layout, ESC/POS bytes, and a
combo sold out by its components."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dinegraph.domain.catalog import Channel, ComboComponent, Sku
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, StaffRole, StaffViewer
from dinegraph.domain.kitchen import (
    DEFAULT_STATION_NAME,
    CreateStation,
    KitchenStation,
    NewTicket,
    RemoveStation,
    StationRoute,
    Ticket,
    TicketChanged,
    TicketDish,
    TicketItem,
    check_order_ids,
    clean_station_name,
    split_order,
)
from dinegraph.domain.orders import Order, OrderLine, OrderSource, OrderStatus
from dinegraph.domain.services.kitchen import create_station, issue_tickets, remove_station
from dinegraph.domain.stock import StockView, combo_stock_view
from dinegraph.printing import (
    PaperWidth,
    escpos,
    text_width,
    ticket_rows,
    ticket_text,
    two_sides,
    wrap,
)
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACCEPTED = datetime(2026, 12, 2, 4, 5, tzinfo=UTC)  # 12:05 in Shanghai

WOK = KitchenStation(1, 7, "热炒", 0, is_default=True)
COLD = KitchenStation(2, 7, "凉菜", 1, is_default=False)
DRINKS = KitchenStation(3, 7, "饮品", 2, is_default=False)

# sku → dish: 10 a stir-fry (category 100), 11 a cold dish (category 200), 12 a drink whose
# product is routed apart from its category, 20 a combo of 10 ×1, 11 ×2 and 12 ×1.
DISHES = {
    10: TicketDish(10, 1000, 100, "宫保鸡丁", {"辣度": "微辣"}),
    11: TicketDish(11, 1100, 200, "拍黄瓜"),
    12: TicketDish(12, 1200, 100, "酸梅汤"),
    20: TicketDish(
        20,
        2000,
        300,
        "商务套餐A",
        components=(ComboComponent(10, 1), ComboComponent(11, 2), ComboComponent(12, 1)),
    ),
}
ROUTES = [
    StationRoute(COLD.id, category_id=200),
    StationRoute(WOK.id, category_id=100),
    StationRoute(DRINKS.id, product_id=1200),  # the product's own route beats category 100
]


def order_of(*lines: tuple[int, str, int], refunded: int = 0, note: str = "") -> Order:
    return Order(
        id=123,
        member_id=1,
        store_id=7,
        channel=Channel.PICKUP,
        status=OrderStatus.ACCEPTED,
        idempotency_key="k",
        fingerprint="f",
        subtotal_fen=0,
        tier_discount_fen=0,
        coupon_discount_fen=0,
        delivery_fee_fen=0,
        delivery_discount_fen=0,
        packaging_fee_fen=0,
        total_fen=0,
        refunded_fen=0,
        coupon_id=None,
        address=None,
        distance_m=None,
        note=note,
        pickup_code="0123",
        placed_at=datetime(2026, 12, 2, 4, 0, tzinfo=UTC),
        pay_by=datetime(2026, 12, 2, 4, 15, tzinfo=UTC),
        paid_at=datetime(2026, 12, 2, 4, 1, tzinfo=UTC),
        completed_at=None,
        version=3,
        lines=tuple(
            OrderLine(n, sku, 0, name, {}, 100, qty, refunded if n == 0 else 0)
            for n, (sku, name, qty) in enumerate(lines)
        ),
    )


def test_a_combo_is_split_into_its_components_each_at_its_own_station() -> None:
    order = order_of((20, "商务套餐A", 2), (10, "宫保鸡丁（大份）", 1))
    tickets = split_order(order, DISHES, [DRINKS, COLD, WOK], ROUTES, ACCEPTED)
    assert [t.station_name for t in tickets] == ["热炒", "凉菜", "饮品"]  # station order
    wok, cold, drinks = (t.items for t in tickets)
    assert wok == (
        TicketItem("宫保鸡丁", 2, {"辣度": "微辣"}, "商务套餐A"),
        TicketItem("宫保鸡丁（大份）", 1, {}),
    )
    assert cold == (TicketItem("拍黄瓜", 4, {}, "商务套餐A"),)  # 2 combos × 2
    assert drinks == (TicketItem("酸梅汤", 2, {}, "商务套餐A"),)
    first = tickets[0]
    assert (first.order_number, first.pickup_code, first.source) == (
        "20261202000123",
        "0123",
        "MINI_PROGRAM",
    )
    assert first.accepted_at == ACCEPTED and first.channel is Channel.PICKUP


def test_a_platform_order_s_tickets_name_it_and_carry_each_line_s_note() -> None:
    lines = (
        OrderLine(0, 20, 0, "商务套餐A", {}, 3800, 1, note="不要辣"),
        OrderLine(1, 11, 0, "拍黄瓜", {}, 1200, 1, note="不要香菜"),
    )
    meituan = replace(
        order_of(),
        channel=Channel.DELIVERY,
        source=OrderSource.MEITUAN,
        external_id="MT-88",
        pickup_code="美团#23",
        note="多放餐具",
        lines=lines,
    )
    wok, cold, drinks = split_order(meituan, DISHES, [WOK, COLD, DRINKS], ROUTES, ACCEPTED)
    assert {t.source for t in (wok, cold, drinks)} == {OrderSource.MEITUAN}
    assert (cold.pickup_code, cold.note, cold.table_no) == ("美团#23", "多放餐具", None)
    assert cold.items == (
        TicketItem("拍黄瓜", 2, {}, "商务套餐A", "不要辣"),  # the combo's note, on its parts
        TicketItem("拍黄瓜", 1, {}, note="不要香菜"),
    )
    till = replace(
        order_of((10, "宫保鸡丁", 1)),
        channel=Channel.DINE_IN,
        source=OrderSource.POS,
        table_no="A8",
    )
    (ticket,) = split_order(till, DISHES, [WOK], [], ACCEPTED)
    assert (ticket.source, ticket.table_no) == (OrderSource.POS, "A8")


def test_unmapped_dishes_go_to_the_default_station_and_without_stations_to_one_ticket() -> None:
    order = order_of((11, "拍黄瓜", 1), (99, "已下架的菜", 1))
    (ticket,) = split_order(order, DISHES, [WOK, COLD], [], ACCEPTED)
    assert ticket.station_id == WOK.id  # the default; SKU 99 is unknown, 11 unmapped
    assert [i.name for i in ticket.items] == ["拍黄瓜", "已下架的菜"]
    (bare,) = split_order(order, DISHES, [], [], ACCEPTED)
    assert (bare.station_id, bare.station_name) == (None, DEFAULT_STATION_NAME)


def test_refunded_units_are_not_made() -> None:
    order = order_of((10, "宫保鸡丁", 2), (11, "拍黄瓜", 1), refunded=2)
    tickets = split_order(order, DISHES, [WOK, COLD], ROUTES, ACCEPTED)
    assert [t.station_name for t in tickets] == ["凉菜"]


def test_station_names_and_print_batches_are_checked() -> None:
    assert clean_station_name("  面点 ") == "面点"
    for raw, code in (("  ", ErrorCode.REQUIRED), ("热" * 21, ErrorCode.TOO_LONG)):
        with pytest.raises(DomainError) as caught:
            clean_station_name(raw)
        assert caught.value.code is code
    assert check_order_ids([3, 1, 3]) == (3, 1)
    with pytest.raises(DomainError) as caught:
        check_order_ids(list(range(51)))
    assert caught.value.code is ErrorCode.OUT_OF_RANGE


# --- layout -----------------------------------------------------------------------------


def test_cjk_characters_take_two_columns() -> None:
    assert text_width("abc") == 3
    assert text_width("宫保鸡丁") == 8
    assert text_width("ＡＢ") == 4  # full-width forms
    assert text_width("e\u0301") == 1  # a combining accent takes none
    assert wrap("宫保鸡丁宫保鸡丁", 5) == ["宫保", "鸡丁", "宫保", "鸡丁"]  # never split a wide one
    assert two_sides("宫保鸡丁", "x2", 12) == ["宫保鸡丁  x2"]
    # The name wraps short of the quantity's column; the quantity ends its last line.
    assert two_sides("宫保鸡丁宫保", "x12", 14) == ["宫保鸡丁宫", "保" + " " * 9 + "x12"]
    assert two_sides("宫保", "x1234567890123", 14) == ["宫保", "x1234567890123"]


def a_ticket(print_count: int = 0, note: str = "少辣，不要香菜，打包两份餐具谢谢") -> Ticket:
    items = (
        TicketItem("招牌宫保鸡丁配手工米饭和例汤", 2, {"辣度": "微辣"}, "商务套餐A"),
        TicketItem("Coke Zero", 10),
    )
    new = NewTicket(
        store_id=7,
        order_id=123,
        station_id=1,
        station_name="热炒",
        order_number="20261202000123",
        channel=Channel.DINE_IN,
        source=OrderSource.MINI_PROGRAM,
        table_no="12",
        pickup_code="0123",
        note=note,
        placed_at=ACCEPTED,
        accepted_at=ACCEPTED,
        items=items,
    )
    return Ticket(1, new, None, print_count, 1)


@pytest.mark.parametrize("paper", list(PaperWidth))
def test_every_line_fits_the_paper(paper: PaperWidth) -> None:
    rows = ticket_rows(a_ticket(), paper.value, SHANGHAI)
    assert all(text_width(r.text) <= paper.value for r in rows)
    assert any(text_width(r.text) == paper.value for r in rows)  # the rules fill a line
    text = ticket_text(a_ticket(), paper.value, SHANGHAI)
    assert "桌12" in text  # dine-in: the table
    assert "12-02 12:05" in text  # Shanghai time, not UTC (04:05)
    assert "堂食 小程序" in text and "单号 20261202000123" in text
    assert "[套餐] 商务套餐A" in text and "辣度:微辣" in text
    assert "x10" in text and "重打" not in text


def test_a_platform_ticket_prints_the_platform_and_each_line_s_note() -> None:
    ticket = a_ticket()
    items = (TicketItem("拍黄瓜", 1, {}, note="不要香菜"),)
    new = replace(
        ticket.ticket,
        channel=Channel.DELIVERY,
        source=OrderSource.ELEME,
        table_no=None,
        pickup_code="E17",
        items=items,
    )
    text = ticket_text(replace(ticket, ticket=new), PaperWidth.MM58.value, SHANGHAI)
    assert "热炒  E17" in text and "外卖 饿了么" in text
    assert "[备注] 不要香菜" in text
    till = replace(ticket.ticket, source=OrderSource.POS)
    assert "堂食 收银台" in ticket_text(replace(ticket, ticket=till), 32, SHANGHAI)


def test_a_reprint_says_so() -> None:
    assert "** 重打 第2次 **" in ticket_text(a_ticket(print_count=3), 32, SHANGHAI)


def test_escpos_initialises_prints_gb18030_emphasises_the_header_and_cuts() -> None:
    raw = escpos(a_ticket(note=""), 32, SHANGHAI)
    assert raw.startswith(b"\x1b@\x1c&")  # ESC @, then FS & (Chinese characters)
    assert raw.endswith(b"\x1bd\x03\x1dVB\x00")  # feed 3 lines, partial cut
    header = "热炒  桌12".encode("gb18030")
    assert b"\x1bE\x01\x1d!\x01" + header + b"\n\x1d!\x00\x1bE\x00" in raw
    assert "招牌宫保鸡丁".encode("gb18030") in raw
    assert "招牌宫保鸡丁".encode() not in raw  # not UTF-8
    body = raw[4:-7]
    for command in (b"\x1bE\x01\x1d!\x01", b"\x1d!\x00\x1bE\x00"):
        body = body.replace(command, b"")
    assert body.decode("gb18030") == ticket_text(a_ticket(note=""), 32, SHANGHAI) + "\n"


# --- a combo sold out by its components --------------------------------------------------

COMBO = Sku(20, 2000, "", {}, 3800, False, 0, (ComboComponent(10, 1), ComboComponent(30, 2)))
ON_SALE = StockView(available=None, sold_out=False, version=4)


@pytest.mark.parametrize(
    ("components", "sold_out"),
    [
        ({}, False),  # nothing known: dishes on sale
        ({10: ON_SALE, 30: StockView(2, False, 1)}, False),
        ({10: StockView(None, True, 5)}, True),  # 沽清
        ({30: StockView(1, False, 1)}, True),  # counted: fewer than one combo takes
        ({30: StockView(0, True, 1)}, True),
    ],
)
def test_a_combo_is_sold_out_when_a_component_is(
    components: dict[int, StockView | None], sold_out: bool
) -> None:
    view = combo_stock_view(COMBO, ON_SALE, components)
    assert view.sold_out is sold_out
    assert (view.available, view.version) == (None, 4)


# --- the services, on a fake unit of work ------------------------------------------------


async def test_tickets_are_recorded_in_the_accepting_unit_and_heard_after_its_commit() -> None:
    db = FakeDatabase()
    store = db.add_store()
    wok = db.add_sku(name="宫保鸡丁", tracked=False)
    uow = FakeUnitOfWork(db)
    manager = StaffViewer(1, "店长", StaffRole.STORE_MANAGER, frozenset({store.id}))
    hot = await create_station(CreateStation(store.id, "热炒"), uow=uow, viewer=manager)
    await create_station(CreateStation(store.id, "凉菜"), uow=uow, viewer=manager)
    paid = replace(order_of((wok.id, "宫保鸡丁", 2)), store_id=store.id, status=OrderStatus.PAID)
    order_id = await db_order(uow, paid)
    async with uow:
        await issue_tickets(uow, replace(paid, id=order_id), ACCEPTED)
        assert not [e for e in uow.events if isinstance(e, TicketChanged)]  # not before commit
        await uow.commit()
    (event,) = [e for e in uow.events if isinstance(e, TicketChanged)]
    assert (event.store_id, event.station_id, event.version) == (store.id, hot.id, 1)
    (ticket,) = db.tables.tickets.values()
    assert ticket.ticket.items == (TicketItem("宫保鸡丁", 2, {}),)  # the default station's


async def db_order(uow: FakeUnitOfWork, order: Order) -> int:
    async with uow:
        order_id = await uow.orders.add(order)
        assert order_id is not None
        await uow.orders.add_lines(order_id, list(order.lines))
        await uow.commit()
    return order_id


async def test_station_refusals_change_nothing() -> None:
    db = FakeDatabase()
    store, other = db.add_store(), db.add_store(name="徐家汇店")
    uow = FakeUnitOfWork(db)
    manager = StaffViewer(1, "店长", StaffRole.STORE_MANAGER, frozenset({store.id}))
    first = await create_station(CreateStation(store.id, "热炒"), uow=uow, viewer=manager)
    assert first.is_default
    commits = uow.commits
    for cmd, code in (
        (CreateStation(store.id, "热炒"), ErrorCode.DUPLICATE),
        (CreateStation(other.id, "面点"), ErrorCode.FORBIDDEN),
        (CreateStation(store.id, "面点", sort=10_000), ErrorCode.OUT_OF_RANGE),
    ):
        with pytest.raises(DomainError) as caught:
            await create_station(cmd, uow=uow, viewer=manager)
        assert caught.value.code is code
    with pytest.raises(DomainError) as caught:
        await remove_station(RemoveStation(first.id), uow=uow, viewer=MemberViewer(5))
    assert caught.value.code in (ErrorCode.FORBIDDEN, ErrorCode.UNAUTHENTICATED)
    assert uow.commits == commits and list(db.tables.stations.values()) == [first]
