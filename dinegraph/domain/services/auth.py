"""Member sign-in: SMS codes, WeChat, rotating refresh tokens, sign-out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from dinegraph.domain.behaviour import MAX_KEPT, check_device_id
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.members import (
    CODE_TTL,
    Member,
    check_code_request,
    check_code_usable,
    check_phone,
    default_nickname,
)
from dinegraph.domain.ports import SmsSender, UnitOfWork, WechatLogin
from dinegraph.domain.text import clean_text

WECHAT_CODE_MAX = 128  # wx.login codes are 32 characters; WeChat is not asked about longer
LOGIN_CODE_CALL = "sms.login_code"  # a call out: payload phone, code, expiresAt


class AccessTokens(Protocol):
    def issue(self, member_id: int) -> str: ...


@dataclass(frozen=True, slots=True)
class AuthConfig:
    code_key: bytes
    access_tokens: AccessTokens
    refresh_ttl: timedelta
    codes_per_ip_per_hour: int


@dataclass(frozen=True, slots=True)
class Session:
    member: Member
    access_token: str
    refresh_token: str
    new_member: bool
    merged: int = 0  # behaviour events of the device signed in from, now the member's


def _code_hash(key: bytes, phone: str, code: str) -> str:
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request_login_code(
    phone: str, ip: str, *, uow: UnitOfWork, auth: AuthConfig, now: datetime
) -> None:
    """Text a 6-digit code to ``phone``; limited per phone and per client address.

    The text is a call out (``send_login_code``), made once the code is committed.
    """
    phone = check_phone(phone)
    code = f"{secrets.randbelow(1_000_000):06d}"
    async with uow:
        last = await uow.members.last_code(phone)
        day_start = now - timedelta(days=1)
        check_code_request(
            now=now,
            last_sent=last.created_at if last else None,
            sent_today=await uow.members.codes_since(phone=phone, since=day_start),
        )
        from_ip = await uow.members.codes_since(ip=ip, since=now - timedelta(hours=1))
        if from_ip >= auth.codes_per_ip_per_hour:
            raise DomainError(ErrorCode.RATE_LIMITED, field=["phone"], seconds=3600)
        await uow.members.add_code(
            phone=phone,
            ip=ip,
            code_hash=_code_hash(auth.code_key, phone, code),
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        uow.call(
            OutboundCall(
                LOGIN_CODE_CALL,
                secrets.token_hex(16),  # the gateway's message id: a retry sends no second text
                {"phone": phone, "code": code, "expiresAt": (now + CODE_TTL).isoformat()},
            )
        )
        await uow.commit()


async def send_login_code(call: OutboundCall, *, sms: SmsSender, now: datetime) -> bool:
    """The handler of ``sms.login_code`` calls: text the code, unless it has expired
    meanwhile (False: nothing sent, nothing worth sending)."""
    if now >= datetime.fromisoformat(call.payload["expiresAt"]):
        return False
    await sms.send_login_code(call.payload["phone"], call.payload["code"])
    return True


async def login(
    phone: str,
    code: str,
    *,
    uow: UnitOfWork,
    auth: AuthConfig,
    now: datetime,
    device_id: str | None = None,
) -> Session:
    """Exchange a valid code for a session; the member is created on first sign-in. With
    ``device_id``, the events the visitor reported from that device become the member's in
    the same transaction."""
    device = check_device_id(device_id, ["deviceId"])
    phone = check_phone(phone)
    wrong = False
    async with uow:
        found = check_code_usable(await uow.members.last_code(phone), now)
        if not hmac.compare_digest(found.code_hash, _code_hash(auth.code_key, phone, code.strip())):
            # The failure must stick even though the call fails: commit, then refuse.
            await uow.members.code_failed(found.id)
            await uow.commit()
            wrong = True
        else:
            if not await uow.members.consume_code(found.id):
                raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
            member = await uow.members.by_phone(phone)
            new = member is None
            if member is None:
                member = await uow.members.add(
                    phone=phone, openid=None, nickname=default_nickname(phone)
                )
            session = await _open_session(uow, auth, member, now, new=new, device=device)
            await uow.commit()
    if wrong:
        raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
    return session


async def bind_phone(
    member_id: int, phone: str, code: str, *, uow: UnitOfWork, auth: AuthConfig, now: datetime
) -> Member:
    """Give a WeChat-only member a phone number, proven with a texted code."""
    phone = check_phone(phone)
    bound: Member | None = None
    async with uow:
        found = check_code_usable(await uow.members.last_code(phone), now)
        if not hmac.compare_digest(found.code_hash, _code_hash(auth.code_key, phone, code.strip())):
            await uow.members.code_failed(found.id)
            await uow.commit()
        else:
            member = await uow.members.get(member_id, lock=True)
            if member is None:
                raise DomainError(ErrorCode.UNAUTHENTICATED)
            holder = await uow.members.by_phone(phone)
            if holder is not None and holder.id != member_id:
                raise DomainError(ErrorCode.DUPLICATE, field=["phone"])
            if not await uow.members.consume_code(found.id):
                raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
            bound = replace(member, phone=phone)
            await uow.members.save_profile(bound)
            await uow.commit()
    if bound is None:
        raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
    return bound


async def login_with_wechat(
    code: str,
    *,
    uow: UnitOfWork,
    wechat: WechatLogin,
    auth: AuthConfig,
    now: datetime,
    phone_code: str | None = None,
    device_id: str | None = None,
) -> Session:
    """Sign in with the mini-program's wx.login code; a phone can be bound now or later.
    With ``device_id``, the device's behaviour events become the member's, as in ``login``.

    ``phone_code`` (from a getPhoneNumber button) gives the member WeChat's verified number.
    WeChat vouches for the number as an SMS code would, so when the number belongs to a
    member who signed in by SMS and has no WeChat account yet, that member is who signs in
    (and keeps the openid); a number held by another WeChat account is refused (DUPLICATE),
    as ``bindPhone`` refuses it. WeChat is asked before anything is written.
    """
    device = check_device_id(device_id, ["deviceId"])
    code = clean_text(code, ["code"], max_length=WECHAT_CODE_MAX, required=False)
    if not code:
        raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
    phone: str | None = None
    if phone_code is not None:
        phone_code = clean_text(phone_code, ["phoneCode"], max_length=WECHAT_CODE_MAX)
    identity = await wechat.identity_for(code)
    if phone_code is not None:
        phone = check_phone(await _wechat_phone(wechat, phone_code, "phoneCode"), "phoneCode")
    async with uow:
        member = await uow.members.by_openid(identity.openid)
        holder = await uow.members.by_phone(phone) if phone is not None else None
        new = False
        if member is None and holder is not None:
            if holder.wechat_openid is not None:
                raise DomainError(ErrorCode.DUPLICATE, field=["phoneCode"])
            member = replace(
                holder,
                wechat_openid=identity.openid,
                wechat_unionid=identity.unionid or holder.wechat_unionid,
            )
            await uow.members.save_profile(member)
        elif member is None:
            new = True
            member = await uow.members.add(
                phone=phone,
                openid=identity.openid,
                unionid=identity.unionid,
                nickname=default_nickname(phone),
            )
        else:
            changed = member
            if identity.unionid and member.wechat_unionid != identity.unionid:
                changed = replace(changed, wechat_unionid=identity.unionid)
            if phone is not None and member.phone is None:
                if holder is not None:
                    raise DomainError(ErrorCode.DUPLICATE, field=["phoneCode"])
                changed = replace(changed, phone=phone)
            if changed != member:
                member = changed
                await uow.members.save_profile(member)
        session = await _open_session(uow, auth, member, now, new=new, device=device)
        await uow.commit()
    return session


async def bind_wechat_phone(
    member_id: int, code: str, *, uow: UnitOfWork, wechat: WechatLogin
) -> Member:
    """Give the signed-in member the number WeChat verified (getPhoneNumber's code).

    The same rules as ``bind_phone``: a number held by another member is refused.
    """
    code = clean_text(code, ["code"], max_length=WECHAT_CODE_MAX)
    phone = check_phone(await _wechat_phone(wechat, code, "code"), "code")
    async with uow:
        member = await uow.members.get(member_id, lock=True)
        if member is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED)
        holder = await uow.members.by_phone(phone)
        if holder is not None and holder.id != member_id:
            raise DomainError(ErrorCode.DUPLICATE, field=["code"])
        bound = replace(member, phone=phone)
        if bound != member:
            await uow.members.save_profile(bound)
            await uow.commit()
    return bound


async def _wechat_phone(wechat: WechatLogin, code: str, field: str) -> str:
    """The number behind a getPhoneNumber code; refusals name the caller's field."""
    try:
        return await wechat.phone_for(code)
    except DomainError as exc:
        if exc.field is not None:
            exc.field = [field]
        raise


async def refresh_session(
    refresh_token: str, *, uow: UnitOfWork, auth: AuthConfig, now: datetime
) -> Session:
    """Trade a refresh token for a new pair; the old one stops working.

    A token presented after it was used means someone else holds a copy: the whole family
    is revoked and both holders must sign in again.
    """
    digest = _token_hash(refresh_token)
    revoked_family: str | None = None
    async with uow:
        found = await uow.members.refresh_token(digest)
        if found is None:
            raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
        member_id, family, expires_at, revoked = found
        if revoked or not await uow.members.revoke_refresh_token(digest, now):
            await uow.members.revoke_family(family, now)
            await uow.commit()
            revoked_family = family
        else:
            member = await uow.members.get(member_id)
            if member is None or now >= expires_at:
                raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
            session = await _open_session(uow, auth, member, now, new=False, family=family)
            await uow.commit()
    if revoked_family is not None:
        raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
    return session


async def logout(refresh_token: str, *, uow: UnitOfWork, now: datetime) -> None:
    """End the session: every token of its family is revoked."""
    async with uow:
        found = await uow.members.refresh_token(_token_hash(refresh_token))
        if found is None:
            raise DomainError(ErrorCode.INVALID_TOKEN, field=["refreshToken"])
        await uow.members.revoke_family(found[1], now)
        await uow.commit()


async def _open_session(
    uow: UnitOfWork,
    auth: AuthConfig,
    member: Member,
    now: datetime,
    *,
    new: bool,
    family: str | None = None,
    device: str | None = None,
) -> Session:
    """A new token pair; signing in from ``device``, the device's events move over with it."""
    merged = (
        await uow.members.take_device_events(device, member.id, keep=MAX_KEPT)
        if device is not None
        else 0
    )
    refresh = secrets.token_urlsafe(32)
    await uow.members.add_refresh_token(
        member_id=member.id,
        family=family or secrets.token_hex(16),
        token_hash=_token_hash(refresh),
        expires_at=now + auth.refresh_ttl,
    )
    return Session(member, auth.access_tokens.issue(member.id), refresh, new, merged)
