"""Cached public reads: answers kept per process, dropped when a committed change moves
a stamp they depend on.

- Only public reads are kept (``public_reads``): queries whose every field shows anyone but
  staff the same thing. An answer is keyed by what makes it: the request's document (its
  text or persisted hash), variables, operation name and extensions, the language and the
  media type asked for, and the viewer's class. Staff (who see drafts and campaigns not
  started) always execute, as do mutations, subscriptions and answers with errors.
- Every committed change moves stamps (``domain.stamps``); each process counts the moves it
  hears (``Stamps``): its own at once around COMMIT, the others' through the broker. A miss
  reads the counts of its stamps *before* it executes; a lookup keeps an answer only while
  those counts have not moved. So a read racing a commit is never kept as fresh, and a read
  that begins after this process committed, or heard of a commit, never gets an answer from
  before it. Another process's commit counts from when its news arrives.
- Time moves answers too: a campaign starts or ends. Resolvers report when the answer being
  built stops being true (``Context.changes_at``) and it is kept no longer. Every answer is
  also kept at most ``read_cache_max_age_seconds``, for a change no process heard of (a
  broker connection down for a while, a write made outside any server).
- Bounded by entries and bytes; the least recently used answer goes first.
- The ETag is a digest of the key and the answer's bytes: two processes, or two moments,
  give the same ETag exactly when they would send the same bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson

from dinegraph.domain.campaigns import may_see_scheduled
from dinegraph.domain.events import Event
from dinegraph.domain.identity import Viewer, can_see_unlisted
from dinegraph.domain.stamps import EVERYTHING, ReadsChanged

StampCounts = tuple[tuple[str, int], ...]

# What an answer costs beyond its bytes: the key, the entry, the dictionary slot.
_ENTRY_OVERHEAD = 256


def reads_class(viewer: Viewer) -> str | None:
    """The class of viewers shown the same public reads; None when the viewer sees more
    than the public (staff: unlisted products, campaigns not started), never cached."""
    if can_see_unlisted(viewer) or may_see_scheduled(viewer):
        return None
    return "public"


def answer_key(*parts: object) -> bytes | None:
    """A digest of what makes an answer; None when it is no plain JSON (an integer beyond
    64 bits: the request is refused further on, or runs uncached)."""
    try:
        encoded = orjson.dumps(parts)
    except orjson.JSONEncodeError:
        return None
    return hashlib.blake2b(encoded, digest_size=16).digest()


class Stamps:
    """How many times this process has heard each stamp move."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def move(self, names: Iterable[str]) -> None:
        counts = self._counts
        for name in names:
            counts[name] = counts.get(name, 0) + 1

    def read(self, names: Iterable[str]) -> StampCounts:
        counts = self._counts
        return tuple((name, counts.get(name, 0)) for name in sorted({*names, EVERYTHING}))

    def unmoved(self, read: StampCounts) -> bool:
        counts = self._counts
        return all(counts.get(name, 0) == count for name, count in read)


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    etag: str
    stamps: StampCounts  # read before the answer was made
    expires: float  # time.monotonic()
    changes_at: datetime | None  # on the server's clock

    @property
    def size(self) -> int:
        return len(self.body) + _ENTRY_OVERHEAD


class ReadCache:
    """The process's public answers. It serves only while ``open``: once the process
    follows the stamps on its broker (``DinegraphGraphQL.start_read_cache``)."""

    def __init__(self, *, entries: int, max_bytes: int, max_age: float) -> None:
        self.stamps = Stamps()
        self._entries = entries
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._answers: OrderedDict[bytes, Answer] = OrderedDict()
        self._bytes = 0
        self.open = False
        self.hits = 0
        self.misses = 0

    @property
    def serving(self) -> bool:
        return self.open and self._entries > 0

    def heard(self, event: Event) -> None:
        """A broker's (or this process's own) news of committed changes."""
        if isinstance(event, ReadsChanged):
            self.stamps.move(event.stamps)

    def get(self, key: bytes, now: datetime) -> Answer | None:
        """The answer kept under ``key``, unless a stamp it read has moved since or its
        time has come (``now`` on the server's clock)."""
        answer = self._answers.get(key)
        if answer is not None and self._fresh(answer, now):
            self._answers.move_to_end(key)
            self.hits += 1
            return answer
        if answer is not None:
            self._drop(key)
        self.misses += 1
        return None

    def keep(
        self,
        key: bytes,
        body: bytes,
        *,
        stamps: StampCounts,
        changes_at: datetime | None,
        now: datetime,
    ) -> Answer:
        """Keep an answer made after reading ``stamps``; a stale one is returned, not kept."""
        etag = '"' + hashlib.blake2b(key + body, digest_size=16).hexdigest() + '"'
        answer = Answer(body, etag, stamps, time.monotonic() + self._max_age, changes_at)
        if not self.serving or not self._fresh(answer, now):
            return answer
        if key in self._answers:
            self._drop(key)
        self._answers[key] = answer
        self._bytes += answer.size
        while self._answers and (
            len(self._answers) > self._entries or self._bytes > self._max_bytes
        ):
            self._drop(next(iter(self._answers)))
        return answer

    def forget(self) -> None:
        """Drop every answer, and every answer being made: news may have been missed."""
        self.stamps.move([EVERYTHING])
        self._answers.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._answers)

    def _fresh(self, answer: Answer, now: datetime) -> bool:
        return (
            self.stamps.unmoved(answer.stamps)
            and time.monotonic() < answer.expires
            and (answer.changes_at is None or now < answer.changes_at)
        )

    def _drop(self, key: bytes) -> None:
        self._bytes -= self._answers.pop(key).size


# A CDN may keep a public answer but must ask again each time (the ETag makes that cheap);
# credentials, the language and the media type asked for each make another answer.
_PUBLIC = "public, max-age=0, must-revalidate"
_PRIVATE = "private, max-age=0, must-revalidate"
_VARY = "Accept, Accept-Language, Authorization, X-Api-Key"


@dataclass(slots=True)
class ReadNote:
    """A request the read cache may answer, from looking it up to sending the answer."""

    key: bytes
    authenticated: bool  # its answer is the public one, but only its client may keep it
    if_none_match: str | None
    answer: Answer | None = None  # kept, or just made and kept
    stamps: StampCounts | None = None  # read before executing, when it is a public read
    changes_at: datetime | None = None

    def http_headers(self) -> dict[str, str]:
        """What a GET answer carries for caches along the way."""
        assert self.answer is not None
        return {
            "etag": self.answer.etag,
            "cache-control": _PRIVATE if self.authenticated else _PUBLIC,
            "vary": _VARY,
        }

    def not_modified(self) -> bool:
        """Whether the client already has the answer (``If-None-Match``, weakly compared)."""
        if self.if_none_match is None or self.answer is None:
            return False
        etag = self.answer.etag
        return any(
            tag == "*" or tag.removeprefix("W/") == etag
            for tag in (t.strip() for t in self.if_none_match.split(","))
        )
