"""The order repository: orders and their lines, payments, refunds (checkout's reads are in
``checkout``, refund rows in ``refunds``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.checkout import read_candidates
from dinegraph.db.mappers import Prefixed
from dinegraph.db.members import member_of
from dinegraph.db.refunds import SqlRefundRows
from dinegraph.db.tables import (
    members,
    order_lines,
    orders,
    payments,
    store_loads,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.members import Member
from dinegraph.domain.orders import DeliveryAddress, Order, OrderLine, OrderSource, OrderStatus
from dinegraph.domain.quotes import Candidates
from dinegraph.domain.refunds import RefundLine


def order_of(row: Any, lines: Iterable[OrderLine] = ()) -> Order:
    address = None
    if row.address_lat is not None:
        address = DeliveryAddress(
            GeoPoint(row.address_lat, row.address_lng),
            row.address_detail,
            row.contact_name,
            row.contact_phone,
        )
    return Order(
        id=row.id,
        member_id=row.member_id,
        store_id=row.store_id,
        channel=Channel(row.channel),
        status=OrderStatus(row.status),
        idempotency_key=row.idempotency_key,
        fingerprint=row.fingerprint,
        subtotal_fen=row.subtotal_fen,
        tier_discount_fen=row.tier_discount_fen,
        coupon_discount_fen=row.coupon_discount_fen,
        delivery_fee_fen=row.delivery_fee_fen,
        delivery_discount_fen=row.delivery_discount_fen,
        packaging_fee_fen=row.packaging_fee_fen,
        total_fen=row.total_fen,
        refunded_fen=row.refunded_fen,
        coupon_id=row.coupon_id,
        address=address,
        distance_m=row.distance_m,
        note=row.note,
        pickup_code=row.pickup_code,
        placed_at=row.placed_at,
        pay_by=row.pay_by,
        paid_at=row.paid_at,
        completed_at=row.completed_at,
        version=row.version,
        lines=tuple(lines),
        campaign_id=row.campaign_id,
        group_id=row.group_id,
        bargain_id=row.bargain_id,
        source=OrderSource(row.source),
        external_id=row.external_id,
        table_no=row.table_no,
        pickup_at=row.pickup_at,
        cancel_reason=row.cancel_reason,
    )


def line_of(row: Any) -> OrderLine:
    return OrderLine(
        line_no=row.line_no,
        sku_id=row.sku_id,
        product_id=row.product_id,
        name=row.name,
        specs=dict(row.specs),
        unit_price_fen=row.unit_price_fen,
        quantity=row.quantity,
        refunded_quantity=row.refunded_quantity,
        note=row.note,
    )


_PLACING = (
    sa.select(*(c.label(f"m_{c.name}") for c in members.c), orders.c.id.label("order_id"))
    .select_from(members)
    .outerjoin(
        orders,
        (orders.c.member_id == members.c.id) & (orders.c.idempotency_key == sa.bindparam("key")),
    )
    .where(members.c.id == sa.bindparam("member_id"))
)


@cache
def _add_order(dialect: str, partner: bool = False) -> sa.Insert:
    """The order's row, unless its member used the key, or a partner's order has its
    (source, external id) (waits for a racing writer of it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    key = ["source", "external_id"] if partner else ["member_id", "idempotency_key"]
    statement: sa.Insert = (
        insert(orders).on_conflict_do_nothing(index_elements=key).returning(orders.c.id)
    )
    return statement


_ADD_LINES = order_lines.insert()


class SqlOrderRepository(SqlRefundRows):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    async def candidates(self, sku_ids: Sequence[int], store_id: int | None) -> Candidates:
        return await read_candidates(self._conn, sku_ids, store_id)

    async def add(self, order: Order) -> int | None:
        """Insert the order; None when the member's idempotency key is taken (waits for a
        racing writer of the same key, so its outcome is seen)."""
        address = order.address
        values: dict[str, object] = {
            "member_id": order.member_id,
            "store_id": order.store_id,
            "channel": order.channel.value,
            "status": order.status.value,
            "idempotency_key": order.idempotency_key,
            "fingerprint": order.fingerprint,
            "subtotal_fen": order.subtotal_fen,
            "tier_discount_fen": order.tier_discount_fen,
            "coupon_discount_fen": order.coupon_discount_fen,
            "delivery_fee_fen": order.delivery_fee_fen,
            "delivery_discount_fen": order.delivery_discount_fen,
            "packaging_fee_fen": order.packaging_fee_fen,
            "total_fen": order.total_fen,
            "refunded_fen": 0,
            "coupon_id": order.coupon_id,
            "address_lat": address.location.lat if address else None,
            "address_lng": address.location.lng if address else None,
            "address_detail": address.detail if address else None,
            "contact_name": address.contact_name if address else None,
            "contact_phone": address.contact_phone if address else None,
            "distance_m": order.distance_m,
            "note": order.note,
            "placed_at": order.placed_at,
            "pay_by": order.pay_by,
            "updated_at": order.placed_at,
            "version": 1,
            "campaign_id": order.campaign_id,
            "group_id": order.group_id,
            "bargain_id": order.bargain_id,
            "source": order.source.value,
            "external_id": order.external_id,
            "table_no": order.table_no,
            "pickup_at": order.pickup_at,
            "pickup_code": order.pickup_code,
            "paid_at": order.paid_at,
        }
        statement = _add_order(self._conn.dialect.name, order.external_id is not None)
        order_id = await self._conn.scalar(statement, values)
        return int(order_id) if order_id is not None else None

    async def add_lines(self, order_id: int, lines: Sequence[OrderLine]) -> None:
        await self._conn.execute(
            _ADD_LINES,
            [
                {
                    "order_id": order_id,
                    "line_no": line.line_no,
                    "sku_id": line.sku_id,
                    "product_id": line.product_id,
                    "name": line.name,
                    "specs": dict(line.specs),
                    "unit_price_fen": line.unit_price_fen,
                    "quantity": line.quantity,
                    "refunded_quantity": 0,
                    "note": line.note,
                }
                for line in lines
            ],
        )

    async def by_key(self, member_id: int, key: str) -> Order | None:
        return await self._one(
            (orders.c.member_id == member_id) & (orders.c.idempotency_key == key)
        )

    async def by_external(self, source: str, external_id: str) -> Order | None:
        return await self._one((orders.c.source == source) & (orders.c.external_id == external_id))

    async def keys_of_campaign(self, campaign_id: int) -> frozenset[tuple[int, str]]:
        rows = await self._conn.execute(
            sa.select(orders.c.member_id, orders.c.idempotency_key).where(
                orders.c.campaign_id == campaign_id
            )
        )
        return frozenset((int(r.member_id), str(r.idempotency_key)) for r in rows)

    async def get(self, order_id: int) -> Order | None:
        return await self._one(orders.c.id == order_id)

    async def placing(self, member_id: int, key: str) -> tuple[Member | None, Order | None]:
        row = (await self._conn.execute(_PLACING, {"member_id": member_id, "key": key})).first()
        if row is None:
            return None, None
        member = member_of(Prefixed(row, "m_"))
        return member, (await self.get(row.order_id) if row.order_id is not None else None)

    async def in_group(self, group_id: int) -> list[Order]:
        return await self._many(orders.c.group_id == group_id)

    async def _one(self, where: sa.ColumnElement[bool]) -> Order | None:
        found = await self._many(where)
        return found[0] if found else None

    async def _many(self, where: sa.ColumnElement[bool]) -> list[Order]:
        """The orders matching ``where`` with their lines: two statements, however many."""
        rows = (
            await self._conn.execute(sa.select(orders).where(where).order_by(orders.c.id))
        ).all()
        if not rows:
            return []
        lines: dict[int, list[OrderLine]] = {row.id: [] for row in rows}
        for r in await self._conn.execute(
            sa.select(order_lines)
            .where(order_lines.c.order_id.in_(lines))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        ):
            lines[r.order_id].append(line_of(r))
        return [order_of(row, lines[row.id]) for row in rows]

    async def change_status(
        self,
        order_id: int,
        current: OrderStatus,
        target: OrderStatus,
        *,
        at: datetime,
        **changes: object,
    ) -> int | None:
        """Move the order from ``current`` to ``target``; None when it is no longer in
        ``current`` (another request moved it first). Returns the new version."""
        version = await self._conn.scalar(
            orders.update()
            .where(orders.c.id == order_id, orders.c.status == current.value)
            .values(
                status=target.value,
                updated_at=at,
                version=orders.c.version + 1,
                **changes,
            )
            .returning(orders.c.version)
        )
        return int(version) if version is not None else None

    async def expired_unpaid(self, now: datetime, limit: int) -> list[int]:
        """Unpaid orders past their deadline. On PostgreSQL the rows are locked, skipping
        those another process is cancelling, so each is claimed by one sweep."""
        query = (
            sa.select(orders.c.id)
            .where(orders.c.status == OrderStatus.PENDING_PAYMENT.value, orders.c.pay_by <= now)
            .order_by(orders.c.pay_by)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return [int(i) for i in (await self._conn.scalars(query)).all()]

    async def add_payment(
        self, *, order_id: int, provider: str, transaction_id: str, amount_fen: int, at: datetime
    ) -> bool:
        """Record a payment; False when this transaction was recorded before."""
        statement = (
            self._insert(payments)
            .values(
                order_id=order_id,
                provider=provider,
                transaction_id=transaction_id,
                amount_fen=amount_fen,
                paid_at=at,
            )
            .on_conflict_do_nothing(index_elements=["provider", "transaction_id"])
            .returning(payments.c.id)
        )
        return await self._conn.scalar(statement) is not None

    async def payment_order(self, provider: str, transaction_id: str) -> int | None:
        found = await self._conn.scalar(
            sa.select(payments.c.order_id).where(
                payments.c.provider == provider, payments.c.transaction_id == transaction_id
            )
        )
        return int(found) if found is not None else None

    async def apply_refund(
        self,
        order_id: int,
        version: int,
        amount_fen: int,
        lines: Sequence[RefundLine],
        at: datetime,
    ) -> int | None:
        """Add a refund to the order if it is still at ``version``; the new version."""
        new_version = await self._conn.scalar(
            orders.update()
            .where(orders.c.id == order_id, orders.c.version == version)
            .values(
                refunded_fen=orders.c.refunded_fen + amount_fen,
                updated_at=at,
                version=orders.c.version + 1,
            )
            .returning(orders.c.version)
        )
        if new_version is None:
            return None
        for line in lines:
            await self._conn.execute(
                order_lines.update()
                .where(order_lines.c.order_id == order_id, order_lines.c.line_no == line.line_no)
                .values(refunded_quantity=order_lines.c.refunded_quantity + line.quantity)
            )
        return int(new_version)

    async def touch(self, order_id: int, at: datetime, *, version: int | None = None) -> int | None:
        """A new version of the order (its refunds changed), if it is still at ``version``
        when one is given; None otherwise."""
        statement = orders.update().where(orders.c.id == order_id)
        if version is not None:
            statement = statement.where(orders.c.version == version)
        new_version = await self._conn.scalar(
            statement.values(updated_at=at, version=orders.c.version + 1).returning(
                orders.c.version
            )
        )
        return int(new_version) if new_version is not None else None

    async def set_points_earned(self, order_id: int, points: int) -> None:
        await self._conn.execute(
            orders.update().where(orders.c.id == order_id).values(points_earned=points)
        )

    async def points_earned(self, order_id: int) -> int:
        found = await self._conn.scalar(
            sa.select(orders.c.points_earned).where(orders.c.id == order_id)
        )
        return int(found or 0)

    async def change_load(self, store_id: int, delta: int) -> None:
        """Move a store's kitchen queue by ``delta`` (the row is made on first use)."""
        statement = (
            self._insert(store_loads)
            .values(store_id=store_id, pending_orders=max(delta, 0))
            .on_conflict_do_update(
                index_elements=["store_id"],
                set_={"pending_orders": store_loads.c.pending_orders + delta},
            )
        )
        await self._conn.execute(statement)
