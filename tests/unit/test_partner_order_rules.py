"""The rules of partners' orders: what a retry must repeat, how they move, who records them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    MemberViewer,
    PartnerViewer,
    StaffRole,
    StaffViewer,
    can_read_order,
    require_order_board_reader,
    require_order_writer,
)
from dinegraph.domain.orders import Mover, OrderSource, OrderStatus, check_move
from dinegraph.domain.partner_orders import (
    PartnerLine,
    RecordPartnerOrder,
    clean_partner_order,
    sale_source,
)
from dinegraph.domain.stock import MovementSource
from tests.unit.test_order_rules import order

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def _cmd(**changes: object) -> RecordPartnerOrder:
    base = RecordPartnerOrder(
        store_id=1,
        source=OrderSource.ELEME,
        external_id=" E-1 ",
        lines=(PartnerLine(3, 2, note=" 少冰 "), PartnerLine(3, 1)),
        fulfilment=Channel.DELIVERY,
        paid_fen=3000,
        now=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_retry_is_the_same_order_whenever_it_arrives() -> None:
    first = clean_partner_order(_cmd())
    assert first.external_id == "E-1"
    assert first.lines[0].note == "少冰"
    assert first.units() == {3: 3}
    assert clean_partner_order(_cmd(now=datetime(2026, 12, 3, tzinfo=UTC))).fingerprint == (
        first.fingerprint
    )
    for other in (_cmd(paid_fen=3001), _cmd(store_id=2), _cmd(lines=(PartnerLine(3, 3),))):
        assert clean_partner_order(other).fingerprint != first.fingerprint


def test_the_mini_program_is_not_a_partner_source() -> None:
    with pytest.raises(DomainError) as refused:
        clean_partner_order(_cmd(source=OrderSource.MINI_PROGRAM))
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_INPUT, ["source"])


def test_platform_sales_are_takeaway_sales_in_the_ledger() -> None:
    assert sale_source(OrderSource.POS) is MovementSource.POS
    assert {sale_source(s) for s in (OrderSource.MEITUAN, OrderSource.DOUYIN)} == {
        MovementSource.TAKEAWAY
    }
    assert OrderSource.MEITUAN.platform and not OrderSource.POS.platform


def test_a_partners_order_is_completed_when_handed_over_and_never_sent_with_our_riders() -> None:
    partners = order(OrderStatus.READY, source=OrderSource.MEITUAN)
    check_move(partners, OrderStatus.COMPLETED, Mover.STAFF)
    with pytest.raises(DomainError):
        check_move(partners, OrderStatus.DELIVERING, Mover.STAFF)
    with pytest.raises(DomainError):
        check_move(partners, OrderStatus.COMPLETED, Mover.CUSTOMER)
    mine = order(OrderStatus.READY)  # the mini-program's delivery: our rider takes it
    with pytest.raises(DomainError):
        check_move(mine, OrderStatus.COMPLETED, Mover.STAFF)


def test_who_records_and_reads_partners_orders() -> None:
    writer = PartnerViewer(1, "till", frozenset({"orders:write"}), frozenset({1}))
    reader = PartnerViewer(2, "board", frozenset({"orders:read"}), frozenset({1}))
    assert require_order_writer(writer, 1) is writer
    for viewer, store in ((writer, 2), (reader, 1)):
        with pytest.raises(DomainError) as refused:
            require_order_writer(viewer, store)
        assert refused.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(DomainError):
        require_order_writer(StaffViewer(1, "hq", StaffRole.HQ_ADMIN, frozenset()), 1)
    assert require_order_board_reader(reader, 1) is reader
    with pytest.raises(DomainError):
        require_order_board_reader(writer, 1)
    assert can_read_order(reader, 7, 1) and not can_read_order(reader, 7, 2)
    assert not can_read_order(writer, None, 1)
    assert not can_read_order(MemberViewer(7), None, 1)
