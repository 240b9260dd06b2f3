"""The stock services on a fake unit of work: the ledger's rules, without a database.

The races (200 sales for 50 units, crossing multi-line sales) stay in
``tests/integration/test_stock_concurrency.py``; here each rule is one quick story.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinegraph.domain.catalog import Sku, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, PartnerViewer, Scope, StaffRole, StaffViewer
from dinegraph.domain.services.stock import (
    adjust_stock,
    record_sale,
    restock,
    set_low_stock_threshold,
    set_sold_out,
)
from dinegraph.domain.stock import (
    AdjustStock,
    LedgerKind,
    LowStock,
    RecordSale,
    Restock,
    SaleLine,
    SaleSource,
    SetLowStockThreshold,
    SetSoldOut,
    StockChanged,
)
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork


@dataclass
class Shop:
    db: FakeDatabase
    uow: FakeUnitOfWork
    store: Store
    beef: Sku  # a tracked retail dish, counted per store
    duck: Sku  # another tracked one
    noodles: Sku  # made to order: no level, only a sold-out flag
    manager: StaffViewer


@pytest.fixture
def shop() -> Shop:
    db = FakeDatabase()
    store = db.add_store()
    manager = StaffViewer(1, "店长", StaffRole.STORE_MANAGER, frozenset({store.id}))
    return Shop(
        db=db,
        uow=FakeUnitOfWork(db),
        store=store,
        beef=db.add_sku(name="卤牛肉"),
        duck=db.add_sku(name="酱鸭"),
        noodles=db.add_sku(name="牛肉面", tracked=False),
        manager=manager,
    )


async def _restock(shop: Shop, sku: Sku, quantity: int, reference: str = "") -> None:
    await restock(
        Restock(shop.store.id, sku.id, quantity, reference or f"delivery-{sku.id}-{quantity}"),
        uow=FakeUnitOfWork(shop.db),
        viewer=shop.manager,
    )


def _sale(shop: Shop, external_id: str, *lines: tuple[Sku, int]) -> RecordSale:
    return RecordSale(
        store_id=shop.store.id,
        source=SaleSource.POS,
        external_order_id=external_id,
        lines=tuple(SaleLine(sku.id, qty) for sku, qty in lines),
    )


def _available(shop: Shop, sku: Sku) -> int | None:
    level = shop.db.level(shop.store.id, sku.id)
    return level.available if level else None


def _ledger_sum(shop: Shop, sku: Sku) -> int:
    return sum(row.delta for row in shop.db.ledger(shop.store.id, sku.id))


async def test_a_sale_takes_every_line_and_writes_a_ledger_row_each(shop: Shop) -> None:
    await _restock(shop, shop.beef, 10)
    await _restock(shop, shop.duck, 6)

    await record_sale(
        _sale(shop, "POS-1", (shop.beef, 3), (shop.duck, 2), (shop.beef, 1)),
        uow=shop.uow,
        viewer=shop.manager,
    )

    assert shop.uow.committed
    assert (_available(shop, shop.beef), _available(shop, shop.duck)) == (6, 4)
    sales = [r for r in shop.db.tables.ledger if r.kind is LedgerKind.SALE]
    assert [(r.sku_id, r.delta, r.balance_after) for r in sales] == [
        (shop.beef.id, -4, 6),
        (shop.duck.id, -2, 4),
    ]
    changed = [e for e in shop.uow.events if isinstance(e, StockChanged)]
    assert [(e.sku_id, e.available) for e in changed] == [(shop.beef.id, 6), (shop.duck.id, 4)]


async def test_replayed_sale_changes_stock_once(shop: Shop) -> None:
    await _restock(shop, shop.beef, 10)
    first = await record_sale(
        _sale(shop, "MT-88", (shop.beef, 2)), uow=shop.uow, viewer=shop.manager
    )
    events_after_first = list(shop.uow.events)

    again = await record_sale(
        _sale(shop, " MT-88 ", (shop.beef, 2)), uow=shop.uow, viewer=shop.manager
    )

    assert again == first
    assert _available(shop, shop.beef) == 8
    assert len(shop.db.ledger(shop.store.id, shop.beef.id)) == 2  # the restock and one sale
    assert shop.uow.events == events_after_first  # the replay tells nobody anything new


async def test_replay_with_other_lines_is_refused_as_a_reused_key(shop: Shop) -> None:
    await _restock(shop, shop.beef, 10)
    await _restock(shop, shop.duck, 10)
    await record_sale(_sale(shop, "MT-89", (shop.beef, 2)), uow=shop.uow, viewer=shop.manager)

    with pytest.raises(DomainError) as refused:
        await record_sale(
            _sale(shop, "MT-89", (shop.beef, 2), (shop.duck, 1)),
            uow=shop.uow,
            viewer=shop.manager,
        )

    assert (refused.value.code, refused.value.field) == (
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ["externalOrderId"],
    )
    assert (_available(shop, shop.beef), _available(shop, shop.duck)) == (8, 10)


async def test_a_sale_never_takes_a_level_below_zero(shop: Shop) -> None:
    await _restock(shop, shop.beef, 2)

    with pytest.raises(DomainError) as refused:
        await record_sale(_sale(shop, "POS-9", (shop.beef, 3)), uow=shop.uow, viewer=shop.manager)

    error = refused.value
    assert (error.code, error.field, error.params) == (
        ErrorCode.OUT_OF_STOCK,
        ["lines", "0", "quantity"],
        {"available": 2},
    )
    assert _available(shop, shop.beef) == 2
    assert _ledger_sum(shop, shop.beef) == 2
    assert not shop.uow.committed
    assert shop.uow.rollbacks == 1


async def test_a_refused_sale_keeps_nothing_so_its_retry_after_a_restock_goes_through(
    shop: Shop,
) -> None:
    await _restock(shop, shop.beef, 2)
    with pytest.raises(DomainError):
        await record_sale(_sale(shop, "POS-10", (shop.beef, 3)), uow=shop.uow, viewer=shop.manager)
    await _restock(shop, shop.beef, 5)

    await record_sale(_sale(shop, "POS-10", (shop.beef, 3)), uow=shop.uow, viewer=shop.manager)

    assert _available(shop, shop.beef) == 4


async def test_a_sale_short_on_one_line_takes_none_of_the_others(shop: Shop) -> None:
    await _restock(shop, shop.beef, 10)
    await _restock(shop, shop.duck, 1)
    events_before = list(shop.uow.events)

    with pytest.raises(DomainError) as refused:
        await record_sale(
            _sale(shop, "POS-11", (shop.beef, 2), (shop.duck, 2)),
            uow=shop.uow,
            viewer=shop.manager,
        )

    assert (refused.value.code, refused.value.field) == (
        ErrorCode.OUT_OF_STOCK,
        ["lines", "1", "quantity"],
    )
    assert (_available(shop, shop.beef), _available(shop, shop.duck)) == (10, 1)
    assert _ledger_sum(shop, shop.beef) == 10
    assert shop.uow.events == events_before  # the beef line's event was never published


async def test_low_stock_is_announced_once_when_the_threshold_is_crossed(shop: Shop) -> None:
    await _restock(shop, shop.beef, 8)  # the default threshold is 5

    await record_sale(_sale(shop, "POS-20", (shop.beef, 3)), uow=shop.uow, viewer=shop.manager)
    await record_sale(_sale(shop, "POS-21", (shop.beef, 1)), uow=shop.uow, viewer=shop.manager)

    alerts = [e for e in shop.uow.events if isinstance(e, LowStock)]
    assert [(a.sku_id, a.available, a.threshold) for a in alerts] == [(shop.beef.id, 5, 5)]


async def test_a_lowered_threshold_moves_where_the_alert_fires(shop: Shop) -> None:
    await _restock(shop, shop.beef, 8)
    await set_low_stock_threshold(
        SetLowStockThreshold(shop.store.id, shop.beef.id, 2), uow=shop.uow, viewer=shop.manager
    )

    await record_sale(_sale(shop, "POS-30", (shop.beef, 5)), uow=shop.uow, viewer=shop.manager)
    assert not [e for e in shop.uow.events if isinstance(e, LowStock)]
    await record_sale(_sale(shop, "POS-31", (shop.beef, 1)), uow=shop.uow, viewer=shop.manager)

    alerts = [e for e in shop.uow.events if isinstance(e, LowStock)]
    assert [(a.available, a.threshold) for a in alerts] == [(2, 2)]


async def test_a_made_to_order_dish_sells_without_a_level(shop: Shop) -> None:
    await record_sale(_sale(shop, "POS-40", (shop.noodles, 3)), uow=shop.uow, viewer=shop.manager)

    assert shop.db.level(shop.store.id, shop.noodles.id) is None
    assert shop.db.ledger(shop.store.id, shop.noodles.id) == []
    assert shop.uow.committed


async def test_a_made_to_order_dish_is_marked_sold_out_and_a_counted_one_cannot_be(
    shop: Shop,
) -> None:
    level = await set_sold_out(
        SetSoldOut(shop.store.id, shop.noodles.id, True), uow=shop.uow, viewer=shop.manager
    )
    assert level.sold_out
    assert shop.uow.events == [StockChanged(shop.store.id, shop.noodles.id, None, True, 1)]

    with pytest.raises(DomainError) as refused:
        await set_sold_out(
            SetSoldOut(shop.store.id, shop.beef.id, True), uow=shop.uow, viewer=shop.manager
        )
    assert (refused.value.code, refused.value.field) == (ErrorCode.TRACKED, ["skuId"])


async def test_a_threshold_is_only_for_counted_stock(shop: Shop) -> None:
    with pytest.raises(DomainError) as refused:
        await set_low_stock_threshold(
            SetLowStockThreshold(shop.store.id, shop.noodles.id, 3),
            uow=shop.uow,
            viewer=shop.manager,
        )
    assert refused.value.code is ErrorCode.NOT_TRACKED


async def test_an_adjustment_needs_a_reason_and_cannot_take_more_than_is_there(
    shop: Shop,
) -> None:
    await _restock(shop, shop.beef, 4)

    with pytest.raises(DomainError) as no_reason:
        await adjust_stock(
            AdjustStock(shop.store.id, shop.beef.id, -1, "  ", "count-1"),
            uow=shop.uow,
            viewer=shop.manager,
        )
    with pytest.raises(DomainError) as too_many:
        await adjust_stock(
            AdjustStock(shop.store.id, shop.beef.id, -5, "破损", "count-1"),
            uow=shop.uow,
            viewer=shop.manager,
        )
    await adjust_stock(
        AdjustStock(shop.store.id, shop.beef.id, -1, "破损", "count-1"),
        uow=shop.uow,
        viewer=shop.manager,
    )

    assert (no_reason.value.code, no_reason.value.field) == (ErrorCode.REQUIRED, ["reason"])
    assert too_many.value.code is ErrorCode.OUT_OF_STOCK
    assert _available(shop, shop.beef) == 3
    assert [r.kind for r in shop.db.ledger(shop.store.id, shop.beef.id)] == [
        LedgerKind.RESTOCK,
        LedgerKind.ADJUSTMENT,
    ]


async def test_a_restock_reference_used_for_another_quantity_is_refused(shop: Shop) -> None:
    await _restock(shop, shop.beef, 4, reference="DN-7")
    await _restock(shop, shop.beef, 4, reference="DN-7")  # a retry: nothing more

    with pytest.raises(DomainError) as refused:
        await _restock(shop, shop.beef, 6, reference="DN-7")

    assert (refused.value.code, refused.value.field) == (
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ["reference"],
    )
    assert _available(shop, shop.beef) == 4


async def test_an_unknown_sku_or_store_is_named_in_the_error(shop: Shop) -> None:
    with pytest.raises(DomainError) as no_sku:
        await record_sale(
            RecordSale(shop.store.id, SaleSource.POS, "POS-50", (SaleLine(999, 1),)),
            uow=shop.uow,
            viewer=shop.manager,
        )
    head_office = StaffViewer(9, "总部", StaffRole.HQ_ADMIN, frozenset())
    with pytest.raises(DomainError) as no_store:
        await record_sale(
            RecordSale(999, SaleSource.POS, "POS-51", (SaleLine(shop.beef.id, 1),)),
            uow=shop.uow,
            viewer=head_office,
        )

    assert (no_sku.value.code, no_sku.value.field) == (
        ErrorCode.NOT_FOUND,
        ["lines", "0", "skuId"],
    )
    assert (no_store.value.code, no_store.value.field) == (ErrorCode.NOT_FOUND, ["storeId"])
    assert shop.db.tables.movements == {}


@pytest.mark.parametrize(
    ("scopes", "stores", "allowed"),
    [
        ({Scope.STOCK_WRITE}, None, True),
        ({Scope.STOCK_WRITE}, "this store", True),
        ({Scope.STOCK_WRITE}, "another store", False),
        ({Scope.STOCK_READ}, None, False),
    ],
)
async def test_a_takeaway_platform_records_sales_only_with_stock_write_for_the_store(
    shop: Shop, scopes: set[str], stores: str | None, allowed: bool
) -> None:
    await _restock(shop, shop.beef, 5)
    store_ids = {
        None: None,
        "this store": frozenset({shop.store.id}),
        "another store": frozenset({shop.store.id + 1000}),
    }[stores]
    partner = PartnerViewer(7, "美团", frozenset(scopes), store_ids)
    sale = RecordSale(shop.store.id, SaleSource.TAKEAWAY, "MT-1", (SaleLine(shop.beef.id, 1),))

    if allowed:
        await record_sale(sale, uow=shop.uow, viewer=partner)
    else:
        with pytest.raises(DomainError) as refused:
            await record_sale(sale, uow=shop.uow, viewer=partner)
        assert refused.value.code is ErrorCode.FORBIDDEN

    assert _available(shop, shop.beef) == (4 if allowed else 5)


async def test_members_and_managers_of_other_stores_cannot_restock(shop: Shop) -> None:
    other = StaffViewer(2, "别店店长", StaffRole.STORE_MANAGER, frozenset({shop.store.id + 1}))
    for viewer, code in ((MemberViewer(5), ErrorCode.FORBIDDEN), (other, ErrorCode.FORBIDDEN)):
        with pytest.raises(DomainError) as refused:
            await restock(
                Restock(shop.store.id, shop.beef.id, 5, "DN-1"), uow=shop.uow, viewer=viewer
            )
        assert refused.value.code is code
    assert _available(shop, shop.beef) is None


# A random day at the counter: restocks, sales of one or two lines, replays and counts.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("restock"), st.integers(1, 6), st.sampled_from(["beef", "duck"])),
        st.tuples(st.just("sale"), st.integers(1, 4), st.sampled_from(["beef", "duck", "both"])),
        st.tuples(st.just("replay"), st.integers(0, 30), st.just("")),
        st.tuples(st.just("count"), st.integers(-4, 4).filter(bool), st.just("beef")),
    ),
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(steps)
def test_levels_never_go_below_zero_and_always_equal_their_ledger(
    day: list[tuple[str, int, str]],
) -> None:
    asyncio.run(_run_day(day))


async def _run_day(day: list[tuple[str, int, str]]) -> None:
    db = FakeDatabase()
    store = db.add_store()
    skus = {"beef": db.add_sku(name="卤牛肉"), "duck": db.add_sku(name="酱鸭")}
    manager = StaffViewer(1, "店长", StaffRole.HQ_ADMIN, frozenset())
    sales: list[RecordSale] = []
    for n, (kind, amount, which) in enumerate(day):
        uow = FakeUnitOfWork(db)
        try:
            if kind == "restock":
                cmd = Restock(store.id, skus[which].id, amount, f"DN-{n}")
                await restock(cmd, uow=uow, viewer=manager)
            elif kind == "sale":
                chosen = [skus["beef"], skus["duck"]] if which == "both" else [skus[which]]
                sale = RecordSale(
                    store.id,
                    SaleSource.POS,
                    f"POS-{n}",
                    tuple(SaleLine(s.id, amount) for s in chosen),
                )
                sales.append(sale)
                await record_sale(sale, uow=uow, viewer=manager)
            elif kind == "replay" and sales:
                await record_sale(sales[amount % len(sales)], uow=uow, viewer=manager)
            elif kind == "count":
                cmd_ = AdjustStock(store.id, skus[which].id, amount, "盘点", f"count-{n}")
                await adjust_stock(cmd_, uow=uow, viewer=manager)
        except DomainError as error:
            assert error.code is ErrorCode.OUT_OF_STOCK
        for sku in skus.values():
            level = db.level(store.id, sku.id)
            rows = db.ledger(store.id, sku.id)
            available = level.available if level else 0
            assert available is not None and available >= 0
            assert available == sum(r.delta for r in rows)
            assert all(r.balance_after >= 0 for r in rows)
