"""Bearer tokens (JWT) and partner API keys: issuing them and turning them back into viewers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import jwt
import orjson
from itsdangerous import BadSignature, URLSafeSerializer

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    ANONYMOUS,
    MemberViewer,
    PartnerViewer,
    StaffViewer,
    Viewer,
)
from dinegraph.domain.invites import Invite, InviteKind
from dinegraph.settings import Settings

_ALGORITHM = "HS256"
_ISSUER = "dinegraph"
_KEY_PREFIX = "dg"


class InvalidCredentials(Exception):
    """The request carried credentials, and they are wrong, expired or revoked."""


class StoredApiKey(Protocol):
    """A partner API key as stored: only its hash, and the viewer it stands for."""

    @property
    def viewer(self) -> PartnerViewer: ...

    @property
    def key_hash(self) -> str: ...


class Credentials(Protocol):
    """The accounts behind credentials (``dinegraph.db.identity.SqlCredentials``)."""

    async def staff_viewer(self, staff_id: int) -> StaffViewer | None:
        """The active staff account with this id, if any."""
        ...

    async def member_exists(self, member_id: int) -> bool: ...

    async def api_key_by_prefix(self, prefix: str) -> StoredApiKey | None:
        """The unrevoked API key with this prefix, if any."""
        ...


def _issue(settings: Settings, subject: str, ttl: timedelta, now: datetime | None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"iss": _ISSUER, "sub": subject, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, settings.signing_key, algorithm=_ALGORITHM)


def issue_staff_token(
    settings: Settings,
    viewer: StaffViewer,
    *,
    now: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    ttl = ttl or timedelta(hours=settings.staff_token_ttl_hours)
    return _issue(settings, f"staff:{viewer.staff_id}", ttl, now)


class StaffAccessTokens:
    """Short staff access tokens for staffLogin sessions (the CLI's last 12 hours)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ttl = timedelta(minutes=settings.staff_access_token_minutes)

    def issue(self, viewer: StaffViewer) -> tuple[str, datetime]:
        # Real time, as the token's reader checks it; whole seconds, as its exp claim has.
        issued = datetime.now(UTC).replace(microsecond=0)
        token = issue_staff_token(self._settings, viewer, now=issued, ttl=self._ttl)
        return token, issued + self._ttl


def issue_member_token(settings: Settings, member_id: int, *, now: datetime | None = None) -> str:
    ttl = timedelta(minutes=settings.member_token_ttl_minutes)
    return _issue(settings, f"member:{member_id}", ttl, now)


class MemberAccessTokens:
    """Short-lived member access tokens (JWT), for the sign-in services."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def issue(self, member_id: int) -> str:
        return issue_member_token(self._settings, member_id)


def derived_key(settings: Settings, purpose: bytes) -> bytes:
    """A key for one purpose (login codes, share codes), never the token signing key itself."""
    return hmac.new(settings.signing_key.encode(), purpose, hashlib.sha256).digest()


class SignedShareCodes:
    """Share codes for group-buys and bargains, signed with itsdangerous.

    The code carries the kind, campaign, group or bargain, inviter and expiry as a compact
    list (a short code fits a QR code and a WeChat share card); its signature is keyed for
    this purpose only, so a code from another part of the product never passes.
    """

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeSerializer(key, salt="campaign-share-code")

    def sign(self, invite: Invite) -> str:
        return str(
            self._serializer.dumps(
                [
                    invite.kind.value,
                    invite.campaign_id,
                    invite.target_id,
                    invite.inviter_id,
                    int(invite.expires_at.timestamp()),
                ]
            )
        )

    def read(self, code: str) -> Invite:
        try:
            kind, campaign_id, target_id, inviter_id, expires = self._serializer.loads(code.strip())
            return Invite(
                kind=InviteKind(kind),
                campaign_id=int(campaign_id),
                target_id=int(target_id),
                inviter_id=int(inviter_id),
                expires_at=datetime.fromtimestamp(int(expires), UTC),
            )
        except (BadSignature, ValueError, TypeError) as exc:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"]) from exc


class VerifiedTokens:
    """Claims of access tokens whose signature and issuer were checked, kept until the
    token expires (its ``exp`` is compared again on every use), the most recent ``size``.

    A mini-program page sends the same token with each of its requests; checking it once
    saves the HMAC, the base64 and JSON decoding and the claims' checks (about a tenth of a
    cheap request's CPU). Only tokens that verified are kept, under the key that signed them.
    Who the token names is still looked up on every request (``Credentials``), so a disabled
    account or a deleted member stops at once as before.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._claims: OrderedDict[tuple[str, str], dict[str, object]] = OrderedDict()

    def get(self, signing_key: str, token: str, now: float) -> dict[str, object] | None:
        key = (signing_key, token)
        claims = self._claims.get(key)
        if claims is None:
            return None
        if not now < float(cast(float, claims["exp"])):
            del self._claims[key]
            return None
        self._claims.move_to_end(key)
        return claims

    def keep(self, signing_key: str, token: str, claims: dict[str, object]) -> None:
        self._claims[(signing_key, token)] = claims
        while len(self._claims) > self.size:
            self._claims.popitem(last=False)


_verified = VerifiedTokens()

# The header of every token this product issues, as PyJWT writes it.
_OWN_HEADER = jwt.encode({}, "k" * 32, algorithm=_ALGORITHM).partition(".")[0]
_OWN_CLAIMS = frozenset({"iss", "sub", "iat", "exp"})


def _unpadded_b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _own_token_claims(signing_key: str, token: str, now: float) -> dict[str, object] | None:
    """The claims of a token exactly as this product issues them, checked without PyJWT:
    our header, a valid HS256 signature, our four claims of the right types, issued by us,
    not before its iat, before its exp. None for anything else, which PyJWT then decides.

    Every buyer of a flash sale brings a token of their own, so none is in ``_verified``;
    PyJWT's general decoding was about a tenth of a refused buyer's CPU (BENCHMARKS.md).
    This accepts only what PyJWT accepts with the options of ``_decode`` (a test holds both
    to it), so a token it does not accept is never refused here but passed on.
    """
    header, _, rest = token.partition(".")
    payload, dot, signature = rest.partition(".")
    if header != _OWN_HEADER or not dot or "." in signature:
        return None
    signed = hmac.new(signing_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    try:
        if not hmac.compare_digest(signed.digest(), _unpadded_b64(signature)):
            return None
        claims = orjson.loads(_unpadded_b64(payload))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or claims.keys() != _OWN_CLAIMS:
        return None
    iat, exp = claims["iat"], claims["exp"]
    if (
        claims["iss"] != _ISSUER
        or not isinstance(claims["sub"], str)
        or type(iat) is not int
        or type(exp) is not int
        or not iat <= now < exp
    ):
        return None
    return cast(dict[str, object], claims)


def _decode(settings: Settings, token: str) -> dict[str, object]:
    now = time.time()
    kept = _verified.get(settings.signing_key, token, now)
    if kept is not None:
        return kept
    own = _own_token_claims(settings.signing_key, token, now)
    if own is not None:
        _verified.keep(settings.signing_key, token, own)
        return own
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidCredentials(str(exc)) from exc
    _verified.keep(settings.signing_key, token, claims)
    return claims


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    """A random key ``dg_<prefix>_<secret>``; the prefix finds it, only its hash is stored."""
    prefix = secrets.token_hex(6)
    key = f"{_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=prefix, key_hash=hash_api_key(key))


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; a password hash would add nothing.
    return hashlib.sha256(key.encode()).hexdigest()


async def viewer_from_headers(
    settings: Settings,
    credentials: Credentials,
    *,
    authorization: str | None,
    api_key: str | None,
) -> Viewer:
    """Who is asking: a bearer token, an API key, or nobody. Bad credentials raise."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidCredentials("Authorization must be 'Bearer <token>'")
        return await _viewer_from_token(settings, credentials, token.strip())
    if api_key:
        return await _viewer_from_api_key(credentials, api_key.strip())
    return ANONYMOUS


async def _viewer_from_token(settings: Settings, credentials: Credentials, token: str) -> Viewer:
    claims = _decode(settings, token)
    kind, _, raw_id = str(claims["sub"]).partition(":")
    if kind == "staff" and raw_id.isdigit():
        staff = await credentials.staff_viewer(int(raw_id))
        if staff is not None:
            return staff
    if kind == "member" and raw_id.isdigit() and await credentials.member_exists(int(raw_id)):
        # Access tokens are short-lived; signing out revokes the refresh tokens behind them.
        return MemberViewer(int(raw_id))
    raise InvalidCredentials("unknown or inactive account")


async def _viewer_from_api_key(credentials: Credentials, key: str) -> Viewer:
    scheme, _, rest = key.partition("_")
    prefix, _, secret = rest.partition("_")  # the prefix is hex: the first "_" ends it
    if scheme != _KEY_PREFIX or not prefix or not secret:
        raise InvalidCredentials("malformed API key")
    stored = await credentials.api_key_by_prefix(prefix)
    if stored is None or not hmac.compare_digest(stored.key_hash, hash_api_key(key)):
        raise InvalidCredentials("unknown or revoked API key")
    return stored.viewer
