"""Staff accounts and partner API keys: the principals behind a viewer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.db.engine import WRITE
from dinegraph.db.tables import api_keys, members, staff, stores
from dinegraph.domain.identity import PartnerViewer, StaffRole, StaffViewer


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
    )


async def member_exists(engine: AsyncEngine, member_id: int) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(members.c.id).where(members.c.id == member_id))
    return found is not None


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


async def ensure_staff(
    engine: AsyncEngine, *, username: str, role: StaffRole, store_ids: Iterable[int]
) -> StaffViewer:
    """Create the staff account, or bring its role and stores up to date."""
    ids = sorted(set(store_ids))
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
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
    return int(new_id)


class SqlCredentials:
    """The accounts behind credentials, for ``dinegraph.security.viewer_from_headers``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def staff_viewer(self, staff_id: int) -> StaffViewer | None:
        return await staff_viewer(self._engine, staff_id)

    async def member_exists(self, member_id: int) -> bool:
        return await member_exists(self._engine, member_id)

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
