"""Who asked, recognised without a database round trip.

Every request with a token or an API key used to read the account behind it: the active
staff row, the member, the unrevoked key. Now:

- Staff accounts and API keys found are remembered for ``seconds``. Only what was found is
  kept, so a new key works at once; a revocation heard through the broker
  (``CredentialsChanged``) forgets its account in every process at once, and one the
  broker never carried (a command run against a server on the memory broker) is honoured
  within ``seconds``.
- Members are never deleted or disabled (an access token is short-lived; signing out
  revokes the refresh tokens behind it) and their ids only grow, so a member id exists
  once this process has seen an id at least as high: the newest id is read again only for
  a member newer than any it knew of.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from dinegraph.domain.identity import Account, CredentialsChanged, StaffViewer
from dinegraph.security import Credentials, StoredApiKey

_MAX_ENTRIES = 50_000  # beyond this many remembered accounts, the oldest are dropped

K = TypeVar("K")
V = TypeVar("V")


class Accounts(Credentials, Protocol):
    """Where the accounts are read (``dinegraph.db.identity.SqlCredentials``)."""

    async def newest_member_id(self) -> int:
        """The highest member id there is (0: none)."""
        ...


class CachedCredentials:
    """``security.Credentials`` that reads an account only when it does not know it."""

    def __init__(
        self,
        source: Accounts,
        *,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._seconds = seconds
        self._clock = clock
        # What was found, and when it was read.
        self._staff: dict[int, tuple[float, StaffViewer]] = {}
        self._keys: dict[str, tuple[float, StoredApiKey]] = {}
        self._changes = 0  # revocations heard: a read under way meanwhile is not kept
        self._members_up_to = 0  # every member id up to this one exists

    async def staff_viewer(self, staff_id: int) -> StaffViewer | None:
        return await self._recall(self._staff, staff_id, self._source.staff_viewer)

    async def member_exists(self, member_id: int) -> bool:
        if member_id > self._members_up_to:
            # Read by this request, after its token was issued: it sees the member if any.
            newest = await self._source.newest_member_id()
            self._members_up_to = max(self._members_up_to, newest)
        return 0 < member_id <= self._members_up_to

    async def api_key_by_prefix(self, prefix: str) -> StoredApiKey | None:
        return await self._recall(self._keys, prefix, self._source.api_key_by_prefix)

    def hear(self, event: object) -> None:
        """A ``CredentialsChanged`` from the broker: forget that account."""
        if not isinstance(event, CredentialsChanged):
            return
        self._changes += 1
        if event.account == Account.STAFF:
            self._staff.pop(event.account_id, None)
        elif event.account == Account.API_KEY:
            revoked = [
                p for p, (_, k) in self._keys.items() if k.viewer.api_key_id == event.account_id
            ]
            for prefix in revoked:
                del self._keys[prefix]

    def forget(self) -> None:
        """The broker may have missed a revocation: read every staff account and key afresh."""
        self._changes += 1
        self._staff.clear()
        self._keys.clear()

    async def _recall(
        self,
        kept: dict[K, tuple[float, V]],
        key: K,
        read: Callable[[K], Awaitable[V | None]],
    ) -> V | None:
        now, changes = self._clock(), self._changes
        found = kept.get(key)
        if found is not None and now - found[0] <= self._seconds:
            return found[1]
        value = await read(key)
        if value is None:
            kept.pop(key, None)
        elif changes == self._changes:  # no revocation heard while the read was under way
            if len(kept) >= _MAX_ENTRIES:
                for old in list(kept)[: _MAX_ENTRIES // 10]:
                    del kept[old]
            kept[key] = (now, value)
        return value
