"""Staff accounts and partner API keys: the principals behind a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.audit import append_entry
from dinegraph.db.engine import WRITE
from dinegraph.db.tables import api_keys, members, staff, stores
from dinegraph.db.uow import EventSink
from dinegraph.domain.audit import AuditEntry
from dinegraph.domain.events import Event
from dinegraph.domain.identity import (
    Account,
    CredentialsChanged,
    PartnerViewer,
    StaffRole,
    StaffViewer,
)


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    viewer: PartnerViewer
    key_hash: str


async def staff_viewer(engine: AsyncEngine, staff_id: int) -> StaffViewer | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(staff).where(staff.c.id == staff_id, staff.c.active))
        ).first()
    if row is None:
        return None
    return StaffViewer(
        staff_id=row.id,
        username=row.username,
        role=StaffRole(row.role),
        store_ids=frozenset(row.store_ids),
        must_change_password=row.must_change_password,
    )


async def member_exists(engine: AsyncEngine, member_id: int) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(members.c.id).where(members.c.id == member_id))
    return found is not None


async def newest_member_id(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        newest = await conn.scalar(sa.select(sa.func.max(members.c.id)))
    return int(newest or 0)


async def api_key_by_prefix(engine: AsyncEngine, prefix: str) -> StoredApiKey | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(api_keys).where(
                    api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None)
                )
            )
        ).first()
    if row is None:
        return None
    viewer = PartnerViewer(
        api_key_id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes),
        store_ids=None if row.store_ids is None else frozenset(row.store_ids),
        partner=row.partner,
    )
    return StoredApiKey(viewer=viewer, key_hash=row.key_hash)


@asynccontextmanager
async def _writing(
    engine: AsyncEngine, events: EventSink | None
) -> AsyncIterator[tuple[AsyncConnection, list[Event]]]:
    """A write transaction; the credential changes put in its list are published with its
    commit, so every process forgets the viewers it remembered for them."""
    changes: list[Event] = []
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            yield conn, changes
            receipt = None
            if changes and events is not None:
                receipt = await events.publish_in_transaction(conn, changes)
        if changes and events is not None:
            await events.publish_after_commit(changes, receipt)


async def ensure_staff(
    engine: AsyncEngine,
    *,
    username: str,
    role: StaffRole,
    store_ids: Iterable[int],
    events: EventSink | None = None,
    audit: AuditEntry | None = None,
) -> StaffViewer:
    """Create the staff account, or bring its role and stores up to date."""
    ids = sorted(set(store_ids))
    async with _writing(engine, events) as (conn, changes):
        await _check_stores(conn, ids)
        existing = await conn.scalar(sa.select(staff.c.id).where(staff.c.username == username))
        if existing is None:
            existing = await conn.scalar(
                staff.insert()
                .values(username=username, role=role.value, store_ids=ids, active=True)
                .returning(staff.c.id)
            )
        else:
            await conn.execute(
                staff.update()
                .where(staff.c.id == existing)
                .values(role=role.value, store_ids=ids, active=True)
            )
            changes.append(CredentialsChanged(Account.STAFF.value, int(existing)))
        await _audited(conn, audit, "Staff", int(existing))
    return StaffViewer(
        staff_id=int(existing), username=username, role=role, store_ids=frozenset(ids)
    )


async def insert_api_key(
    engine: AsyncEngine,
    *,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: Iterable[str],
    store_ids: Iterable[int] | None,
    partner: str | None = None,
    audit: AuditEntry | None = None,
) -> int:
    ids = None if store_ids is None else sorted(set(store_ids))
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            if ids is not None:
                await _check_stores(conn, ids)
            new_id = await conn.scalar(
                api_keys.insert()
                .values(
                    name=name,
                    prefix=prefix,
                    key_hash=key_hash,
                    scopes=sorted(set(scopes)),
                    store_ids=ids,
                    partner=partner,
                )
                .returning(api_keys.c.id)
            )
            await _audited(conn, audit, "ApiKey", int(new_id))
    return int(new_id)


async def disable_staff(
    engine: AsyncEngine,
    username: str,
    *,
    events: EventSink | None = None,
    audit: AuditEntry | None = None,
) -> int | None:
    """The staff account may no longer sign in (its tokens stop working); its id, or None
    when no active account has that name. ``staff-token`` enables it again."""
    async with _writing(engine, events) as (conn, changes):
        staff_id = await conn.scalar(
            staff.update()
            .where(staff.c.username == username, staff.c.active)
            .values(active=False)
            .returning(staff.c.id)
        )
        if staff_id is not None:
            changes.append(CredentialsChanged(Account.STAFF.value, int(staff_id)))
            await _audited(conn, audit, "Staff", int(staff_id))
    return None if staff_id is None else int(staff_id)


async def revoke_api_key(
    engine: AsyncEngine,
    prefix: str,
    *,
    at: datetime,
    events: EventSink | None = None,
    audit: AuditEntry | None = None,
) -> int | None:
    """The key with this prefix stops working; its id, or None when no unrevoked key has it."""
    async with _writing(engine, events) as (conn, changes):
        key_id = await conn.scalar(
            api_keys.update()
            .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(api_keys.c.id)
        )
        if key_id is not None:
            changes.append(CredentialsChanged(Account.API_KEY.value, int(key_id)))
            await _audited(conn, audit, "ApiKey", int(key_id))
    return None if key_id is None else int(key_id)


async def _audited(
    conn: AsyncConnection, audit: AuditEntry | None, kind: str, object_id: int
) -> None:
    """The CLI's entry for this change, in its transaction (``domain.audit``)."""
    if audit is not None:
        await append_entry(conn, replace(audit, object_type=kind, object_id=object_id))


class SqlCredentials:
    """The accounts behind credentials, for ``dinegraph.security.viewer_from_headers``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def staff_viewer(self, staff_id: int) -> StaffViewer | None:
        return await staff_viewer(self._engine, staff_id)

    async def member_exists(self, member_id: int) -> bool:
        return await member_exists(self._engine, member_id)

    async def newest_member_id(self) -> int:
        return await newest_member_id(self._engine)

    async def api_key_by_prefix(self, prefix: str) -> StoredApiKey | None:
        return await api_key_by_prefix(self._engine, prefix)


class UnknownStoreError(ValueError):
    pass


async def _check_stores(conn: AsyncConnection, ids: list[int]) -> None:
    if not ids:
        return
    found = set(await conn.scalars(sa.select(stores.c.id).where(stores.c.id.in_(ids))))
    missing = sorted(set(ids) - found)
    if missing:
        raise UnknownStoreError(f"no store with id {', '.join(map(str, missing))}")
