"""Who takes part in a campaign: members' entries (the per-member limit) and invitations."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.tables import (
    campaign_entries,
    invitations,
)
from dinegraph.domain.invites import InviteKind


@cache
def _enter(dialect: str) -> sa.Insert:
    """One more entry of the member, unless they reached the campaign's ``limit``."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: sa.Insert = (
        insert(campaign_entries)
        .on_conflict_do_update(
            index_elements=["campaign_id", "member_id"],
            set_={"entries": campaign_entries.c.entries + 1},
            where=campaign_entries.c.entries < sa.bindparam("limit", type_=sa.Integer),
        )
        .returning(campaign_entries.c.entries)
    )
    return statement


class SqlEntryRepository:
    """Members' entries into campaigns and the invitations that brought friends."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    async def enter(self, campaign_id: int, member_id: int, limit: int) -> bool:
        entered = await self._conn.scalar(
            _enter(self._conn.dialect.name),
            {"campaign_id": campaign_id, "member_id": member_id, "entries": 1, "limit": limit},
        )
        return entered is not None

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
