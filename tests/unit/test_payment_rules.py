"""WeChat Pay's names for our orders and refunds, and when a prepay may be handed out again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from dinegraph.domain.payments import (
    Prepay,
    TradeState,
    order_id_of,
    out_refund_no,
    out_trade_no,
)

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")


@pytest.mark.parametrize("order_id", [1, 42, 999_999, 1_000_000, 2**31 - 1])
def test_an_order_id_is_a_valid_out_trade_no_and_reads_back(order_id: int) -> None:
    trade_no = out_trade_no(order_id)
    assert TRADE_NO.fullmatch(trade_no)
    assert order_id_of(trade_no) == order_id


@pytest.mark.parametrize("trade_no", ["", "12345", "abc123", "000001x", "1" * 33, "-00001"])
def test_a_trade_number_not_of_ours_names_no_order(trade_no: str) -> None:
    assert order_id_of(trade_no) is None


@pytest.mark.parametrize("reference", ["refund-7", "r@1|2*3_4", "x" * 64])
def test_a_refund_reference_that_fits_is_its_own_out_refund_no(reference: str) -> None:
    assert out_refund_no(reference) == reference


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("order:12:cancel", "order-12-cancel"),
        ("order:12:refund:" + "k" * 60 + "1", "order:12:refund:" + "k" * 60 + "2"),
        ("退款:1", "退款:2"),
    ],
)
def test_references_that_do_not_fit_get_distinct_valid_numbers(one: str, other: str) -> None:
    assert out_refund_no(one) != out_refund_no(other)
    for reference in (one, other):
        assert REFUND_NO.fullmatch(out_refund_no(reference))
        assert out_refund_no(reference) == out_refund_no(reference)
    assert out_refund_no("order:12:cancel").startswith("order-12-cancel-")


def _prepay(**changes: object) -> Prepay:
    values: dict[str, object] = {
        "order_id": 1,
        "provider": "wechatpay",
        "prepay_id": "wx1",
        "payer": "o-1",
        "amount_fen": 2400,
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    values.update(changes)
    return Prepay(**values)  # type: ignore[arg-type]


def test_a_prepay_is_handed_out_again_only_while_it_is_the_same_payment() -> None:
    assert _prepay().usable_for("o-1", 2400, NOW + timedelta(minutes=14))
    assert not _prepay().usable_for("o-1", 2400, NOW + timedelta(minutes=15))  # expired
    assert not _prepay().usable_for("o-2", 2400, NOW)  # another payer
    assert not _prepay().usable_for("o-1", 2300, NOW)  # another amount
    assert not _prepay(closed_at=NOW).usable_for("o-1", 2400, NOW)  # paid or closed


def test_which_trade_states_are_paid_and_which_are_over() -> None:
    assert {s for s in TradeState if s.paid} == {TradeState.SUCCESS, TradeState.REFUND}
    assert {s for s in TradeState if s.over} == {
        TradeState.CLOSED,
        TradeState.REVOKED,
        TradeState.PAYERROR,
    }
