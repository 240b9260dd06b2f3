"""Refund reads: an order's refunds, refunds by id, a store's refunds by status.

``RefundReads`` is the refund part of ``db.queries.ReadQueries`` (which inherits it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa

from dinegraph.db.catalog_reads import BatchReads
from dinegraph.db.refunds import refund_of
from dinegraph.db.tables import orders, refunds
from dinegraph.domain.refunds import Refund, RefundStatus


class RefundReads(BatchReads):
    """Every method issues exactly one statement."""

    async def refunds_by_ids(self, ids: Sequence[int]) -> list[Refund]:
        rows = await self._rows(sa.select(refunds).where(refunds.c.id.in_(ids)))
        return [refund_of(r) for r in rows]

    async def refunds_of_orders(self, order_ids: Sequence[int]) -> dict[int, list[Refund]]:
        """Each order's refunds, oldest first."""
        rows = await self._rows(
            sa.select(refunds).where(refunds.c.order_id.in_(order_ids)).order_by(refunds.c.id)
        )
        found: dict[int, list[Refund]] = defaultdict(list)
        for r in rows:
            found[r.order_id].append(refund_of(r))
        return dict(found)

    async def store_refunds(
        self,
        store_id: int,
        *,
        statuses: Sequence[RefundStatus] | None,
        before_id: int | None,
        limit: int,
    ) -> list[Refund]:
        """The refunds of a store's orders, newest first, keyset-paged by id."""
        query = (
            sa.select(refunds)
            .join(orders, orders.c.id == refunds.c.order_id)
            .where(orders.c.store_id == store_id)
        )
        if statuses:
            query = query.where(refunds.c.status.in_([s.value for s in statuses]))
        if before_id is not None:
            query = query.where(refunds.c.id < before_id)
        rows = await self._rows(query.order_by(refunds.c.id.desc()).limit(limit))
        return [refund_of(r) for r in rows]
