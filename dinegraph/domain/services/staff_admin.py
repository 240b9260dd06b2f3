"""Head office manages staff accounts and partner API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import Scope, StaffRole, StaffViewer, Viewer, require_staff
from dinegraph.domain.providers import Provider
from dinegraph.domain.staff import (
    ApiKeyRecord,
    ApiKeys,
    IssuedKey,
    PasswordHashing,
    StaffAccount,
    StaffAccounts,
    StaffDirectory,
    StaffFilter,
    check_new_password,
    check_role_stores,
    check_username,
)
from dinegraph.domain.text import clean_text

NAME_MAX_LENGTH = 60


def require_hq_admin(viewer: Viewer) -> StaffViewer:
    """Accounts and keys are head office's: HQ_ADMIN only."""
    staff = require_staff(viewer)
    if staff.role is not StaffRole.HQ_ADMIN:
        raise DomainError(ErrorCode.FORBIDDEN)
    return staff


async def _known_stores(
    directory: StaffDirectory | ApiKeys, ids: list[int], field: list[str]
) -> None:
    if ids and await directory.missing_stores(ids):
        raise DomainError(ErrorCode.NOT_FOUND, field=field)


@dataclass(frozen=True, slots=True)
class NewStaffAccount:
    username: str
    display_name: str
    role: StaffRole
    store_ids: list[int]
    password: str


async def create_staff_account(
    new: NewStaffAccount,
    *,
    viewer: Viewer,
    directory: StaffDirectory,
    accounts: StaffAccounts,
    passwords: PasswordHashing,
) -> StaffAccount:
    """A new account with a password head office chose: its holder changes it at sign-in."""
    require_hq_admin(viewer)
    username = check_username(new.username, ["username"])
    display = clean_text(new.display_name, ["displayName"], max_length=NAME_MAX_LENGTH)
    ids = check_role_stores(new.role, new.store_ids, ["storeIds"])
    check_new_password(new.password, username, ["password"])
    await _known_stores(directory, ids, ["storeIds"])
    staff_id = await directory.create(
        username=username,
        display_name=display,
        role=new.role,
        store_ids=ids,
        password_hash=await passwords.hash(new.password),
        must_change_password=True,
    )
    return await _account(accounts, staff_id)


async def _account(accounts: StaffAccounts, staff_id: int) -> StaffAccount:
    account = await accounts.get(staff_id)
    if account is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
    return account


@dataclass(frozen=True, slots=True)
class StaffAccountChange:
    staff_id: int
    display_name: str | None = None
    role: StaffRole | None = None
    store_ids: list[int] | None = None


async def update_staff_account(
    change: StaffAccountChange,
    *,
    viewer: Viewer,
    directory: StaffDirectory,
    accounts: StaffAccounts,
) -> StaffAccount:
    me = require_hq_admin(viewer)
    account = await _account(accounts, change.staff_id)
    if account.id == me.staff_id and change.role not in (None, StaffRole.HQ_ADMIN):
        # Head office keeps at least the admin who is changing things.
        raise DomainError(ErrorCode.FORBIDDEN, field=["role"])
    display = (
        None
        if change.display_name is None
        else clean_text(change.display_name, ["displayName"], max_length=NAME_MAX_LENGTH)
    )
    role = change.role or account.role
    ids = sorted(account.store_ids) if change.store_ids is None else change.store_ids
    ids = check_role_stores(role, ids, ["storeIds"])
    await _known_stores(directory, ids, ["storeIds"])
    await directory.update(
        account.id,
        display_name=display,
        role=change.role,
        store_ids=None if change.store_ids is None and change.role is None else ids,
    )
    return await _account(accounts, account.id)


async def set_staff_account_disabled(
    staff_id: int,
    disabled: bool,
    *,
    viewer: Viewer,
    directory: StaffDirectory,
    accounts: StaffAccounts,
    now: datetime,
) -> StaffAccount:
    """Disabling ends the account's sessions and its tokens in every process at once."""
    me = require_hq_admin(viewer)
    if disabled and staff_id == me.staff_id:
        raise DomainError(ErrorCode.FORBIDDEN, field=["id"])
    await _account(accounts, staff_id)
    await directory.set_disabled(staff_id, now if disabled else None)
    return await _account(accounts, staff_id)


async def reset_staff_password(
    staff_id: int,
    temporary_password: str,
    *,
    viewer: Viewer,
    directory: StaffDirectory,
    accounts: StaffAccounts,
    passwords: PasswordHashing,
    now: datetime,
) -> StaffAccount:
    require_hq_admin(viewer)
    account = await _account(accounts, staff_id)
    check_new_password(temporary_password, account.username, ["temporaryPassword"])
    await directory.reset_password(staff_id, await passwords.hash(temporary_password), now)
    return await _account(accounts, staff_id)


async def staff_accounts_page(
    *,
    viewer: Viewer,
    directory: StaffDirectory,
    limit: int,
    after_id: int | None,
    where: StaffFilter,
) -> list[StaffAccount]:
    require_hq_admin(viewer)
    return await directory.page(limit=limit, after_id=after_id, where=where)


# Partner API keys.


@dataclass(frozen=True, slots=True)
class NewApiKey:
    name: str
    scopes: list[str]
    store_ids: list[int] | None  # None: every store
    partner: Provider | None


async def create_api_key(
    new: NewApiKey, issued: IssuedKey, *, viewer: Viewer, keys: ApiKeys
) -> ApiKeyRecord:
    """The key is handed out once, by the caller; only its hash is kept."""
    require_hq_admin(viewer)
    name = clean_text(new.name, ["name"], max_length=NAME_MAX_LENGTH)
    scopes = sorted({s.strip() for s in new.scopes})
    known = {s.value for s in Scope}
    if not scopes or not set(scopes) <= known:
        raise DomainError(ErrorCode.INVALID_INPUT, field=["scopes"])
    if Scope.DELIVERY_WRITE.value in scopes and new.partner in (None, Provider.OWN_RIDER):
        # A delivery platform's key writes only the deliveries that platform carries.
        raise DomainError(ErrorCode.REQUIRED, field=["partner"])
    ids = None if new.store_ids is None else sorted(set(new.store_ids))
    if ids is not None:
        if not ids:
            raise DomainError(ErrorCode.REQUIRED, field=["storeIds"])
        await _known_stores(keys, ids, ["storeIds"])
    return await keys.add(
        name=name,
        issued=issued,
        scopes=scopes,
        store_ids=ids,
        partner=new.partner.value if new.partner else None,
    )


async def api_keys_page(
    *, viewer: Viewer, keys: ApiKeys, limit: int, after_id: int | None
) -> list[ApiKeyRecord]:
    require_hq_admin(viewer)
    return await keys.page(limit=limit, after_id=after_id)


async def revoke_api_key(
    key_id: int, *, viewer: Viewer, keys: ApiKeys, now: datetime
) -> ApiKeyRecord:
    require_hq_admin(viewer)
    revoked = await keys.revoke(key_id, now)
    if revoked is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["id"])
    return revoked
