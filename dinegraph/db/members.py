"""The member repository: accounts, login codes, refresh tokens, addresses, points."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dinegraph.db.behaviour import take_device_events
from dinegraph.db.tables import (
    check_ins,
    login_codes,
    member_addresses,
    member_spend,
    members,
    points_ledger,
    refresh_tokens,
)
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.members import Address, LoginCode, Member, PointsKind
from dinegraph.domain.tiers import Tier


def member_of(row: Any) -> Member:
    return Member(
        id=row.id,
        phone=row.phone,
        wechat_openid=row.wechat_openid,
        nickname=row.nickname,
        birthday=row.birthday,
        tier=Tier(row.tier),
        created_at=row.created_at,
        wechat_unionid=row.wechat_unionid,
    )


def address_of(row: Any) -> Address:
    return Address(
        id=row.id,
        member_id=row.member_id,
        contact_name=row.contact_name,
        contact_phone=row.contact_phone,
        address=row.address,
        location=GeoPoint(row.lat, row.lng),
        is_default=row.is_default,
    )


class SqlMemberRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _member(self, where: sa.ColumnElement[bool], *, lock: bool) -> Member | None:
        query = sa.select(members).where(where)
        if lock and self._conn.dialect.name == "postgresql":
            # Serialises one member's concurrent claims and point changes (SQLite writers
            # are serialised already by BEGIN IMMEDIATE).
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return member_of(row) if row else None

    async def get(self, member_id: int, *, lock: bool = False) -> Member | None:
        return await self._member(members.c.id == member_id, lock=lock)

    async def by_phone(self, phone: str) -> Member | None:
        # The blind index column takes the phone and compares its keyed HMAC.
        return await self._member(members.c.phone_index == phone, lock=False)

    async def by_openid(self, openid: str) -> Member | None:
        return await self._member(members.c.wechat_openid == openid, lock=False)

    async def add(
        self, *, phone: str | None, openid: str | None, nickname: str, unionid: str | None = None
    ) -> Member:
        row = (
            await self._conn.execute(
                members.insert()
                .values(
                    phone=phone,
                    phone_index=phone,
                    wechat_openid=openid,
                    wechat_unionid=unionid,
                    nickname=nickname,
                    tier=Tier.NORMAL.value,
                    points=0,
                )
                .returning(*members.c)
            )
        ).one()
        return member_of(row)

    async def save_profile(self, member: Member) -> None:
        await self._conn.execute(
            members.update()
            .where(members.c.id == member.id)
            .values(
                nickname=member.nickname,
                birthday=member.birthday,
                phone=member.phone,
                phone_index=member.phone,
                wechat_openid=member.wechat_openid,
                wechat_unionid=member.wechat_unionid,
                tier=member.tier.value,
            )
        )

    # --- login codes ---

    async def last_code(self, phone: str) -> LoginCode | None:
        row = (
            await self._conn.execute(
                sa.select(login_codes)
                .where(login_codes.c.phone_index == phone)
                .order_by(login_codes.c.id.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return LoginCode(
            id=row.id,
            phone=phone,
            code_hash=row.code_hash,
            created_at=row.created_at,
            expires_at=row.expires_at,
            failures=row.failures,
            consumed=row.consumed,
        )

    async def codes_since(
        self, *, phone: str | None = None, ip: str | None = None, since: datetime
    ) -> int:
        where = [login_codes.c.created_at >= since]
        if phone is not None:
            where.append(login_codes.c.phone_index == phone)
        if ip is not None:
            where.append(login_codes.c.ip == ip)
        count = await self._conn.scalar(
            sa.select(sa.func.count()).select_from(login_codes).where(*where)
        )
        return int(count or 0)

    async def add_code(
        self, *, phone: str, ip: str, code_hash: str, created_at: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            login_codes.insert().values(
                phone_index=phone,
                ip=ip,
                code_hash=code_hash,
                created_at=created_at,
                expires_at=expires_at,
                failures=0,
                consumed=False,
            )
        )

    async def code_failed(self, code_id: int) -> None:
        await self._conn.execute(
            login_codes.update()
            .where(login_codes.c.id == code_id)
            .values(failures=login_codes.c.failures + 1)
        )

    async def consume_code(self, code_id: int) -> bool:
        """True when this call consumed it: two logins racing with one code get one success."""
        result = await self._conn.execute(
            login_codes.update()
            .where(login_codes.c.id == code_id, login_codes.c.consumed.is_(False))
            .values(consumed=True)
        )
        return result.rowcount == 1

    # --- refresh tokens ---

    async def take_device_events(self, device_id: str, member_id: int, *, keep: int) -> int:
        return await take_device_events(self._conn, device_id, member_id, keep=keep)

    async def add_refresh_token(
        self, *, member_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            refresh_tokens.insert().values(
                member_id=member_id, family=family, token_hash=token_hash, expires_at=expires_at
            )
        )

    async def refresh_token(self, token_hash: str) -> tuple[int, str, datetime, bool] | None:
        """(member id, family, expiry, revoked) of a refresh token."""
        row = (
            await self._conn.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).first()
        if row is None:
            return None
        return row.member_id, row.family, row.expires_at, row.revoked_at is not None

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        result = await self._conn.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1

    async def revoke_family(self, family: str, at: datetime) -> None:
        await self._conn.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.family == family, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    # --- addresses ---

    async def addresses(self, member_id: int) -> list[Address]:
        rows = await self._conn.execute(
            sa.select(member_addresses)
            .where(member_addresses.c.member_id == member_id)
            .order_by(member_addresses.c.id)
        )
        return [address_of(r) for r in rows]

    async def add_address(self, address: Address) -> Address:
        if address.is_default:
            await self._clear_default(address.member_id)
        row = (
            await self._conn.execute(
                member_addresses.insert()
                .values(**_address_values(address))
                .returning(*member_addresses.c)
            )
        ).one()
        return address_of(row)

    async def save_address(self, address: Address) -> None:
        if address.is_default:
            await self._clear_default(address.member_id)
        await self._conn.execute(
            member_addresses.update()
            .where(member_addresses.c.id == address.id)
            .values(**_address_values(address))
        )

    async def delete_address(self, address_id: int) -> None:
        await self._conn.execute(
            member_addresses.delete().where(member_addresses.c.id == address_id)
        )

    async def _clear_default(self, member_id: int) -> None:
        await self._conn.execute(
            member_addresses.update()
            .where(member_addresses.c.member_id == member_id)
            .values(is_default=False)
        )

    # --- points ---

    async def change_points(
        self,
        *,
        member_id: int,
        kind: PointsKind,
        reference: str,
        delta: int,
        expires_at: datetime | None = None,
    ) -> int | None:
        """New balance, or None when it would go below zero. Keyed: a replay changes nothing."""
        done = await self._conn.scalar(
            sa.select(points_ledger.c.balance_after).where(
                points_ledger.c.member_id == member_id,
                points_ledger.c.kind == kind.value,
                points_ledger.c.reference == reference,
            )
        )
        if done is not None:
            return int(done)
        balance = await self._conn.scalar(
            members.update()
            .where(members.c.id == member_id, members.c.points + delta >= 0)
            .values(points=members.c.points + delta)
            .returning(members.c.points)
        )
        if balance is None:
            return None
        await self._conn.execute(
            points_ledger.insert().values(
                member_id=member_id,
                kind=kind.value,
                reference=reference,
                delta=delta,
                balance_after=balance,
                expires_at=expires_at,
            )
        )
        return int(balance)

    async def add_spend(
        self, *, member_id: int, reference: str, amount_fen: int, at: datetime
    ) -> bool:
        """Record spend once per reference; False when it was recorded before."""
        exists = await self._conn.scalar(
            sa.select(member_spend.c.id).where(
                member_spend.c.member_id == member_id, member_spend.c.reference == reference
            )
        )
        if exists is not None:
            return False
        await self._conn.execute(
            member_spend.insert().values(
                member_id=member_id, reference=reference, amount_fen=amount_fen, at=at
            )
        )
        return True

    async def spend_since(self, member_id: int, since: datetime) -> int:
        total = await self._conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(member_spend.c.amount_fen), 0)).where(
                member_spend.c.member_id == member_id, member_spend.c.at >= since
            )
        )
        return int(total or 0)

    async def expirable_points(self, now: datetime, limit: int) -> list[tuple[int, int, int]]:
        """(member, earn row id, points) of earned points past their expiry, not yet expired."""
        expired = sa.select(points_ledger.c.reference).where(
            points_ledger.c.kind == PointsKind.EXPIRE.value
        )
        rows = await self._conn.execute(
            sa.select(points_ledger.c.member_id, points_ledger.c.id, points_ledger.c.delta)
            .where(
                points_ledger.c.kind == PointsKind.EARN.value,
                points_ledger.c.expires_at <= now,
                sa.cast(points_ledger.c.id, sa.String).not_in(expired),
            )
            .order_by(points_ledger.c.id)
            .limit(limit)
        )
        return [(r.member_id, r.id, r.delta) for r in rows]

    async def points_balance(self, member_id: int) -> int:
        balance = await self._conn.scalar(
            sa.select(members.c.points).where(members.c.id == member_id)
        )
        return int(balance or 0)

    async def last_check_in(self, member_id: int) -> tuple[date, int] | None:
        row = (
            await self._conn.execute(
                sa.select(check_ins.c.day, check_ins.c.streak)
                .where(check_ins.c.member_id == member_id)
                .order_by(check_ins.c.day.desc())
                .limit(1)
            )
        ).first()
        return (row.day, row.streak) if row else None

    async def add_check_in(self, member_id: int, day: date, streak: int) -> None:
        await self._conn.execute(
            check_ins.insert().values(member_id=member_id, day=day, streak=streak)
        )


def _address_values(address: Address) -> dict[str, object]:
    return {
        "member_id": address.member_id,
        "contact_name": address.contact_name,
        "contact_phone": address.contact_phone,
        "address": address.address,
        "lat": address.location.lat,
        "lng": address.location.lng,
        "is_default": address.is_default,
    }
