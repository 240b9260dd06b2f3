"""Staff accounts that sign in (``domain.staff.StaffAccounts``) on SQLAlchemy Core.

Every method is its own short transaction: a password is checked between them, never
while a transaction (or SQLite's write lock) is held.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db import demo_data
from dinegraph.db.audit import append_entry
from dinegraph.db.engine import WRITE
from dinegraph.db.identity import UnknownStoreError
from dinegraph.db.tables import (
    api_keys,
    staff,
    staff_login_failures,
    staff_refresh_tokens,
    stores,
)
from dinegraph.db.uow import EventSink
from dinegraph.domain.audit import AuditDraft
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.events import Event
from dinegraph.domain.identity import Account, CredentialsChanged, StaffRole
from dinegraph.domain.staff import (
    ApiKeyRecord,
    IssuedKey,
    StaffAccount,
    StaffFilter,
    StoredRefreshToken,
)

_KEPT = timedelta(days=1)


async def _record(
    conn: AsyncConnection, draft: AuditDraft | None, kind: str, subject: int | None
) -> AuditDraft | None:
    """The audit entry of the write, in its transaction, if it has one not yet recorded;
    the caller marks it written once the transaction commits."""
    if draft is None or draft.written:
        return None
    if subject is not None:
        draft.wrote(kind, subject)
    await append_entry(conn, draft.entry)
    return draft


def account_of(row: sa.Row[tuple[object, ...]]) -> StaffAccount:
    m = row._mapping
    return StaffAccount(
        id=m["id"],
        username=m["username"],
        display_name=m["display_name"] or m["username"],
        role=StaffRole(m["role"]),
        store_ids=frozenset(m["store_ids"]),
        active=m["active"],
        password_hash=m["password_hash"],
        totp_secret=m["totp_secret"],
        totp_pending_secret=m["totp_pending_secret"],
        must_change_password=m["must_change_password"],
        locked_until=m["locked_until"],
        disabled_at=m["disabled_at"],
    )


class SqlStaffAccounts:
    """``audit``: the entry of the staff mutation being run, if any; its first write
    records it, in the same transaction (``domain.audit``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        events: EventSink | None = None,
        audit: AuditDraft | None = None,
    ) -> None:
        self._engine = engine
        self._events = events
        self._audit = audit

    @asynccontextmanager
    async def _write(
        self, subject: int | None = None
    ) -> AsyncIterator[tuple[AsyncConnection, list[Event]]]:
        """A write transaction; events put in its list are published with its commit.
        ``subject``: the account it changes, as the audit entry names it."""
        changes: list[Event] = []
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                yield conn, changes
                audited = await _record(conn, self._audit, "Staff", subject)
                receipt = None
                if changes and self._events is not None:
                    receipt = await self._events.publish_in_transaction(conn, changes)
            if audited is not None:
                audited.written = True
            if changes and self._events is not None:
                await self._events.publish_after_commit(changes, receipt)

    async def _execute(
        self, statement: sa.Executable, subject: int | None = None
    ) -> sa.CursorResult[object]:
        async with self._write(subject) as (conn, _):
            return await conn.execute(statement)

    async def _one(self, where: sa.ColumnElement[bool]) -> StaffAccount | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(staff).where(where))).first()
        return None if row is None else account_of(row)

    async def get(self, staff_id: int) -> StaffAccount | None:
        return await self._one(staff.c.id == staff_id)

    async def by_username(self, username: str) -> StaffAccount | None:
        return await self._one(staff.c.username == username)

    # Attempts and lockout.

    async def failures_from(self, ip: str, since: datetime) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(staff_login_failures)
                .where(staff_login_failures.c.ip == ip[:64], staff_login_failures.c.at >= since)
            )
        return int(count or 0)

    async def record_failure(self, ip: str, at: datetime) -> None:
        f = staff_login_failures
        async with self._write() as (conn, _):
            await conn.execute(f.insert().values(ip=ip[:64], at=at))
            # This address's failures of other days count no more: they go.
            await conn.execute(f.delete().where(f.c.ip == ip[:64], f.c.at < at - _KEPT))

    async def take_attempt(
        self, staff_id: int, now: datetime, window_start: datetime
    ) -> int | None:
        fresh = sa.or_(
            staff.c.last_failed_at.is_(None),
            staff.c.last_failed_at < window_start,
            staff.c.locked_until <= now,
        )
        async with self._write() as (conn, _):
            taken = await conn.scalar(
                staff.update()
                .where(
                    staff.c.id == staff_id,
                    sa.or_(staff.c.locked_until.is_(None), staff.c.locked_until <= now),
                )
                .values(
                    failed_attempts=sa.case((fresh, 1), else_=staff.c.failed_attempts + 1),
                    last_failed_at=now,
                    locked_until=None,
                )
                .returning(staff.c.failed_attempts)
            )
        return None if taken is None else int(taken)

    async def give_back_attempt(self, staff_id: int) -> None:
        await self._execute(
            staff.update()
            .where(staff.c.id == staff_id, staff.c.failed_attempts > 0)
            .values(failed_attempts=staff.c.failed_attempts - 1)
        )

    async def lock(self, staff_id: int, until: datetime) -> datetime:
        async with self._write() as (conn, _):
            # A lock already running is kept as it is: racing failures do not extend it.
            # (Taking an attempt clears a lock gone by, so a set one is running.)
            await conn.execute(
                staff.update()
                .where(staff.c.id == staff_id, staff.c.locked_until.is_(None))
                .values(locked_until=until)
            )
            current = await conn.scalar(
                sa.select(staff.c.locked_until).where(staff.c.id == staff_id)
            )
        return current if isinstance(current, datetime) else until

    async def signed_in(self, staff_id: int, new_password_hash: str | None) -> None:
        values: dict[str, object] = {"failed_attempts": 0, "last_failed_at": None}
        if new_password_hash is not None:
            values["password_hash"] = new_password_hash
        await self._execute(staff.update().where(staff.c.id == staff_id).values(**values))

    async def use_totp_step(self, staff_id: int, step: int) -> bool:
        result = await self._execute(
            staff.update()
            .where(
                staff.c.id == staff_id,
                sa.or_(staff.c.totp_last_step.is_(None), staff.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return result.rowcount == 1

    # Sessions.

    async def add_refresh_token(
        self, *, staff_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None:
        await self._execute(
            staff_refresh_tokens.insert().values(
                staff_id=staff_id, family=family, token_hash=token_hash, expires_at=expires_at
            )
        )

    async def refresh_token(self, token_hash: str) -> StoredRefreshToken | None:
        t = staff_refresh_tokens
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.c.staff_id, t.c.family, t.c.expires_at, t.c.revoked_at).where(
                        t.c.token_hash == token_hash
                    )
                )
            ).first()
        if row is None:
            return None
        return StoredRefreshToken(
            staff_id=row.staff_id,
            family=row.family,
            expires_at=row.expires_at,
            revoked=row.revoked_at is not None,
        )

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        t = staff_refresh_tokens
        result = await self._execute(
            t.update()
            .where(t.c.token_hash == token_hash, t.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1

    async def revoke_family(self, family: str, at: datetime) -> None:
        t = staff_refresh_tokens
        await self._execute(
            t.update().where(t.c.family == family, t.c.revoked_at.is_(None)).values(revoked_at=at)
        )

    # TOTP and passwords.

    async def set_totp_pending(self, staff_id: int, secret: str | None) -> None:
        await self._execute(
            staff.update().where(staff.c.id == staff_id).values(totp_pending_secret=secret),
            staff_id,
        )

    async def enable_totp(self, staff_id: int, secret: str, step: int) -> bool:
        """Enrol ``secret`` if it is still the pending one. Encrypted, it cannot be compared
        in SQL: it is read under the row's lock (the write lock on SQLite) and compared here."""
        async with self._write(staff_id) as (conn, _):
            pending = await conn.scalar(
                sa.select(staff.c.totp_pending_secret)
                .where(staff.c.id == staff_id)
                .with_for_update()
            )
            if pending is None or not hmac.compare_digest(pending, secret):
                return False
            await conn.execute(
                staff.update()
                .where(staff.c.id == staff_id)
                .values(totp_secret=secret, totp_pending_secret=None, totp_last_step=step)
            )
        return True

    async def disable_totp(self, staff_id: int) -> None:
        await self._execute(
            staff.update()
            .where(staff.c.id == staff_id)
            .values(totp_secret=None, totp_pending_secret=None, totp_last_step=None),
            staff_id,
        )

    async def set_password(self, staff_id: int, password_hash: str, *, must_change: bool) -> None:
        async with self._write(staff_id) as (conn, changes):
            await conn.execute(
                staff.update()
                .where(staff.c.id == staff_id)
                .values(
                    password_hash=password_hash,
                    must_change_password=must_change,
                    failed_attempts=0,
                    last_failed_at=None,
                    locked_until=None,
                )
            )
            # Every server forgets the account: its token may do everything again at once.
            changes.append(CredentialsChanged(Account.STAFF.value, staff_id))

    # Head office's directory (domain.staff.StaffDirectory).

    async def missing_stores(self, ids: list[int]) -> list[int]:
        return await missing_stores(self._engine, ids)

    async def create(
        self,
        *,
        username: str,
        display_name: str,
        role: StaffRole,
        store_ids: list[int],
        password_hash: str,
        must_change_password: bool,
    ) -> int:
        try:
            return await create_account(
                self._engine,
                username=username,
                display_name=display_name,
                role=role,
                store_ids=store_ids,
                password_hash=password_hash,
                must_change_password=must_change_password,
                audit=self._audit,
            )
        except (UsernameTaken, sa.exc.IntegrityError) as exc:  # a racing create of the name
            raise DomainError(ErrorCode.DUPLICATE, field=["username"]) from exc

    async def update(
        self,
        staff_id: int,
        *,
        display_name: str | None,
        role: StaffRole | None,
        store_ids: list[int] | None,
    ) -> bool:
        values: dict[str, object] = {}
        if display_name is not None:
            values["display_name"] = display_name
        if role is not None:
            values["role"] = role.value
        if store_ids is not None:
            values["store_ids"] = store_ids
        if not values:
            return await self.get(staff_id) is not None
        async with self._write(staff_id) as (conn, changes):
            result = await conn.execute(
                staff.update().where(staff.c.id == staff_id).values(**values)
            )
            changes.append(CredentialsChanged(Account.STAFF.value, staff_id))
        return result.rowcount == 1

    async def set_disabled(self, staff_id: int, at: datetime | None) -> bool:
        async with self._write(staff_id) as (conn, changes):
            result = await conn.execute(
                staff.update()
                .where(staff.c.id == staff_id)
                .values(active=at is None, disabled_at=at)
            )
            if at is not None:
                await _end_sessions(conn, staff_id, at)
            changes.append(CredentialsChanged(Account.STAFF.value, staff_id))
        return result.rowcount == 1

    async def reset_password(self, staff_id: int, password_hash: str, at: datetime) -> bool:
        async with self._write(staff_id) as (conn, changes):
            result = await conn.execute(
                staff.update()
                .where(staff.c.id == staff_id)
                .values(
                    password_hash=password_hash,
                    must_change_password=True,
                    failed_attempts=0,
                    last_failed_at=None,
                    locked_until=None,
                )
            )
            await _end_sessions(conn, staff_id, at)
            changes.append(CredentialsChanged(Account.STAFF.value, staff_id))
        return result.rowcount == 1

    async def page(
        self, *, limit: int, after_id: int | None, where: StaffFilter
    ) -> list[StaffAccount]:
        query = sa.select(staff).order_by(staff.c.id)
        if after_id is not None:
            query = query.where(staff.c.id > after_id)
        if where.role is not None:
            query = query.where(staff.c.role == where.role.value)
        if not where.include_disabled:
            query = query.where(staff.c.active)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = [account_of(r) for r in rows]
        if where.store_id is not None:
            # Store lists are JSON, read alike on both databases: filtered here (staff
            # accounts number in the hundreds).
            found = [
                a for a in found if a.role is StaffRole.HQ_ADMIN or where.store_id in a.store_ids
            ]
        return found[:limit]


async def _end_sessions(conn: AsyncConnection, staff_id: int, at: datetime) -> None:
    t = staff_refresh_tokens
    await conn.execute(
        t.update().where(t.c.staff_id == staff_id, t.c.revoked_at.is_(None)).values(revoked_at=at)
    )


async def missing_stores(engine: AsyncEngine, ids: list[int]) -> list[int]:
    async with engine.connect() as conn:
        found = set(await conn.scalars(sa.select(stores.c.id).where(stores.c.id.in_(ids))))
    return sorted(set(ids) - found)


class SqlApiKeys:
    """Partner API keys (``domain.staff.ApiKeys``); a revocation reaches every process.
    ``audit``: as ``SqlStaffAccounts``'."""

    def __init__(
        self,
        engine: AsyncEngine,
        events: EventSink | None = None,
        audit: AuditDraft | None = None,
    ) -> None:
        self._engine = engine
        self._events = events
        self._audit = audit

    async def missing_stores(self, ids: list[int]) -> list[int]:
        return await missing_stores(self._engine, ids)

    async def add(
        self,
        *,
        name: str,
        issued: IssuedKey,
        scopes: list[str],
        store_ids: list[int] | None,
        partner: str | None,
    ) -> ApiKeyRecord:
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                row = (
                    await conn.execute(
                        api_keys.insert()
                        .values(
                            name=name,
                            prefix=issued.prefix,
                            key_hash=issued.key_hash,
                            scopes=scopes,
                            store_ids=store_ids,
                            partner=partner,
                        )
                        .returning(*api_keys.c)
                    )
                ).one()
                audited = await _record(conn, self._audit, "ApiKey", row.id)
        if audited is not None:
            audited.written = True
        return key_of(row)

    async def page(self, *, limit: int, after_id: int | None) -> list[ApiKeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.id).limit(limit)
        if after_id is not None:
            query = query.where(api_keys.c.id > after_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [key_of(r) for r in rows]

    async def by_ids(self, ids: list[int]) -> list[ApiKeyRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_keys).where(api_keys.c.id.in_(ids)))).all()
        return [key_of(r) for r in rows]

    async def revoke(self, key_id: int, at: datetime) -> ApiKeyRecord | None:
        changes: list[Event] = [CredentialsChanged(Account.API_KEY.value, key_id)]
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                row = (
                    await conn.execute(
                        api_keys.update()
                        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                        .values(revoked_at=at)
                        .returning(*api_keys.c)
                    )
                ).first()
                audited = None
                if row is not None:
                    audited = await _record(conn, self._audit, "ApiKey", key_id)
                receipt = None
                if row is not None and self._events is not None:
                    receipt = await self._events.publish_in_transaction(conn, changes)
        if audited is not None:
            audited.written = True
        if row is not None and self._events is not None:
            await self._events.publish_after_commit(changes, receipt)
        return None if row is None else key_of(row)


def key_of(row: sa.Row[tuple[object, ...]]) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        scopes=frozenset(m["scopes"]),
        store_ids=None if m["store_ids"] is None else frozenset(m["store_ids"]),
        partner=m["partner"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


async def mark_keys_used(engine: AsyncEngine, key_ids: Iterable[int], at: datetime) -> None:
    """When these keys were last used (to the minute): one statement for them all."""
    ids = sorted(set(key_ids))
    if not ids:
        return
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            await conn.execute(
                api_keys.update().where(api_keys.c.id.in_(ids)).values(last_used_at=at)
            )


class UsernameTaken(ValueError):
    pass


async def check_stores(conn: AsyncConnection, ids: list[int]) -> None:
    if not ids:
        return
    found = set(await conn.scalars(sa.select(stores.c.id).where(stores.c.id.in_(ids))))
    missing = sorted(set(ids) - found)
    if missing:
        raise UnknownStoreError(f"no store with id {', '.join(map(str, missing))}")


async def create_account(
    engine: AsyncEngine,
    *,
    username: str,
    display_name: str | None,
    role: StaffRole,
    store_ids: Iterable[int],
    password_hash: str,
    must_change_password: bool = False,
    audit: AuditDraft | None = None,
) -> int:
    """A new staff account that signs in with a password; its id."""
    ids = sorted(set(store_ids))
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            await check_stores(conn, ids)
            taken = await conn.scalar(sa.select(staff.c.id).where(staff.c.username == username))
            if taken is not None:
                raise UsernameTaken(f"the username {username} is taken")
            new_id = await conn.scalar(
                staff.insert()
                .values(
                    username=username,
                    display_name=display_name,
                    role=role.value,
                    store_ids=ids,
                    active=True,
                    password_hash=password_hash,
                    must_change_password=must_change_password,
                )
                .returning(staff.c.id)
            )
            audited = await _record(conn, audit, "Staff", int(new_id))
    if audited is not None:
        audited.written = True
    return int(new_id)


async def ensure_demo_staff(
    engine: AsyncEngine, hash_password: Callable[[str], str]
) -> list[tuple[str, str, str]]:
    """The demo chain's staff accounts (``demo_data.DEMO_STAFF``), created if missing, their
    password set if they have none; (username, role, password) of each, for printing."""
    codes = [s["code"] for s in demo_data.STORES]
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(stores.c.code, stores.c.id))
        by_code = {r.code: r.id for r in rows}
    printed = []
    for demo in demo_data.DEMO_STAFF:
        ids = [by_code[codes[n]] for n in demo["stores"] if codes[n] in by_code]
        async with engine.connect() as conn:
            existing = (
                await conn.execute(
                    sa.select(staff.c.id, staff.c.password_hash).where(
                        staff.c.username == demo["username"]
                    )
                )
            ).first()
        if existing is None:
            await create_account(
                engine,
                username=demo["username"],
                display_name=demo["display_name"],
                role=StaffRole(demo["role"]),
                store_ids=ids,
                password_hash=hash_password(demo["password"]),
            )
        elif existing.password_hash is None:
            async with engine.begin() as conn:
                await conn.execute(
                    staff.update()
                    .where(staff.c.id == existing.id)
                    .values(password_hash=hash_password(demo["password"]))
                )
        printed.append((demo["username"], demo["role"], demo["password"]))
    return printed
