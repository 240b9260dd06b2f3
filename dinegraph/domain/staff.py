"""Staff accounts that sign in: passwords, lockout, TOTP, sessions; the ports they need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import StaffRole, StaffViewer, Viewer

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256  # argon2 takes any length; a bound keeps the work bounded
USERNAME_MAX_LENGTH = 60


@dataclass(frozen=True, slots=True)
class StaffAccount:
    id: int
    username: str
    display_name: str
    role: StaffRole
    store_ids: frozenset[int]
    active: bool
    password_hash: str | None
    totp_secret: str | None
    totp_pending_secret: str | None
    must_change_password: bool
    locked_until: datetime | None
    disabled_at: datetime | None

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    def viewer(self) -> StaffViewer:
        return StaffViewer(
            staff_id=self.id,
            username=self.username,
            role=self.role,
            store_ids=self.store_ids,
            must_change_password=self.must_change_password,
        )


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    access_ttl: timedelta
    refresh_ttl: timedelta
    max_failures: int  # wrong answers within ``failure_window`` that lock the account
    failure_window: timedelta
    lock_for: timedelta
    failures_per_address: int  # failed sign-ins from one address within the window


@dataclass(frozen=True, slots=True)
class StaffSession:
    account: StaffAccount
    access_token: str
    expires_at: datetime
    refresh_token: str


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str  # otpauth://totp/...: what an authenticator app scans


class PasswordHashing(Protocol):
    """A slow password hash (argon2): its work runs off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with other parameters than today's."""
        ...

    async def spend(self, password: str) -> None:
        """The work of one verification, for an account that does not exist."""
        ...


class TotpCodes(Protocol):
    """Time-based one-time codes (RFC 6238)."""

    def new_secret(self) -> str: ...

    def uri(self, secret: str, username: str) -> str: ...

    def step_of(self, secret: str, code: str, now: datetime) -> int | None:
        """The time step a code belongs to (this one or a neighbour), None if it is wrong."""
        ...


class StaffTokens(Protocol):
    def issue(self, viewer: StaffViewer) -> tuple[str, datetime]:
        """An access token and when it expires (on the real clock, as tokens are read)."""
        ...


@dataclass(frozen=True, slots=True)
class StoredRefreshToken:
    staff_id: int
    family: str
    expires_at: datetime
    revoked: bool


class StaffAccounts(Protocol):
    """Where staff accounts are kept (``dinegraph.db.staff_accounts``). Each method is one
    transaction; the counting ones are single atomic statements, so racing requests agree."""

    async def get(self, staff_id: int) -> StaffAccount | None: ...

    async def by_username(self, username: str) -> StaffAccount | None: ...

    async def failures_from(self, ip: str, since: datetime) -> int: ...

    async def record_failure(self, ip: str, at: datetime) -> None: ...

    async def take_attempt(
        self, staff_id: int, now: datetime, window_start: datetime
    ) -> int | None:
        """Count one more attempt before its password is checked: the attempts within the
        window, this one included; None while the account is locked."""
        ...

    async def give_back_attempt(self, staff_id: int) -> None:
        """The attempt was no wrong answer (a code is still to come)."""
        ...

    async def lock(self, staff_id: int, until: datetime) -> datetime:
        """Lock the account (unless it is locked already); until when it is locked."""
        ...

    async def signed_in(self, staff_id: int, new_password_hash: str | None) -> None:
        """Attempts forgotten; the password's hash replaced when given (new parameters)."""
        ...

    async def use_totp_step(self, staff_id: int, step: int) -> bool:
        """False when this step or a later one was used already (a code works once)."""
        ...

    async def add_refresh_token(
        self, *, staff_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None: ...

    async def refresh_token(self, token_hash: str) -> StoredRefreshToken | None: ...

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        """Revoke the token; False if it was revoked already (by a racing use)."""
        ...

    async def revoke_family(self, family: str, at: datetime) -> None: ...

    async def set_totp_pending(self, staff_id: int, secret: str | None) -> None: ...

    async def enable_totp(self, staff_id: int, secret: str, step: int) -> bool:
        """The pending secret becomes the account's; False if it is no longer pending."""
        ...

    async def disable_totp(self, staff_id: int) -> None: ...

    async def set_password(
        self, staff_id: int, password_hash: str, *, must_change: bool
    ) -> None: ...


def check_new_password(password: str, username: str, field: list[str]) -> str:
    """A password the policy accepts: at least 10 characters, not the username."""
    if (
        len(password) < PASSWORD_MIN_LENGTH
        or len(password) > PASSWORD_MAX_LENGTH
        or password.strip().casefold() == username.strip().casefold()
    ):
        raise DomainError(ErrorCode.WEAK_PASSWORD, field=field, min_length=PASSWORD_MIN_LENGTH)
    return password


def locked(until: datetime) -> DomainError:
    return DomainError(ErrorCode.ACCOUNT_LOCKED, until=until.isoformat(timespec="seconds"))


# Managing accounts and partner keys (head office).


@dataclass(frozen=True, slots=True)
class StaffFilter:
    role: StaffRole | None = None
    store_id: int | None = None  # accounts that act on this store (head office: all)
    include_disabled: bool = True


class StaffDirectory(Protocol):
    """Head office's view of the accounts (``dinegraph.db.staff_accounts``). Changes that
    alter what an account may do publish ``CredentialsChanged`` with their commit."""

    async def missing_stores(self, ids: list[int]) -> list[int]: ...

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
        """The new account's id; DUPLICATE when the username is taken."""
        ...

    async def update(
        self,
        staff_id: int,
        *,
        display_name: str | None,
        role: StaffRole | None,
        store_ids: list[int] | None,
    ) -> bool: ...

    async def set_disabled(self, staff_id: int, at: datetime | None) -> bool:
        """Disable (its refresh tokens revoked) or enable the account; False if unknown."""
        ...

    async def reset_password(self, staff_id: int, password_hash: str, at: datetime) -> bool:
        """A temporary password its holder must change; its sessions end."""
        ...

    async def page(
        self, *, limit: int, after_id: int | None, where: StaffFilter
    ) -> list[StaffAccount]:
        """Accounts by id, after ``after_id``."""
        ...


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    store_ids: frozenset[int] | None  # None: every store
    partner: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key as it is handed out once; only its hash is kept."""

    key: str
    prefix: str
    key_hash: str


class ApiKeys(Protocol):
    async def missing_stores(self, ids: list[int]) -> list[int]: ...

    async def add(
        self,
        *,
        name: str,
        issued: IssuedKey,
        scopes: list[str],
        store_ids: list[int] | None,
        partner: str | None,
    ) -> ApiKeyRecord: ...

    async def page(self, *, limit: int, after_id: int | None) -> list[ApiKeyRecord]: ...

    async def by_ids(self, ids: list[int]) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: int, at: datetime) -> ApiKeyRecord | None:
        """Revoke it (every process refuses it at once); None if unknown or revoked."""
        ...


USERNAME_MIN_LENGTH = 3
_USERNAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
)


def check_username(username: str, field: list[str]) -> str:
    """3 to 60 of ASCII letters, digits, '.', '_' and '-'."""
    name = username.strip()
    if not USERNAME_MIN_LENGTH <= len(name) <= USERNAME_MAX_LENGTH or not set(name) <= (
        _USERNAME_CHARACTERS
    ):
        raise DomainError(
            ErrorCode.INVALID_INPUT, field=field, min=USERNAME_MIN_LENGTH, max=USERNAME_MAX_LENGTH
        )
    return name


def check_role_stores(role: StaffRole, store_ids: list[int], field: list[str]) -> list[int]:
    """A store manager manages at least one store; head office acts on all of them."""
    ids = sorted(set(store_ids))
    if role is StaffRole.STORE_MANAGER and not ids:
        raise DomainError(ErrorCode.REQUIRED, field=field)
    return ids


# What an account with a temporary password may still call (root fields of the API): read
# who it is, change the password, keep or end its session.
ALLOWED_BEFORE_PASSWORD_CHANGE = frozenset(
    {"viewer", "changeMyPassword", "staffLogout", "refreshStaffSession", "__typename"}
)


def must_change_password(viewer: Viewer) -> bool:
    return isinstance(viewer, StaffViewer) and viewer.must_change_password


def require_password_changed(viewer: Viewer, action: str) -> None:
    """``PASSWORD_CHANGE_REQUIRED`` for a temporary password's holder, but for what it
    takes to change it."""
    if must_change_password(viewer) and action not in ALLOWED_BEFORE_PASSWORD_CHANGE:
        raise DomainError(ErrorCode.PASSWORD_CHANGE_REQUIRED)
