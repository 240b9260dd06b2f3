"""The loser of two approvals of one refund request is told it was decided, whatever order
its reads saw the winner's commit in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import StaffRole, StaffViewer
from dinegraph.domain.orders import OrderStatus as S
from dinegraph.domain.refunds import Refund
from dinegraph.domain.refunds import RefundStatus as R
from dinegraph.domain.services.refunds import ApproveRefund, approve_refund
from tests.unit.test_order_rules import order
from tests.unit.test_refund_rules import _refund
from tests.unit.test_refusal_services import POLICY

MANAGER = StaffViewer(4, "store-manager-1", StaffRole.STORE_MANAGER, frozenset({1}))


class _Orders:
    """The request as each read finds it; the order already refunded in full."""

    def __init__(self, reads: list[Refund]) -> None:
        self.reads = reads
        self.order = replace(order(S.PAID), id=1, refunded_fen=5300)

    async def get_refund(self, refund_id: int) -> Refund:
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    async def get(self, order_id: int) -> Any:
        return self.order

    async def move_refund(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a request found decided is not decided again")


class _Coupons:
    async def get_coupon(self, coupon_id: int) -> None:
        return None


class _Unit:
    def __init__(self, orders: _Orders) -> None:
        self.orders, self.coupons = orders, _Coupons()

    async def __aenter__(self) -> _Unit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def wrote(self, *args: object) -> None:
        return None


CMD = ApproveRefund(refund_id=1, now=datetime(2026, 12, 2, 12, tzinfo=UTC), policy=POLICY)


async def test_a_request_another_approval_decided_meanwhile_is_an_invalid_transition() -> None:
    requested = _refund(())
    decided = replace(requested, status=R.APPROVED)
    unit: Any = _Unit(_Orders([requested, decided]))  # read before its commit, then after
    with pytest.raises(DomainError) as refused:
        await approve_refund(CMD, uow=unit, viewer=MANAGER)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_TRANSITION, ["refundId"])


async def test_a_request_still_open_on_an_order_with_nothing_left_says_why() -> None:
    requested = _refund(())
    unit: Any = _Unit(_Orders([requested]))
    with pytest.raises(DomainError) as refused:
        await approve_refund(CMD, uow=unit, viewer=MANAGER)
    assert refused.value.code is not ErrorCode.INVALID_TRANSITION
    assert refused.value.field == ["refundId"]
