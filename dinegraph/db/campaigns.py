"""The campaign repository: campaigns, their quotas, groups, bargains and invitations.

Every limit (quota, seats, helps, entries per member, helps per day) is a conditional
UPDATE or upsert, so two requests racing for the last unit or seat cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import (
    bargain_helps,
    bargains,
    campaign_entries,
    campaign_items,
    campaign_quotas,
    campaigns,
    group_buys,
    group_members,
    help_days,
    invitations,
    members,
    orders,
)
from dinegraph.domain.campaigns import (
    Bargain,
    BargainRules,
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignReport,
    CampaignSpec,
    GroupBuy,
    GroupRules,
    GroupSeat,
    GroupStatus,
    InviteKind,
    SeatStatus,
)
from dinegraph.domain.catalog import Channel


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


class SqlCampaignRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

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
        return Campaign(id=int(new_id), spec=spec, ended_at=None, closed=False, created_at=at)

    async def get(self, campaign_id: int) -> Campaign | None:
        found = await load_campaigns(self._conn, campaigns.c.id == campaign_id)
        return found[0] if found else None

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

    def _quota(self, campaign_id: int, store_id: int, sku_id: int) -> sa.ColumnElement[bool]:
        return sa.and_(
            campaign_quotas.c.campaign_id == campaign_id,
            campaign_quotas.c.store_id == store_id,
            campaign_quotas.c.sku_id == sku_id,
        )

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None:
        left = await self._conn.scalar(
            sa.select(campaign_quotas.c.remaining).where(self._quota(campaign_id, store_id, sku_id))
        )
        return int(left) if left is not None else None

    async def take_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        result = await self._conn.execute(
            campaign_quotas.update()
            .where(
                self._quota(campaign_id, store_id, sku_id),
                campaign_quotas.c.closed.is_(False),
                campaign_quotas.c.remaining >= units,
            )
            .values(remaining=campaign_quotas.c.remaining - units)
        )
        return result.rowcount == 1

    async def return_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        result = await self._conn.execute(
            campaign_quotas.update()
            .where(self._quota(campaign_id, store_id, sku_id), campaign_quotas.c.closed.is_(False))
            .values(remaining=campaign_quotas.c.remaining + units)
        )
        return result.rowcount == 1

    async def enter(self, campaign_id: int, member_id: int, limit: int) -> bool:
        statement = (
            self._insert(campaign_entries)
            .values(campaign_id=campaign_id, member_id=member_id, entries=1)
            .on_conflict_do_update(
                index_elements=["campaign_id", "member_id"],
                set_={"entries": campaign_entries.c.entries + 1},
                where=campaign_entries.c.entries < limit,
            )
            .returning(campaign_entries.c.entries)
        )
        return (await self._conn.scalar(statement)) is not None

    async def leave(self, campaign_id: int, member_id: int) -> None:
        await self._conn.execute(
            campaign_entries.update()
            .where(
                campaign_entries.c.campaign_id == campaign_id,
                campaign_entries.c.member_id == member_id,
                campaign_entries.c.entries > 0,
            )
            .values(entries=campaign_entries.c.entries - 1)
        )

    # --- groups -------------------------------------------------------------------

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

    # --- bargains -----------------------------------------------------------------

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

    # --- invitations and reports --------------------------------------------------

    async def add_invitation(
        self,
        *,
        campaign_id: int,
        kind: InviteKind,
        target_id: int,
        inviter_id: int,
        invitee_id: int,
        invitee_was_new: bool,
    ) -> bool:
        statement = (
            self._insert(invitations)
            .values(
                campaign_id=campaign_id,
                kind=kind.value,
                target_id=target_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                invitee_was_new=invitee_was_new,
            )
            .on_conflict_do_nothing(index_elements=["kind", "target_id", "invitee_id"])
        )
        return (await self._conn.execute(statement)).rowcount == 1

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


def _seat(row: Any) -> GroupSeat:
    return GroupSeat(
        group_id=row.group_id,
        member_id=row.member_id,
        order_id=row.order_id,
        status=SeatStatus(row.status),
        joined_at=row.joined_at,
        nickname=row.nickname,
    )
