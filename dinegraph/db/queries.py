"""Read side: batched queries behind the DataLoaders. Each call is one SQL statement.

``ReadQueries`` implements the domain's read port (``domain.reads.ReadModels``); its catalog
and menu reads live in ``db.catalog_reads`` (``CatalogReads``, which it inherits)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from dinegraph.db import mappers
from dinegraph.db.bargains import bargain_of
from dinegraph.db.campaigns import SqlCampaignRepository, load_campaigns
from dinegraph.db.catalog_reads import CatalogReads
from dinegraph.db.coupons import coupon_of, job_of, segment_filter, template_of
from dinegraph.db.delivery import delivery_of
from dinegraph.db.group_buys import group_of
from dinegraph.db.members import address_of, member_of
from dinegraph.db.orders import line_of, order_of
from dinegraph.db.refund_reads import RefundReads
from dinegraph.db.stock import movement_of
from dinegraph.db.tables import (
    bargains,
    campaign_quotas,
    campaigns,
    coupon_issue_jobs,
    coupon_templates,
    coupons,
    courier_positions,
    deliveries,
    group_buys,
    member_addresses,
    member_spend,
    members,
    order_lines,
    orders,
    points_ledger,
    products,
    skus,
    stock_ledger,
    stock_levels,
    stock_movements,
    store_loads,
)
from dinegraph.domain.bargains import Bargain
from dinegraph.domain.campaign_quotas import QuotaRow
from dinegraph.domain.campaigns import Campaign, CampaignKind
from dinegraph.domain.coupons import (
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    StoredAs,
    stored_as,
)
from dinegraph.domain.delivery import IN_PROGRESS, Delivery
from dinegraph.domain.group_buys import GroupBuy, GroupSeat
from dinegraph.domain.members import Address, Member
from dinegraph.domain.orders import Order, OrderLine
from dinegraph.domain.reads import LedgerRow, PointsRow, PositionRow, StockLevelRow, StockRow
from dinegraph.domain.stock import Movement


def _reads_as(stored: StoredAs, now: datetime) -> sa.ColumnElement[bool]:
    """Coupons whose status reads as the one ``stored`` was made for (``Coupon.status_at``)."""
    status, valid_until = coupons.c.status, coupons.c.valid_until
    clauses: list[sa.ColumnElement[bool]] = []
    if stored.as_is:
        clauses.append(status.in_([s.value for s in stored.as_is]))
    if stored.while_valid:
        clauses.append(status.in_([s.value for s in stored.while_valid]) & (valid_until > now))
    if stored.once_lapsed:
        clauses.append(status.in_([s.value for s in stored.once_lapsed]) & (valid_until <= now))
    return sa.or_(sa.false(), *clauses)


class ReadQueries(CatalogReads, RefundReads):
    """Batch reads for one request; every method issues exactly one statement.

    Implements ``domain.reads.ReadModels``.
    """

    async def stock_rows(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], StockRow]:
        rows = await self._rows(
            sa.select(stock_levels).where(
                sa.tuple_(stock_levels.c.store_id, stock_levels.c.sku_id).in_(pairs)
            )
        )
        return {
            (r.store_id, r.sku_id): StockRow(
                store_id=r.store_id,
                sku_id=r.sku_id,
                available=r.available,
                sold_out=r.sold_out,
                low_stock_threshold=r.low_stock_threshold,
                version=r.version,
            )
            for r in rows
        }

    async def ledger_rows(
        self, *, store_id: int, sku_id: int | None, before_id: int | None, limit: int
    ) -> list[LedgerRow]:
        """Ledger rows of a store (and SKU), newest first, older than ``before_id``."""
        where = [stock_ledger.c.store_id == store_id]
        if sku_id is not None:
            where.append(stock_ledger.c.sku_id == sku_id)
        if before_id is not None:
            where.append(stock_ledger.c.id < before_id)
        query = (
            sa.select(
                stock_ledger,
                stock_movements.c.source,
                stock_movements.c.reference,
                stock_movements.c.reason,
            )
            .join(stock_movements, stock_movements.c.id == stock_ledger.c.movement_id)
            .where(*where)
            .order_by(stock_ledger.c.id.desc())
            .limit(limit)
        )
        rows = await self._rows(query)
        return [
            LedgerRow(
                id=r.id,
                movement_id=r.movement_id,
                store_id=r.store_id,
                sku_id=r.sku_id,
                kind=r.kind,
                source=r.source,
                reference=r.reference,
                reason=r.reason,
                delta=r.delta,
                balance_after=r.balance_after,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def movements_by_ids(self, ids: Sequence[int]) -> list[Movement]:
        rows = await self._rows(sa.select(stock_movements).where(stock_movements.c.id.in_(ids)))
        return [movement_of(r) for r in rows]

    async def store_stock(
        self, store_id: int, sku_ids: Sequence[int] | None
    ) -> list[StockLevelRow]:
        """Stock of a store's tracked SKUs and made-to-order dishes (those that can sell out)."""
        query = (
            sa.select(
                skus,
                stock_levels.c.available,
                stock_levels.c.sold_out,
                stock_levels.c.low_stock_threshold,
                stock_levels.c.version,
            )
            .join(products, products.c.id == skus.c.product_id)
            .outerjoin(
                stock_levels,
                (stock_levels.c.sku_id == skus.c.id) & (stock_levels.c.store_id == store_id),
            )
            .order_by(skus.c.id)
        )
        if sku_ids is not None:
            query = query.where(skus.c.id.in_(sku_ids))
        else:
            query = query.where(skus.c.tracked.is_(True) | (products.c.kind == "DISH"))
        return [
            StockLevelRow(
                sku=mappers.sku(r),
                available=r.available,
                sold_out=bool(r.sold_out),
                low_stock_threshold=r.low_stock_threshold,
                version=r.version or 0,
            )
            for r in await self._rows(query)
        ]

    async def members_by_ids(self, ids: Sequence[int]) -> list[tuple[Member, int]]:
        """Members with their points balance."""
        rows = await self._rows(sa.select(members).where(members.c.id.in_(ids)))
        return [(member_of(r), int(r.points)) for r in rows]

    async def member_by_phone(self, phone: str) -> tuple[Member, int] | None:
        """A member with their points balance; the blind index compares the phone's HMAC."""
        rows = await self._rows(sa.select(members).where(members.c.phone_index == phone))
        return (member_of(rows[0]), int(rows[0].points)) if rows else None

    async def addresses_of(self, member_ids: Sequence[int]) -> dict[int, list[Address]]:
        grouped: dict[int, list[Address]] = defaultdict(list)
        query = (
            sa.select(member_addresses)
            .where(member_addresses.c.member_id.in_(member_ids))
            .order_by(member_addresses.c.is_default.desc(), member_addresses.c.id)
        )
        for row in await self._rows(query):
            grouped[row.member_id].append(address_of(row))
        return grouped

    async def points_rows(
        self, member_id: int, *, before_id: int | None, limit: int
    ) -> list[PointsRow]:
        where = [points_ledger.c.member_id == member_id]
        if before_id is not None:
            where.append(points_ledger.c.id < before_id)
        query = (
            sa.select(points_ledger).where(*where).order_by(points_ledger.c.id.desc()).limit(limit)
        )
        return [
            PointsRow(
                id=r.id,
                kind=r.kind,
                reference=r.reference,
                delta=r.delta,
                balance_after=r.balance_after,
                expires_at=r.expires_at,
                created_at=r.created_at,
            )
            for r in await self._rows(query)
        ]

    async def templates(self, *, active_only: bool) -> list[CouponTemplate]:
        query = sa.select(coupon_templates).order_by(coupon_templates.c.id)
        if active_only:
            query = query.where(coupon_templates.c.status == "ACTIVE")
        return [template_of(r) for r in await self._rows(query)]

    async def templates_by_ids(self, ids: Sequence[int]) -> list[CouponTemplate]:
        query = sa.select(coupon_templates).where(coupon_templates.c.id.in_(ids))
        return [template_of(r) for r in await self._rows(query)]

    async def coupons_by_ids(self, ids: Sequence[int]) -> list[Coupon]:
        return [
            coupon_of(r) for r in await self._rows(sa.select(coupons).where(coupons.c.id.in_(ids)))
        ]

    async def member_coupons(
        self,
        member_id: int,
        *,
        status: CouponStatus | None,
        now: datetime,
        before_id: int | None,
        limit: int,
    ) -> list[Coupon]:
        """A member's coupons, newest first, by the status they read as at ``now``."""
        where = [coupons.c.member_id == member_id]
        if status is not None:
            where.append(_reads_as(stored_as(status), now))
        if before_id is not None:
            where.append(coupons.c.id < before_id)
        query = sa.select(coupons).where(*where).order_by(coupons.c.id.desc()).limit(limit)
        return [coupon_of(r) for r in await self._rows(query)]

    async def spend_since(self, member_id: int, since: datetime) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(member_spend.c.amount_fen), 0)).where(
            member_spend.c.member_id == member_id, member_spend.c.at >= since
        )
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def issue_jobs(self, ids: Sequence[int]) -> list[IssueJob]:
        query = sa.select(coupon_issue_jobs).where(coupon_issue_jobs.c.id.in_(ids))
        return [job_of(r) for r in await self._rows(query)]

    async def members_ahead_of(self, job: IssueJob, now: datetime) -> int:
        where = segment_filter(job.segment, now=now, after_id=job.last_member_id)
        query = sa.select(sa.func.count()).select_from(members).where(*where)
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    # --- orders ---------------------------------------------------------------------

    async def orders_by_ids(self, ids: Sequence[int]) -> list[Order]:
        """Orders without their lines (``order_lines`` loads those)."""
        return [
            order_of(r) for r in await self._rows(sa.select(orders).where(orders.c.id.in_(ids)))
        ]

    async def order_lines(self, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
        rows = await self._rows(
            sa.select(order_lines)
            .where(order_lines.c.order_id.in_(order_ids))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        )
        grouped: dict[int, list[OrderLine]] = defaultdict(list)
        for r in rows:
            grouped[r.order_id].append(line_of(r))
        return grouped

    async def orders_page(
        self,
        *,
        member_id: int | None = None,
        store_id: int | None = None,
        store_ids: Sequence[int] | None = None,
        statuses: Sequence[str] | None,
        before_id: int | None,
        limit: int,
        sources: Sequence[str] | None = None,
    ) -> list[Order]:
        """A member's or a store's orders, newest first, keyset-paged by id."""
        query = sa.select(orders)
        if sources:
            query = query.where(orders.c.source.in_(sources))
        if member_id is not None:
            query = query.where(orders.c.member_id == member_id)
        if store_id is not None:
            query = query.where(orders.c.store_id == store_id)
        if store_ids is not None:
            query = query.where(orders.c.store_id.in_(store_ids))
        if statuses:
            query = query.where(orders.c.status.in_(statuses))
        if before_id is not None:
            query = query.where(orders.c.id < before_id)
        rows = await self._rows(query.order_by(orders.c.id.desc()).limit(limit))
        return [order_of(r) for r in rows]

    async def pending_orders(self, store_ids: Sequence[int]) -> dict[int, int]:
        rows = await self._rows(sa.select(store_loads).where(store_loads.c.store_id.in_(store_ids)))
        return {r.store_id: r.pending_orders for r in rows}

    async def unpaid_expired(self, now: datetime) -> bool:
        """Whether any unpaid order is past its deadline (a read before the sweep writes)."""
        rows = await self._rows(
            sa.select(orders.c.id)
            .where(orders.c.status == "PENDING_PAYMENT", orders.c.pay_by <= now)
            .limit(1)
        )
        return bool(rows)

    # --- deliveries -----------------------------------------------------------------

    async def deliveries_by_ids(self, ids: Sequence[int]) -> list[Delivery]:
        rows = await self._rows(sa.select(deliveries).where(deliveries.c.id.in_(ids)))
        return [delivery_of(r) for r in rows]

    async def latest_deliveries(self, order_ids: Sequence[int]) -> dict[int, Delivery]:
        """Each order's latest delivery (a failed trip may be followed by another)."""
        rows = await self._rows(
            sa.select(deliveries)
            .where(deliveries.c.order_id.in_(order_ids))
            .order_by(deliveries.c.id)
        )
        return {r.order_id: delivery_of(r) for r in rows}

    async def deliveries_in_progress(self, store_id: int, limit: int) -> list[Delivery]:
        rows = await self._rows(
            sa.select(deliveries)
            .where(
                deliveries.c.store_id == store_id,
                deliveries.c.status.in_([s.value for s in IN_PROGRESS]),
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        return [delivery_of(r) for r in rows]

    async def track(self, delivery_id: int, offset: int, limit: int) -> list[PositionRow]:
        """A trip's reported positions in the order they were recorded (late ones included)."""
        rows = await self._rows(
            sa.select(courier_positions)
            .where(courier_positions.c.delivery_id == delivery_id)
            .order_by(courier_positions.c.recorded_at, courier_positions.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [PositionRow(r.id, r.lat, r.lng, r.recorded_at) for r in rows]

    # --- campaigns ----------------------------------------------------------------

    async def campaigns_by_ids(self, ids: Sequence[int]) -> list[Campaign]:
        async with self._engine.connect() as conn:
            return await load_campaigns(conn, campaigns.c.id.in_(ids))

    async def campaigns_planned_over(
        self, now: datetime, kind: CampaignKind | None
    ) -> list[Campaign]:
        """Campaigns whose planned window holds ``now``; ``running_now`` says which still run."""
        where = sa.and_(campaigns.c.starts_at <= now, campaigns.c.ends_at > now)
        if kind is not None:
            where = sa.and_(where, campaigns.c.kind == kind.value)
        async with self._engine.connect() as conn:
            return await load_campaigns(conn, where)

    async def next_campaign_start(
        self, after: datetime, kind: CampaignKind | None, store_id: int | None = None
    ) -> datetime | None:
        query = sa.select(sa.func.min(campaigns.c.starts_at)).where(campaigns.c.starts_at > after)
        if kind is not None:
            query = query.where(campaigns.c.kind == kind.value)
        if store_id is not None:  # every store of a campaign has its quota rows
            at_store = sa.select(campaign_quotas.c.campaign_id).where(
                campaign_quotas.c.store_id == store_id
            )
            query = query.where(campaigns.c.id.in_(at_store))
        async with self._engine.connect() as conn:
            found: datetime | None = await conn.scalar(query)
        return found

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None:
        async with self._engine.connect() as conn:
            return await SqlCampaignRepository(conn).quota_left(campaign_id, store_id, sku_id)

    async def campaign_quotas(
        self, campaign_ids: Sequence[int], store_ids: frozenset[int] | None
    ) -> list[QuotaRow]:
        if not campaign_ids:
            return []
        query = sa.select(campaign_quotas).where(campaign_quotas.c.campaign_id.in_(campaign_ids))
        if store_ids is not None:
            query = query.where(campaign_quotas.c.store_id.in_(sorted(store_ids)))
        return [
            QuotaRow(r.campaign_id, r.store_id, r.sku_id, r.quota, r.remaining, r.closed)
            for r in await self._rows(query)
        ]

    async def groups_by_ids(self, ids: Sequence[int]) -> list[GroupBuy]:
        rows = await self._rows(sa.select(group_buys).where(group_buys.c.id.in_(ids)))
        return [group_of(r) for r in rows]

    async def group_seats(self, group_id: int) -> list[GroupSeat]:
        async with self._engine.connect() as conn:
            return await SqlCampaignRepository(conn).seats(group_id)

    async def bargains_by_ids(self, ids: Sequence[int]) -> list[Bargain]:
        rows = await self._rows(sa.select(bargains).where(bargains.c.id.in_(ids)))
        return [bargain_of(r) for r in rows]

    async def member_name(self, member_id: int) -> str | None:
        rows = await self._rows(sa.select(members.c.nickname).where(members.c.id == member_id))
        return str(rows[0][0]) if rows else None
