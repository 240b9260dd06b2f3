"""Bargain rows: bargains, friends' helps and the daily cap on helping."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import (
    bargain_helps,
    bargains,
    help_days,
)
from dinegraph.domain.bargains import Bargain


def bargain_of(row: Any) -> Bargain:
    return Bargain(
        id=row.id,
        campaign_id=row.campaign_id,
        member_id=row.member_id,
        store_id=row.store_id,
        sku_id=row.sku_id,
        start_price_fen=row.start_price_fen,
        floor_price_fen=row.floor_price_fen,
        steps=tuple(int(s) for s in row.steps),
        helps_done=row.helps_done,
        order_id=row.order_id,
        expires_at=row.expires_at,
        created_at=row.created_at,
        version=row.version,
    )


class SqlBargainRepository:
    """Bargains of a bargain campaign and the helps that cut their price."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    async def add_bargain(self, bargain: Bargain) -> Bargain:
        row = (
            await self._conn.execute(
                bargains.insert()
                .values(
                    campaign_id=bargain.campaign_id,
                    member_id=bargain.member_id,
                    store_id=bargain.store_id,
                    sku_id=bargain.sku_id,
                    start_price_fen=bargain.start_price_fen,
                    floor_price_fen=bargain.floor_price_fen,
                    steps=list(bargain.steps),
                    helps_needed=len(bargain.steps),
                    helps_done=0,
                    order_id=None,
                    expires_at=bargain.expires_at,
                    version=1,
                    created_at=bargain.created_at,
                )
                .returning(*bargains.c)
            )
        ).one()
        return bargain_of(row)

    async def get_bargain(self, bargain_id: int) -> Bargain | None:
        row = (
            await self._conn.execute(sa.select(bargains).where(bargains.c.id == bargain_id))
        ).first()
        return bargain_of(row) if row else None

    async def has_helped(self, bargain_id: int, helper_id: int) -> bool:
        found = await self._conn.scalar(
            sa.select(bargain_helps.c.step_no).where(
                bargain_helps.c.bargain_id == bargain_id, bargain_helps.c.helper_id == helper_id
            )
        )
        return found is not None

    async def cut(self, bargain_id: int, now: datetime) -> Bargain | None:
        row = (
            await self._conn.execute(
                bargains.update()
                .where(
                    bargains.c.id == bargain_id,
                    bargains.c.helps_done < bargains.c.helps_needed,
                    bargains.c.order_id.is_(None),
                    bargains.c.expires_at > now,
                )
                .values(helps_done=bargains.c.helps_done + 1, version=bargains.c.version + 1)
                .returning(*bargains.c)
            )
        ).first()
        return bargain_of(row) if row else None

    async def record_help(
        self, bargain_id: int, helper_id: int, step_no: int, cut_fen: int, at: datetime
    ) -> bool:
        statement = (
            self._insert(bargain_helps)
            .values(
                bargain_id=bargain_id,
                helper_id=helper_id,
                step_no=step_no,
                cut_fen=cut_fen,
                helped_at=at,
            )
            .on_conflict_do_nothing(index_elements=["bargain_id", "helper_id"])
        )
        return (await self._conn.execute(statement)).rowcount == 1

    async def count_help(self, member_id: int, day: date, cap: int) -> bool:
        statement = (
            self._insert(help_days)
            .values(member_id=member_id, day=day, helps=1)
            .on_conflict_do_update(
                index_elements=["member_id", "day"],
                set_={"helps": help_days.c.helps + 1},
                where=help_days.c.helps < cap,
            )
            .returning(help_days.c.helps)
        )
        return (await self._conn.scalar(statement)) is not None

    async def purchase(self, bargain_id: int, order_id: int, now: datetime) -> bool:
        result = await self._conn.execute(
            bargains.update()
            .where(
                bargains.c.id == bargain_id,
                bargains.c.order_id.is_(None),
                bargains.c.expires_at > now,
            )
            .values(order_id=order_id, version=bargains.c.version + 1)
        )
        return result.rowcount == 1

    async def reopen(self, bargain_id: int, order_id: int) -> None:
        await self._conn.execute(
            bargains.update()
            .where(bargains.c.id == bargain_id, bargains.c.order_id == order_id)
            .values(order_id=None, version=bargains.c.version + 1)
        )
