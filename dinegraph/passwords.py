"""Staff passwords (argon2id) and one-time codes (TOTP): the adapters of ``domain.staff``."""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_ISSUER = "dinegraph"


class Argon2Passwords:
    """argon2id with argon2-cffi's current parameters; a hash made with older ones is
    replaced at the next sign-in. The work runs in a thread, off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def spend(self, password: str) -> None:
        # Unknown accounts are checked against a hash of today's parameters, so they cost
        # what a real one does.
        if self._dummy is None:
            self._dummy = await self.hash("dinegraph: no such account")
        await asyncio.to_thread(self._verify, self._dummy, password)

    def hash_now(self, password: str) -> str:
        """For commands, which have no event loop to spare."""
        return self._hasher.hash(password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class PyotpCodes:
    """RFC 6238 codes: 6 digits, 30-second steps, one step of drift either way."""

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def uri(self, secret: str, username: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=_ISSUER)

    def step_of(self, secret: str, code: str, now: datetime) -> int | None:
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        for drift in (0, -1, 1):
            if hmac.compare_digest(totp.at(now, counter_offset=drift), code):
                return totp.timecode(now) + drift
        return None
