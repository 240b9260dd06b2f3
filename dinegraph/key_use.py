"""When partner API keys were last used, kept off the request path.

A request with a key only notes its id in memory (at most once a minute per key); a task
of the server writes the noted keys' ``last_used_at`` in one statement every few seconds.
So ``apiKeys { lastUsedAt }`` is right to about a minute, and a busy key costs no write
per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

log = logging.getLogger("dinegraph")


class KeyUse:
    def __init__(self, *, every_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._every = every_seconds
        self._clock = clock
        self._noted: dict[int, float] = {}  # key id: when its use was last noted for writing
        self._pending: set[int] = set()

    def used(self, key_id: int) -> None:
        now = self._clock()
        last = self._noted.get(key_id)
        if last is None or now - last >= self._every:
            self._noted[key_id] = now
            self._pending.add(key_id)

    def take(self) -> set[int]:
        """The keys used since the last take, and not written in the last minute."""
        taken, self._pending = self._pending, set()
        return taken

    async def write_forever(
        self,
        write: Callable[[set[int], datetime], Awaitable[None]],
        now: Callable[[], datetime],
        every_seconds: float,
    ) -> None:
        """Write what was noted, every ``every_seconds``, for as long as the server runs."""
        while True:
            await asyncio.sleep(every_seconds)
            await self.write_once(write, now)

    async def write_once(
        self, write: Callable[[set[int], datetime], Awaitable[None]], now: Callable[[], datetime]
    ) -> None:
        taken = self.take()
        if not taken:
            return
        try:
            await write(taken, now())
        except Exception:
            # Noted again, to be written next round.
            self._pending |= taken
            log.exception("writing the API keys' last use failed; trying again next round")
