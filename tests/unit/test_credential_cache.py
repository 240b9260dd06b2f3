"""Who asked, recognised without a database round trip, and forgotten on revocation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import SecretStr

from dinegraph.credential_cache import CachedCredentials
from dinegraph.domain.identity import (
    Account,
    CredentialsChanged,
    PartnerViewer,
    StaffRole,
    StaffViewer,
)
from dinegraph.security import StoredApiKey, viewer_from_headers
from dinegraph.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Key:
    viewer: PartnerViewer
    key_hash: str


@dataclass
class CountingAccounts:
    """The accounts as stored, counting each read (what would be a database round trip)."""

    staff: dict[int, StaffViewer] = field(default_factory=dict)
    members: set[int] = field(default_factory=set)
    keys: dict[str, Key] = field(default_factory=dict)
    reads: int = 0
    gate: asyncio.Event | None = None  # a read waits here when set

    async def _read(self, found: T) -> T:
        """What was found, answered once the gate (if any) opens."""
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return found

    async def staff_viewer(self, staff_id: int) -> StaffViewer | None:
        return await self._read(self.staff.get(staff_id))

    async def member_exists(self, member_id: int) -> bool:
        return await self._read(member_id in self.members)

    async def newest_member_id(self) -> int:
        return await self._read(max(self.members, default=0))

    async def api_key_by_prefix(self, prefix: str) -> StoredApiKey | None:
        return await self._read(self.keys.get(prefix))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def cached(accounts: CountingAccounts, seconds: float = 5) -> tuple[CachedCredentials, Clock]:
    clock = Clock()
    return CachedCredentials(accounts, seconds=seconds, clock=clock), clock


MANAGER = StaffViewer(4, "store-manager-1", StaffRole.STORE_MANAGER, frozenset({1}))
POS = Key(PartnerViewer(9, "POS", frozenset({"stock:write"}), frozenset({1})), "h")


async def test_an_account_is_read_once_within_the_setting_then_again() -> None:
    accounts = CountingAccounts(staff={4: MANAGER}, keys={"ab12": POS})
    cache, clock = cached(accounts)
    for _ in range(3):
        assert await cache.staff_viewer(4) == MANAGER
        assert await cache.api_key_by_prefix("ab12") == POS
    assert accounts.reads == 2
    clock.now += 5.1
    assert await cache.staff_viewer(4) == MANAGER
    assert accounts.reads == 3


async def test_what_is_not_found_is_read_every_time_so_a_new_key_works_at_once() -> None:
    accounts = CountingAccounts()
    cache, _ = cached(accounts)
    assert await cache.api_key_by_prefix("ab12") is None
    accounts.keys["ab12"] = POS
    assert await cache.api_key_by_prefix("ab12") == POS
    assert accounts.reads == 2


async def test_members_up_to_the_newest_seen_are_known_without_a_read() -> None:
    """Members are never deleted and their ids only grow: one read of the newest id
    recognises every member up to it, however many sign in for the first time."""
    accounts = CountingAccounts(members=set(range(1, 5001)))
    cache, _ = cached(accounts)
    assert await cache.member_exists(17)
    assert all([await cache.member_exists(m) for m in range(1, 5001)])
    assert accounts.reads == 1
    assert not await cache.member_exists(5001)  # not yet
    accounts.members.add(5001)  # signs up
    assert await cache.member_exists(5001)
    assert not await cache.member_exists(0) and not await cache.member_exists(-3)
    assert accounts.reads == 3


async def test_a_revocation_heard_forgets_that_account_only() -> None:
    accounts = CountingAccounts(staff={4: MANAGER}, keys={"ab12": POS})
    cache, _ = cached(accounts)
    await cache.staff_viewer(4)
    await cache.api_key_by_prefix("ab12")
    del accounts.keys["ab12"], accounts.staff[4]
    cache.hear(CredentialsChanged(Account.API_KEY.value, 9))
    assert await cache.api_key_by_prefix("ab12") is None
    assert await cache.staff_viewer(4) == MANAGER  # not heard of yet: remembered
    cache.hear(CredentialsChanged(Account.STAFF.value, 4))
    assert await cache.staff_viewer(4) is None
    assert accounts.reads == 4


async def test_a_revocation_heard_while_a_read_is_under_way_keeps_that_read_out() -> None:
    accounts = CountingAccounts(keys={"ab12": POS}, gate=asyncio.Event())
    cache, _ = cached(accounts)
    reading = asyncio.create_task(cache.api_key_by_prefix("ab12"))
    await asyncio.sleep(0)
    cache.hear(CredentialsChanged(Account.API_KEY.value, 9))  # committed after the read
    del accounts.keys["ab12"]
    assert accounts.gate is not None
    accounts.gate.set()
    assert await reading == POS  # what the read saw
    assert await cache.api_key_by_prefix("ab12") is None  # but it was not kept


async def test_a_lost_broker_forgets_every_account() -> None:
    accounts = CountingAccounts(staff={4: MANAGER}, keys={"ab12": POS})
    cache, _ = cached(accounts)
    await cache.staff_viewer(4)
    await cache.api_key_by_prefix("ab12")
    cache.forget()
    await cache.staff_viewer(4)
    await cache.api_key_by_prefix("ab12")
    assert accounts.reads == 4


async def test_viewers_from_headers_read_no_account_when_remembered() -> None:
    from dinegraph.security import hash_api_key, issue_member_token, new_api_key

    settings = Settings(secret_key=SecretStr("k" * 40))
    key = new_api_key()
    accounts = CountingAccounts(
        members={8}, keys={key.prefix: Key(POS.viewer, hash_api_key(key.key))}
    )
    cache, _ = cached(accounts)
    token = f"Bearer {issue_member_token(settings, 8)}"
    for _ in range(3):
        await viewer_from_headers(settings, cache, authorization=token, api_key=None)
        await viewer_from_headers(settings, cache, authorization=None, api_key=key.key)
    assert accounts.reads == 2
