"""Reads of members: the viewer's own account, and members by id for head office."""

from __future__ import annotations

from dinegraph.context import Context
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, can_find_member, can_read_member, require_staff
from dinegraph.domain.members import Address, Member, check_phone
from dinegraph.domain.reads import PointsRow
from dinegraph.domain.services.points import TIER_WINDOW
from dinegraph.resolvers.pagination import Page, decode_key_cursor, keyset_page, page_size


async def members(ctx: Context, ids: list[int]) -> list[tuple[Member, int] | None]:
    allowed = [i for i in ids if can_read_member(ctx.viewer, i)]
    found = {m.id: (m, points) for m, points in await ctx.reads.members_by_ids(allowed)}
    return [found.get(i) for i in ids]


async def member_by_phone(ctx: Context, phone: str) -> tuple[Member, int] | None:
    """Staff find a member by the phone they give, through its blind index."""
    require_staff(ctx.viewer)
    if not can_find_member(ctx.viewer):
        raise DomainError(ErrorCode.FORBIDDEN)
    return await ctx.reads.member_by_phone(check_phone(phone))


async def viewer_member(ctx: Context) -> tuple[Member, int] | None:
    if not isinstance(ctx.viewer, MemberViewer):
        return None
    (found,) = await members(ctx, [ctx.viewer.member_id])
    return found


async def signed_in_member(ctx: Context, member_id: int) -> tuple[Member, int]:
    """The member a sign-in just opened a session for, with their points balance.

    The request came in anonymous; the session just opened is this member's own.
    """
    (found,) = await ctx.reads.members_by_ids([member_id])
    return found


async def tier_spend(ctx: Context, member_id: int) -> int:
    """Spend of the trailing tier window, which the member's tier is measured by."""
    return await ctx.reads.spend_since(member_id, ctx.now() - TIER_WINDOW)


async def addresses(ctx: Context, member_id: int) -> list[Address]:
    if not can_read_member(ctx.viewer, member_id):
        return []  # a store manager serving the member at the counter
    return (await ctx.reads.addresses_of([member_id])).get(member_id, [])


async def points_page(
    ctx: Context, member_id: int, *, first: int | None, after: str | None
) -> Page[PointsRow]:
    if not can_read_member(ctx.viewer, member_id):
        raise DomainError(ErrorCode.FORBIDDEN)
    size = page_size(first, ctx.settings.max_page_size)
    before = decode_key_cursor("points", after)
    rows = await ctx.reads.points_rows(member_id, before_id=before, limit=size + 1)
    return keyset_page(rows, size=size, kind="points", key=lambda r: r.id, after=before)
