"""Refund rows: a refund's request, decision and progress at the payment provider.

Every change of status is conditional on the status it leaves, so of two racing decisions
(approve and refuse, two approvals, two provider reports) one is made and the other finds
nothing to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import refunds
from dinegraph.domain.refunds import Refund, RefundLine, RefundStatus


def refund_of(row: Any) -> Refund:
    return Refund(
        id=row.id,
        order_id=row.order_id,
        reference=row.reference,
        idempotency_key=row.idempotency_key,
        status=RefundStatus(row.status),
        amount_fen=row.amount_fen,
        lines=tuple(RefundLine(int(no), int(qty)) for no, qty in row.lines),
        reason=row.reason,
        refusal_reason=row.refusal_reason,
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        provider_refund_id=row.provider_refund_id,
        stock_returned=row.stock_returned,
        coupon_restored=row.coupon_restored,
        requested_at=row.requested_at,
        updated_at=row.updated_at,
    )


def stored_lines(lines: Iterable[RefundLine]) -> list[list[int]]:
    return [[line.line_no, line.quantity] for line in lines]


class SqlRefundRows:
    """The refund methods of the order repository (``SqlOrderRepository`` has them)."""

    _conn: AsyncConnection

    async def add_refund(self, refund: Refund) -> Refund | None:
        """Record a refund (its ``id`` is ignored); None when its order has one with that
        idempotency key already (waits for a racing writer of the same key)."""
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(refunds)
            .values(
                order_id=refund.order_id,
                reference=refund.reference,
                idempotency_key=refund.idempotency_key,
                status=refund.status.value,
                amount_fen=refund.amount_fen,
                lines=stored_lines(refund.lines),
                reason=refund.reason,
                refusal_reason=refund.refusal_reason,
                requested_by=refund.requested_by,
                decided_by=refund.decided_by,
                provider_refund_id=refund.provider_refund_id,
                stock_returned=refund.stock_returned,
                coupon_restored=refund.coupon_restored,
                requested_at=refund.requested_at,
                updated_at=refund.updated_at,
            )
            .on_conflict_do_nothing(index_elements=["order_id", "idempotency_key"])
            .returning(refunds.c.id)
        )
        refund_id = await self._conn.scalar(statement)
        if refund_id is None:
            return None
        return replace(refund, id=int(refund_id))

    async def get_refund(self, refund_id: int) -> Refund | None:
        return await self._one_refund(refunds.c.id == refund_id)

    async def refund_by_key(self, order_id: int, key: str) -> Refund | None:
        return await self._one_refund(
            (refunds.c.order_id == order_id) & (refunds.c.idempotency_key == key)
        )

    async def refund_by_reference(self, reference: str) -> Refund | None:
        return await self._one_refund(refunds.c.reference == reference)

    async def open_refund_request(self, order_id: int) -> Refund | None:
        return await self._one_refund(
            (refunds.c.order_id == order_id) & (refunds.c.status == RefundStatus.REQUESTED.value)
        )

    async def submitted_refunds(
        self, updated_before: datetime, *, after_id: int, limit: int
    ) -> list[Refund]:
        rows = await self._conn.execute(
            sa.select(refunds)
            .where(
                refunds.c.status == RefundStatus.SUBMITTED.value,
                refunds.c.id > after_id,
                refunds.c.updated_at < updated_before,
            )
            .order_by(refunds.c.id)
            .limit(limit)
        )
        return [refund_of(r) for r in rows]

    async def move_refund(
        self,
        refund_id: int,
        current: Sequence[RefundStatus],
        target: RefundStatus,
        *,
        at: datetime,
        amount_fen: int | None = None,
        lines: Sequence[RefundLine] | None = None,
        stock_returned: bool | None = None,
        coupon_restored: bool | None = None,
        refusal_reason: str | None = None,
        decided_by: str | None = None,
        provider_refund_id: str | None = None,
    ) -> Refund | None:
        """Move the refund from one of ``current`` to ``target``; None when it is in none
        of them (another request decided it first)."""
        changes: dict[str, object] = {"status": target.value, "updated_at": at}
        optional: dict[str, object | None] = {
            "amount_fen": amount_fen,
            "lines": stored_lines(lines) if lines is not None else None,
            "stock_returned": stock_returned,
            "coupon_restored": coupon_restored,
            "refusal_reason": refusal_reason,
            "decided_by": decided_by,
            "provider_refund_id": provider_refund_id,
        }
        changes.update({k: v for k, v in optional.items() if v is not None})
        row = (
            await self._conn.execute(
                refunds.update()
                .where(refunds.c.id == refund_id, refunds.c.status.in_([s.value for s in current]))
                .values(**changes)
                .returning(*refunds.c)
            )
        ).first()
        return refund_of(row) if row is not None else None

    async def _one_refund(self, where: sa.ColumnElement[bool]) -> Refund | None:
        row = (await self._conn.execute(sa.select(refunds).where(where))).first()
        return refund_of(row) if row is not None else None
