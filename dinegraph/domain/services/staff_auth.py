"""Staff sign-in: passwords with lockout, optional TOTP, rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.staff import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_MAX_LENGTH,
    LoginPolicy,
    PasswordHashing,
    StaffAccount,
    StaffAccounts,
    StaffSession,
    StaffTokens,
    TotpCodes,
    TotpEnrolment,
    check_new_password,
    locked,
)


@dataclass(frozen=True, slots=True)
class StaffAuth:
    """What staff sign-in needs, chosen by the wiring."""

    passwords: PasswordHashing
    totp: TotpCodes
    tokens: StaffTokens
    policy: LoginPolicy


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invalid() -> DomainError:
    # One answer for an unknown username and a wrong password.
    return DomainError(ErrorCode.INVALID_CREDENTIALS, field=["password"])


async def staff_login(
    username: str,
    password: str,
    totp_code: str | None,
    ip: str,
    *,
    accounts: StaffAccounts,
    auth: StaffAuth,
    now: datetime,
) -> StaffSession:
    """Sign in with username and password (and a TOTP code when the account has TOTP).

    Each attempt is counted before its password is checked, by one atomic statement: of
    any number of racing guesses, only ``max_failures`` are ever checked before the lock.
    """
    policy = auth.policy
    window_start = now - policy.failure_window
    if await accounts.failures_from(ip, window_start) >= policy.failures_per_address:
        raise DomainError(
            ErrorCode.RATE_LIMITED, seconds=int(policy.failure_window.total_seconds())
        )
    name = username.strip()
    account = None
    if 0 < len(name) <= USERNAME_MAX_LENGTH and len(password) <= PASSWORD_MAX_LENGTH:
        account = await accounts.by_username(name)
    if account is None or account.password_hash is None:
        await auth.passwords.spend(password[:PASSWORD_MAX_LENGTH])
        await accounts.record_failure(ip, now)
        raise _invalid()
    if account.locked_until is not None and account.locked_until > now:
        raise locked(account.locked_until)
    taken = await accounts.take_attempt(account.id, now, window_start)
    if taken is None or taken > policy.max_failures:
        raise locked(await accounts.lock(account.id, now + policy.lock_for))
    if not await auth.passwords.verify(account.password_hash, password):
        await _failed(accounts, policy, account.id, taken, ip, now)
        raise _invalid()
    if not account.active:
        await accounts.give_back_attempt(account.id)
        raise DomainError(ErrorCode.ACCOUNT_DISABLED)
    if account.totp_secret is not None:
        code = (totp_code or "").strip()
        if not code:
            await accounts.give_back_attempt(account.id)
            raise DomainError(ErrorCode.TOTP_REQUIRED, field=["totpCode"])
        step = auth.totp.step_of(account.totp_secret, code, now)
        if step is None or not await accounts.use_totp_step(account.id, step):
            await _failed(accounts, policy, account.id, taken, ip, now)
            raise DomainError(ErrorCode.INVALID_TOTP, field=["totpCode"])
    rehashed = None
    if auth.passwords.needs_rehash(account.password_hash):
        rehashed = await auth.passwords.hash(password)
    await accounts.signed_in(account.id, rehashed)
    return await _open_session(accounts, auth, account, now)


async def _failed(
    accounts: StaffAccounts, policy: LoginPolicy, staff_id: int, taken: int, ip: str, now: datetime
) -> None:
    await accounts.record_failure(ip, now)
    if taken >= policy.max_failures:
        raise locked(await accounts.lock(staff_id, now + policy.lock_for))


async def refresh_staff_session(
    refresh_token: str, *, accounts: StaffAccounts, auth: StaffAuth, now: datetime
) -> StaffSession:
    """Trade a refresh token for a new pair; the old one stops working. A token presented
    after it was used means someone else holds a copy: its whole family is revoked."""
    digest = _token_hash(refresh_token.strip())
    found = await accounts.refresh_token(digest)
    if found is None:
        raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
    if found.revoked or not await accounts.revoke_refresh_token(digest, now):
        await accounts.revoke_family(found.family, now)
        raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
    account = await accounts.get(found.staff_id)
    if account is None or now >= found.expires_at:
        raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
    if not account.active:
        await accounts.revoke_family(found.family, now)
        raise DomainError(ErrorCode.ACCOUNT_DISABLED)
    return await _open_session(accounts, auth, account, now, family=found.family)


async def staff_logout(refresh_token: str, *, accounts: StaffAccounts, now: datetime) -> None:
    """End the session: every refresh token of its family is revoked (its access token
    ends within minutes on its own)."""
    found = await accounts.refresh_token(_token_hash(refresh_token.strip()))
    if found is None:
        raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
    await accounts.revoke_family(found.family, now)


async def _open_session(
    accounts: StaffAccounts,
    auth: StaffAuth,
    account: StaffAccount,
    now: datetime,
    *,
    family: str | None = None,
) -> StaffSession:
    refresh = secrets.token_urlsafe(32)
    await accounts.add_refresh_token(
        staff_id=account.id,
        family=family or secrets.token_hex(16),
        token_hash=_token_hash(refresh),
        expires_at=now + auth.policy.refresh_ttl,
    )
    access, expires_at = auth.tokens.issue(account.viewer())
    return StaffSession(account, access, expires_at, refresh)


async def signed_in_account(staff_id: int, accounts: StaffAccounts) -> StaffAccount:
    account = await accounts.get(staff_id)
    if account is None or not account.active:
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    return account


async def begin_totp_enrolment(
    staff_id: int, *, accounts: StaffAccounts, auth: StaffAuth
) -> TotpEnrolment:
    """A new secret for the signed-in account, shown once; TOTP is on only once a code
    from it is confirmed."""
    account = await signed_in_account(staff_id, accounts)
    secret = auth.totp.new_secret()
    await accounts.set_totp_pending(account.id, secret)
    return TotpEnrolment(secret=secret, uri=auth.totp.uri(secret, account.username))


async def confirm_totp_enrolment(
    staff_id: int, code: str, *, accounts: StaffAccounts, auth: StaffAuth, now: datetime
) -> StaffAccount:
    account = await signed_in_account(staff_id, accounts)
    secret = account.totp_pending_secret
    if secret is None:
        raise DomainError(ErrorCode.INVALID_TOTP, field=["code"])
    step = auth.totp.step_of(secret, code.strip(), now)
    if step is None or not await accounts.enable_totp(account.id, secret, step):
        raise DomainError(ErrorCode.INVALID_TOTP, field=["code"])
    return await signed_in_account(staff_id, accounts)


async def disable_totp(
    staff_id: int, password: str, *, accounts: StaffAccounts, auth: StaffAuth
) -> StaffAccount:
    account = await signed_in_account(staff_id, accounts)
    if account.password_hash is None or not await auth.passwords.verify(
        account.password_hash, password
    ):
        raise _invalid()
    await accounts.disable_totp(account.id)
    return await signed_in_account(staff_id, accounts)


async def change_my_password(
    staff_id: int,
    current: str,
    new: str,
    *,
    accounts: StaffAccounts,
    auth: StaffAuth,
) -> StaffAccount:
    """The signed-in staff member's own password; clears ``must_change_password``."""
    account = await signed_in_account(staff_id, accounts)
    if account.password_hash is None or not await auth.passwords.verify(
        account.password_hash, current
    ):
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, field=["currentPassword"])
    check_new_password(new, account.username, ["newPassword"])
    if new == current:
        raise DomainError(
            ErrorCode.WEAK_PASSWORD, field=["newPassword"], min_length=PASSWORD_MIN_LENGTH
        )
    await accounts.set_password(account.id, await auth.passwords.hash(new), must_change=False)
    return await signed_in_account(staff_id, accounts)
