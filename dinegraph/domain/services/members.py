"""What a member does with their own account: profile, addresses, daily check-in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from dinegraph.domain.catalog import UNSET, Unset
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import MemberViewer, Viewer
from dinegraph.domain.members import (
    ADDRESSES_MAX,
    Address,
    Member,
    PointsKind,
    check_birthday,
    check_in_points,
    check_phone,
    clean_address_text,
    clean_contact_name,
    clean_nickname,
    next_streak,
)
from dinegraph.domain.ports import UnitOfWork


def require_member(viewer: Viewer) -> int:
    if isinstance(viewer, MemberViewer):
        return viewer.member_id
    raise DomainError(ErrorCode.UNAUTHENTICATED)


@dataclass(frozen=True, slots=True)
class UpdateProfile:
    today: date  # the member's today, for the birthday's range
    nickname: str | Unset = UNSET
    birthday: date | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class SaveAddress:
    contact_name: str
    contact_phone: str
    address: str
    location: GeoPoint
    is_default: bool = False
    address_id: int | None = None  # None adds a new one


@dataclass(frozen=True, slots=True)
class CheckIn:
    day: date


@dataclass(frozen=True, slots=True)
class CheckInResult:
    streak: int
    points_earned: int
    balance: int


async def update_profile(cmd: UpdateProfile, *, uow: UnitOfWork, viewer: Viewer) -> Member:
    member_id = require_member(viewer)
    async with uow:
        member = await uow.members.get(member_id)
        if member is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        if cmd.nickname is not UNSET:
            member = replace(member, nickname=clean_nickname(cmd.nickname))
        if cmd.birthday is not UNSET:
            birthday = cmd.birthday
            member = replace(
                member, birthday=check_birthday(birthday, cmd.today) if birthday else None
            )
        await uow.members.save_profile(member)
        await uow.commit()
    return member


async def save_address(cmd: SaveAddress, *, uow: UnitOfWork, viewer: Viewer) -> Address:
    """Add or change one of the member's delivery addresses (GCJ-02)."""
    member_id = require_member(viewer)
    GeoPoint.checked(cmd.location.lat, cmd.location.lng, field="location")
    contact_name = clean_contact_name(cmd.contact_name)
    contact_phone = check_phone(cmd.contact_phone, field="contactPhone")
    address_text = clean_address_text(cmd.address)
    async with uow:
        existing = await uow.members.addresses(member_id)
        address = Address(
            id=cmd.address_id or 0,
            member_id=member_id,
            contact_name=contact_name,
            contact_phone=contact_phone,
            address=address_text,
            location=cmd.location,
            is_default=cmd.is_default or not existing,
        )
        if cmd.address_id is None:
            if len(existing) >= ADDRESSES_MAX:
                raise DomainError(
                    ErrorCode.OUT_OF_RANGE, field=["address"], min=0, max=ADDRESSES_MAX
                )
            address = await uow.members.add_address(address)
        else:
            if cmd.address_id not in {a.id for a in existing}:
                raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
            await uow.members.save_address(address)
        await uow.commit()
    return address


async def delete_address(address_id: int, *, uow: UnitOfWork, viewer: Viewer) -> None:
    member_id = require_member(viewer)
    async with uow:
        if address_id not in {a.id for a in await uow.members.addresses(member_id)}:
            raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
        await uow.members.delete_address(address_id)
        await uow.commit()


async def check_in(cmd: CheckIn, *, uow: UnitOfWork, viewer: Viewer) -> CheckInResult:
    """Daily check-in (签到): points, with a bonus for a streak."""
    member_id = require_member(viewer)
    async with uow:
        if await uow.members.get(member_id, lock=True) is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        last = await uow.members.last_check_in(member_id)
        streak = next_streak(last[0] if last else None, last[1] if last else 0, cmd.day)
        points = check_in_points(streak)
        await uow.members.add_check_in(member_id, cmd.day, streak)
        balance = await uow.members.change_points(
            member_id=member_id,
            kind=PointsKind.CHECK_IN,
            reference=cmd.day.isoformat(),
            delta=points,
        )
        assert balance is not None  # adding points cannot go below zero
        await uow.commit()
    return CheckInResult(streak=streak, points_earned=points, balance=balance)
