"""Reads of members: the viewer's own account, and members by id for head office."""

from __future__ import annotations

from dinegraph.context import Context
from dinegraph.db.queries import PointsRow
from dinegraph.domain.identity import MemberViewer, StaffRole, StaffViewer
from dinegraph.domain.members import Address, Member
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


def may_read_member(ctx: Context, member_id: int) -> bool:
    """A member reads only their own account; head office reads any."""
    viewer = ctx.viewer
    if isinstance(viewer, MemberViewer):
        return viewer.member_id == member_id
    return isinstance(viewer, StaffViewer) and viewer.role in (
        StaffRole.HQ_ADMIN,
        StaffRole.OPERATOR,
    )


async def members(ctx: Context, ids: list[int]) -> list[tuple[Member, int] | None]:
    allowed = [i for i in ids if may_read_member(ctx, i)]
    found = {m.id: (m, points) for m, points in await ctx.reads.members_by_ids(allowed)}
    return [found.get(i) for i in ids]


async def viewer_member(ctx: Context) -> tuple[Member, int] | None:
    if not isinstance(ctx.viewer, MemberViewer):
        return None
    (found,) = await members(ctx, [ctx.viewer.member_id])
    return found


async def addresses(ctx: Context, member_id: int) -> list[Address]:
    return (await ctx.reads.addresses_of([member_id])).get(member_id, [])


async def points_page(
    ctx: Context, member_id: int, *, first: int | None, after: str | None
) -> Page[PointsRow]:
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("points", after)
    rows = await ctx.reads.points_rows(member_id, before_id=before, limit=size + 1)
    return keyset_page(rows, size=size, kind="points", key=lambda r: r.id, after=before)
