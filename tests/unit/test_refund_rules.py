"""Refund rules without I/O: the lifecycle, the provider's reference, replayed requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.refunds import (
    FINAL_REFUND,
    GRANTED,
    Refund,
    RefundLine,
    RefundStatus,
    RefundToSend,
    Requester,
    can_move_refund,
    check_refund_move,
    refund_reference,
    requester_of,
    same_request,
)
from tests.unit.test_order_rules import order

R = RefundStatus
AT = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)

ALLOWED = {
    (R.REQUESTED, R.APPROVED),
    (R.REQUESTED, R.REFUSED),
    (R.APPROVED, R.SUBMITTED),
    (R.APPROVED, R.REFUNDED),  # the provider's final word overtook its acceptance
    (R.APPROVED, R.FAILED),
    (R.SUBMITTED, R.REFUNDED),
    (R.SUBMITTED, R.FAILED),
}


@pytest.mark.parametrize("current", list(R))
@pytest.mark.parametrize("target", list(R))
def test_a_refund_moves_only_along_its_lifecycle(current: R, target: R) -> None:
    allowed = (current, target) in ALLOWED
    assert can_move_refund(current, target) is allowed
    if allowed:
        check_refund_move(current, target)
    else:
        with pytest.raises(DomainError) as refused:
            check_refund_move(current, target)
        assert refused.value.code is ErrorCode.INVALID_TRANSITION
        assert refused.value.field == ["refundId"]


def test_final_refunds_go_nowhere_and_granted_ones_never_back_to_the_store() -> None:
    for final in FINAL_REFUND:
        assert not any(can_move_refund(final, target) for target in R)
    for granted in GRANTED:
        assert not can_move_refund(granted, R.REQUESTED)
        assert not can_move_refund(granted, R.REFUSED)


def test_the_provider_reference_is_bounded_stable_and_distinct() -> None:
    longest = refund_reference(2**31 - 1, "键" * 64)
    assert len(longest) <= 64 and re.fullmatch(r"[0-9A-Za-z_\-|*@]+", longest)
    assert refund_reference(7, "a") == refund_reference(7, "a")
    made = {refund_reference(o, k) for o in (1, 2, 12) for k in ("a", "b", "cancel")}
    assert len(made) == 9


def _refund(lines: tuple[RefundLine, ...], reason: str = "少了一份") -> Refund:
    return Refund(
        id=1,
        order_id=1,
        reference=refund_reference(1, "k"),
        idempotency_key="k",
        status=R.REQUESTED,
        amount_fen=1000,
        lines=lines,
        reason=reason,
        refusal_reason=None,
        requested_by="member:3",
        decided_by=None,
        provider_refund_id=None,
        stock_returned=True,
        coupon_restored=False,
        requested_at=AT,
        updated_at=AT,
    )


def test_a_replayed_request_must_ask_for_the_same_units_and_reason() -> None:
    asked = _refund((RefundLine(1, 2), RefundLine(2, 1)))
    assert same_request(asked, [RefundLine(2, 1), RefundLine(1, 1), RefundLine(1, 1)], "少了一份")
    assert same_request(asked, None, "少了一份")  # "everything left" was frozen when asked
    assert not same_request(asked, [RefundLine(1, 2)], "少了一份")
    assert not same_request(asked, None, "别的理由")


def test_who_asked_is_told_from_the_actor() -> None:
    assert requester_of("member:3") is Requester.MEMBER
    assert requester_of("staff:1") is Requester.STAFF
    assert requester_of("system:group-failed") is Requester.SYSTEM


def test_what_the_provider_is_sent_names_the_order_and_amounts() -> None:
    paid = order()
    sent = RefundToSend.of(_refund((RefundLine(1, 1),)), paid)
    assert dict(sent.payload) == {
        "refundId": 1,
        "orderId": paid.id,
        "outTradeNo": f"{paid.placed_at:%Y%m%d}{paid.id:06d}",
        "refundFen": 1000,
        "totalFen": paid.total_fen,
        "reason": "少了一份",
    }
