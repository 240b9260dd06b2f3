"""The campaign repository: campaigns, their quotas, groups, bargains and invitations.

Every limit (quota, seats, helps, entries per member, helps per day) is a conditional
UPDATE or upsert, so two requests racing for the last unit or seat cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.bargains import SqlBargainRepository
from dinegraph.db.campaign_entries import SqlEntryRepository
from dinegraph.db.group_buys import SqlGroupBuyRepository
from dinegraph.db.mappers import Prefixed
from dinegraph.db.tables import (
    bargain_helps,
    bargains,
    campaign_items,
    campaign_quotas,
    campaigns,
    group_buys,
    invitations,
    orders,
)
from dinegraph.domain.campaigns import (
    BargainRules,
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignReport,
    CampaignSpec,
    GroupRules,
)
from dinegraph.domain.catalog import Channel
from dinegraph.domain.group_buys import GroupStatus
from dinegraph.domain.stamps import CAMPAIGNS, quota_stamp
from dinegraph.domain.supplies import Taken


def campaign_of(row: Any, items: Iterable[Any]) -> Campaign:
    kind = CampaignKind(row.kind)
    group = GroupRules(row.group_size, row.group_hours) if row.group_size is not None else None
    bargain = (
        BargainRules(row.bargain_helps, row.bargain_hours, row.daily_help_cap)
        if row.bargain_helps is not None
        else None
    )
    spec = CampaignSpec(
        kind=kind,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        items=tuple(CampaignItem(i.sku_id, i.price_fen) for i in items),
        store_ids=tuple(int(s) for s in row.store_ids),
        channels=frozenset(Channel(c) for c in row.channels),
        quota_per_store=row.quota_per_store,
        per_member_limit=row.per_member_limit,
        new_members_only=row.new_members_only,
        group=group,
        bargain=bargain,
    )
    return Campaign(
        id=row.id, spec=spec, ended_at=row.ended_at, closed=row.closed, created_at=row.created_at
    )


async def load_campaigns(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> list[Campaign]:
    rows = (await conn.execute(sa.select(campaigns).where(where).order_by(campaigns.c.id))).all()
    if not rows:
        return []
    items: dict[int, list[Any]] = {}
    item_rows = await conn.execute(
        sa.select(campaign_items)
        .where(campaign_items.c.campaign_id.in_([r.id for r in rows]))
        .order_by(campaign_items.c.campaign_id, campaign_items.c.position)
    )
    for item in item_rows:
        items.setdefault(item.campaign_id, []).append(item)
    return [campaign_of(r, items.get(r.id, [])) for r in rows]


# One campaign and its items in one statement (a row per item), for the orders it takes.
_CAMPAIGN_WITH_ITEMS = (
    sa.select(campaigns, *(c.label(f"i_{c.name}") for c in campaign_items.c))
    .select_from(campaigns)
    .outerjoin(campaign_items, campaign_items.c.campaign_id == campaigns.c.id)
    .where(campaigns.c.id == sa.bindparam("id"))
    .order_by(campaign_items.c.position)
)


_QUOTA_LEFT = sa.select(campaign_quotas.c.remaining).where(
    campaign_quotas.c.campaign_id == sa.bindparam("campaign_id"),
    campaign_quotas.c.store_id == sa.bindparam("store_id"),
    campaign_quotas.c.sku_id == sa.bindparam("sku_id"),
)


class SqlCampaignRepository(SqlGroupBuyRepository, SqlBargainRepository, SqlEntryRepository):
    """Campaigns, their quotas and reports; with groups, bargains and entries, what the unit of
    work binds as ``campaigns``."""

    def __init__(self, conn: AsyncConnection, moved: set[str] | None = None) -> None:
        super().__init__(conn)
        self._moved = moved if moved is not None else set()  # stamps its writes move

    # --- campaigns ----------------------------------------------------------------

    async def add(self, spec: CampaignSpec, *, created_by: str, at: datetime) -> Campaign:
        group, bargain = spec.group, spec.bargain
        new_id = await self._conn.scalar(
            campaigns.insert()
            .values(
                kind=spec.kind.value,
                name=spec.name,
                starts_at=spec.starts_at,
                ends_at=spec.ends_at,
                store_ids=list(spec.store_ids),
                channels=sorted(c.value for c in spec.channels),
                quota_per_store=spec.quota_per_store,
                per_member_limit=spec.per_member_limit,
                new_members_only=spec.new_members_only,
                group_size=group.size if group else None,
                group_hours=group.hours if group else None,
                bargain_helps=bargain.helps if bargain else None,
                bargain_hours=bargain.hours if bargain else None,
                daily_help_cap=bargain.daily_help_cap if bargain else None,
                closed=False,
                created_by=created_by,
                created_at=at,
            )
            .returning(campaigns.c.id)
        )
        await self._conn.execute(
            campaign_items.insert(),
            [
                {"campaign_id": new_id, "sku_id": i.sku_id, "position": n, "price_fen": i.price_fen}
                for n, i in enumerate(spec.items)
            ],
        )
        self._moved.add(CAMPAIGNS)
        return Campaign(id=int(new_id), spec=spec, ended_at=None, closed=False, created_at=at)

    async def get(self, campaign_id: int) -> Campaign | None:
        rows = (await self._conn.execute(_CAMPAIGN_WITH_ITEMS, {"id": campaign_id})).all()
        if not rows:
            return None
        items = [Prefixed(r, "i_") for r in rows if r.i_sku_id is not None]
        return campaign_of(rows[0], items)

    async def end(self, campaign_id: int, at: datetime) -> bool:
        result = await self._conn.execute(
            campaigns.update()
            .where(
                campaigns.c.id == campaign_id,
                campaigns.c.ended_at.is_(None),
                campaigns.c.ends_at > at,
            )
            .values(ended_at=at)
        )
        if result.rowcount == 1:
            self._moved.add(CAMPAIGNS)
        return result.rowcount == 1

    async def to_close(self, now: datetime, limit: int) -> list[int]:
        query = (
            sa.select(campaigns.c.id)
            .where(
                campaigns.c.closed.is_(False),
                (campaigns.c.ends_at <= now) | (campaigns.c.ended_at <= now),
            )
            .order_by(campaigns.c.id)
            .limit(limit)
        )
        return [int(i) for i in (await self._conn.scalars(query)).all()]

    async def close(self, campaign_id: int) -> list[tuple[int, int, int]] | None:
        claimed = await self._conn.execute(
            campaigns.update()
            .where(campaigns.c.id == campaign_id, campaigns.c.closed.is_(False))
            .values(closed=True)
        )
        if claimed.rowcount != 1:
            return None  # another sweep closed it
        self._moved.add(CAMPAIGNS)  # the quotas' stamps too: a quota is read with its campaign
        left = (
            await self._conn.execute(
                campaign_quotas.update()
                .where(
                    campaign_quotas.c.campaign_id == campaign_id,
                    campaign_quotas.c.closed.is_(False),
                )
                .values(closed=True)
                .returning(
                    campaign_quotas.c.store_id,
                    campaign_quotas.c.sku_id,
                    campaign_quotas.c.remaining,
                )
            )
        ).all()
        await self._conn.execute(
            campaign_quotas.update()
            .where(campaign_quotas.c.campaign_id == campaign_id)
            .values(remaining=0)
        )
        return [(r.store_id, r.sku_id, r.remaining) for r in left]

    # --- quotas and entries -------------------------------------------------------

    async def add_quotas(self, campaign_id: int, lines: Iterable[tuple[int, int, int]]) -> None:
        rows = [
            {
                "campaign_id": campaign_id,
                "store_id": store_id,
                "sku_id": sku_id,
                "quota": units,
                "remaining": units,
                "closed": False,
            }
            for store_id, sku_id, units in lines
        ]
        if rows:
            await self._conn.execute(campaign_quotas.insert(), rows)
            self._moved.add(CAMPAIGNS)

    def _quota(self, campaign_id: int, store_id: int, sku_id: int) -> sa.ColumnElement[bool]:
        return sa.and_(
            campaign_quotas.c.campaign_id == campaign_id,
            campaign_quotas.c.store_id == store_id,
            campaign_quotas.c.sku_id == sku_id,
        )

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None:
        left = await self._conn.scalar(
            _QUOTA_LEFT, {"campaign_id": campaign_id, "store_id": store_id, "sku_id": sku_id}
        )
        return int(left) if left is not None else None

    async def take_quota(
        self, campaign_id: int, store_id: int, sku_id: int, units: int
    ) -> Taken | None:
        left = await self._conn.scalar(
            campaign_quotas.update()
            .where(
                self._quota(campaign_id, store_id, sku_id),
                campaign_quotas.c.closed.is_(False),
                campaign_quotas.c.remaining >= units,
            )
            .values(remaining=campaign_quotas.c.remaining - units)
            .returning(campaign_quotas.c.remaining)
        )
        if left is None:
            return None
        self._moved.add(quota_stamp(store_id))
        return Taken(int(left))

    async def return_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        result = await self._conn.execute(
            campaign_quotas.update()
            .where(self._quota(campaign_id, store_id, sku_id), campaign_quotas.c.closed.is_(False))
            .values(remaining=campaign_quotas.c.remaining + units)
        )
        if result.rowcount == 1:
            self._moved.add(quota_stamp(store_id))
        return result.rowcount == 1

    async def report(self, campaign_id: int) -> CampaignReport:
        conn = self._conn
        in_campaign = orders.c.campaign_id == campaign_id
        paid = in_campaign & orders.c.paid_at.is_not(None)
        order_row = (
            await conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(orders.c.total_fen - orders.c.refunded_fen), 0),
                ).where(paid)
            )
        ).one()
        group_counts = {
            status: count
            for status, count in await conn.execute(
                sa.select(group_buys.c.status, sa.func.count())
                .where(group_buys.c.campaign_id == campaign_id)
                .group_by(group_buys.c.status)
            )
        }
        bargain_ids = sa.select(bargains.c.id).where(bargains.c.campaign_id == campaign_id)
        started = await conn.scalar(
            sa.select(sa.func.count()).where(bargains.c.campaign_id == campaign_id)
        )
        helps = await conn.scalar(
            sa.select(sa.func.count()).where(bargain_helps.c.bargain_id.in_(bargain_ids))
        )
        people = sa.union(
            sa.select(orders.c.member_id.label("m")).where(in_campaign),
            sa.select(bargains.c.member_id).where(bargains.c.campaign_id == campaign_id),
            sa.select(bargain_helps.c.helper_id).where(bargain_helps.c.bargain_id.in_(bargain_ids)),
        ).subquery()
        participants = await conn.scalar(sa.select(sa.func.count()).select_from(people))
        invited = (
            await conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count(sa.distinct(invitations.c.invitee_id)).filter(
                        invitations.c.invitee_was_new.is_(True)
                    ),
                ).where(invitations.c.campaign_id == campaign_id)
            )
        ).one()
        return CampaignReport(
            campaign_id=campaign_id,
            participants=int(participants or 0),
            groups_formed=sum(group_counts.values()),
            groups_succeeded=group_counts.get(GroupStatus.SUCCEEDED.value, 0),
            groups_failed=group_counts.get(GroupStatus.FAILED.value, 0),
            bargains_started=int(started or 0),
            bargains_helped=int(helps or 0),
            orders=int(order_row[0]),
            gmv_fen=int(order_row[1]),
            invitations=int(invited[0]),
            new_members=int(invited[1]),
        )
