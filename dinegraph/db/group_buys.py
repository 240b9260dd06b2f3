"""Group-buy rows: groups, their seats and the conditional writes that fill and free them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import (
    group_buys,
    group_members,
    members,
)
from dinegraph.domain.group_buys import GroupBuy, GroupSeat, GroupStatus, SeatStatus


def group_of(row: Any) -> GroupBuy:
    return GroupBuy(
        id=row.id,
        campaign_id=row.campaign_id,
        leader_id=row.leader_id,
        store_id=row.store_id,
        sku_id=row.sku_id,
        size=row.size,
        seats_taken=row.seats_taken,
        seats_paid=row.seats_paid,
        status=GroupStatus(row.status),
        expires_at=row.expires_at,
        created_at=row.created_at,
        version=row.version,
    )


def _seat(row: Any) -> GroupSeat:
    return GroupSeat(
        group_id=row.group_id,
        member_id=row.member_id,
        order_id=row.order_id,
        status=SeatStatus(row.status),
        joined_at=row.joined_at,
        nickname=row.nickname,
    )


class SqlGroupBuyRepository:
    """Groups of a group-buy campaign and their seats."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    async def add_group(
        self,
        *,
        campaign_id: int,
        leader_id: int,
        store_id: int,
        sku_id: int,
        size: int,
        expires_at: datetime,
        at: datetime,
    ) -> GroupBuy:
        row = (
            await self._conn.execute(
                group_buys.insert()
                .values(
                    campaign_id=campaign_id,
                    leader_id=leader_id,
                    store_id=store_id,
                    sku_id=sku_id,
                    size=size,
                    seats_taken=1,
                    seats_paid=0,
                    status=GroupStatus.OPEN.value,
                    expires_at=expires_at,
                    version=1,
                    created_at=at,
                )
                .returning(*group_buys.c)
            )
        ).one()
        return group_of(row)

    async def get_group(self, group_id: int) -> GroupBuy | None:
        row = (
            await self._conn.execute(sa.select(group_buys).where(group_buys.c.id == group_id))
        ).first()
        return group_of(row) if row else None

    async def cut_groups_short(self, campaign_id: int, at: datetime) -> None:
        await self._conn.execute(
            group_buys.update()
            .where(
                group_buys.c.campaign_id == campaign_id,
                group_buys.c.status == GroupStatus.OPEN.value,
                group_buys.c.expires_at > at,
            )
            .values(expires_at=at, version=group_buys.c.version + 1)
        )

    async def _change_group(self, group_id: int, *where: Any, **values: Any) -> GroupBuy | None:
        row = (
            await self._conn.execute(
                group_buys.update()
                .where(group_buys.c.id == group_id, *where)
                .values(version=group_buys.c.version + 1, **values)
                .returning(*group_buys.c)
            )
        ).first()
        return group_of(row) if row else None

    async def take_seat(self, group_id: int, now: datetime) -> GroupBuy | None:
        return await self._change_group(
            group_id,
            group_buys.c.status == GroupStatus.OPEN.value,
            group_buys.c.seats_taken < group_buys.c.size,
            group_buys.c.expires_at > now,
            seats_taken=group_buys.c.seats_taken + 1,
        )

    async def add_seat(self, group_id: int, member_id: int, order_id: int, at: datetime) -> bool:
        statement = (
            self._insert(group_members)
            .values(
                group_id=group_id,
                member_id=member_id,
                order_id=order_id,
                status=SeatStatus.HELD.value,
                joined_at=at,
            )
            .on_conflict_do_nothing(index_elements=["group_id", "member_id"])
        )
        return (await self._conn.execute(statement)).rowcount == 1

    def _seats_query(self) -> sa.Select[Any]:
        return sa.select(group_members, members.c.nickname).join(
            members, members.c.id == group_members.c.member_id
        )

    async def seat(self, group_id: int, member_id: int) -> GroupSeat | None:
        row = (
            await self._conn.execute(
                self._seats_query().where(
                    group_members.c.group_id == group_id, group_members.c.member_id == member_id
                )
            )
        ).first()
        return _seat(row) if row else None

    async def seats(self, group_id: int) -> list[GroupSeat]:
        rows = await self._conn.execute(
            self._seats_query()
            .where(group_members.c.group_id == group_id)
            .order_by(group_members.c.joined_at, group_members.c.member_id)
        )
        return [_seat(r) for r in rows]

    async def _move_seat(
        self, group_id: int, member_id: int, current: SeatStatus, target: SeatStatus
    ) -> bool:
        result = await self._conn.execute(
            group_members.update()
            .where(
                group_members.c.group_id == group_id,
                group_members.c.member_id == member_id,
                group_members.c.status == current.value,
            )
            .values(status=target.value)
        )
        return result.rowcount == 1

    async def release_seat(self, group_id: int, member_id: int) -> GroupBuy | None:
        if not await self._move_seat(group_id, member_id, SeatStatus.HELD, SeatStatus.RELEASED):
            return None
        return await self._change_group(
            group_id,
            group_buys.c.status == GroupStatus.OPEN.value,
            seats_taken=group_buys.c.seats_taken - 1,
        )

    async def pay_seat(self, group_id: int, member_id: int, now: datetime) -> GroupBuy | None:
        # The group row first: payment and the expiry sweep meet there, in one order.
        group = await self._change_group(
            group_id,
            group_buys.c.status == GroupStatus.OPEN.value,
            group_buys.c.expires_at > now,
            seats_paid=group_buys.c.seats_paid + 1,
        )
        if group is None:
            return None
        if not await self._move_seat(group_id, member_id, SeatStatus.HELD, SeatStatus.PAID):
            raise RuntimeError("a paid group order without a held seat")
        return group

    async def set_group_status(
        self, group_id: int, current: GroupStatus, target: GroupStatus
    ) -> GroupBuy | None:
        return await self._change_group(
            group_id, group_buys.c.status == current.value, status=target.value
        )

    async def expired_groups(self, now: datetime, limit: int) -> list[int]:
        """OPEN groups past their time. On PostgreSQL the rows are locked, skipping those
        another process is failing, so each is claimed by one sweep."""
        query = (
            sa.select(group_buys.c.id)
            .where(
                group_buys.c.status == GroupStatus.OPEN.value,
                group_buys.c.expires_at <= now,
            )
            .order_by(group_buys.c.expires_at)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return [int(i) for i in (await self._conn.scalars(query)).all()]
