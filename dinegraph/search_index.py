"""The process's search index and popularity figures, kept while they are true.

The index is built from the catalogue and the synonyms (``domain.search``) and depends on
two stamps (``domain.stamps``): ``catalog`` and ``search``. Like the read cache, the process
counts the moves of stamps it hears (its own commits at once, others' through the broker);
the counts are read *before* the catalogue is, so an index built while a change commits is
never taken as fresh. Until the process follows the stamps (``following``), and at most
``max_age`` seconds in any case, every search builds afresh. Whatever the index says, the
resolver reads the products it names again and shows only those listed and on sale now.

Popularity (units sold per product at a store) only orders results: it is kept a few
minutes per store and read again after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from dinegraph.domain.events import Event
from dinegraph.domain.search import SearchDocument, SynonymSet
from dinegraph.domain.search_matching import SearchIndex, build_index
from dinegraph.domain.search_text import load_dictionaries
from dinegraph.domain.stamps import CATALOG, EVERYTHING, SEARCH, ReadsChanged
from dinegraph.read_cache import StampCounts, Stamps

Catalogue = tuple[list[SearchDocument], list[SynonymSet]]
_STORES_KEPT = 4096
log = logging.getLogger("dinegraph.search")


class SearchIndexes:
    def __init__(self, *, max_age: float = 300.0, popularity_seconds: float = 600.0) -> None:
        self.stamps = Stamps()
        self.following = False
        self.builds = 0
        self._max_age = max_age
        self._popularity_seconds = popularity_seconds
        self._index: SearchIndex | None = None
        self._read: StampCounts = ()
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None
        self._popularity: dict[int, tuple[float, dict[int, int]]] = {}

    async def warm(self) -> None:
        """Load the text dictionaries off the event loop, so the first search need not."""
        try:
            await asyncio.to_thread(load_dictionaries)
        except Exception:  # the first search loads them, or says why it cannot
            log.warning("search dictionaries not loaded ahead", exc_info=True)

    def heard(self, event: Event) -> None:
        """A broker's (or this process's own) news of committed changes."""
        if isinstance(event, ReadsChanged):
            self.stamps.move(event.stamps)

    def forget(self) -> None:
        """News may have been missed: the next search builds afresh."""
        self.stamps.move([EVERYTHING])
        self._popularity.clear()

    async def current(self, load: Callable[[], Awaitable[Catalogue]]) -> SearchIndex:
        """The index of the catalogue as last committed; built (once, however many ask at
        the same time) when a stamp it read has moved since."""
        index = self._fresh()
        if index is not None:
            return index
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            index = self._fresh()
            if index is not None:
                return index
            read = self.stamps.read([CATALOG, SEARCH])
            documents, synonyms = await load()
            # Segmenting a few thousand names takes a while: off the event loop.
            index = await asyncio.to_thread(build_index, documents, synonyms)
            self._index, self._read = index, read
            self._expires = time.monotonic() + self._max_age
            self.builds += 1
            return index

    async def units_sold(
        self, store_id: int, load: Callable[[], Awaitable[dict[int, int]]]
    ) -> dict[int, int]:
        """Units sold per product at a store, read again every few minutes."""
        now = time.monotonic()
        kept = self._popularity.get(store_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        units = await load()
        if len(self._popularity) >= _STORES_KEPT:
            self._popularity.clear()
        self._popularity[store_id] = (now + self._popularity_seconds, units)
        return units

    def _fresh(self) -> SearchIndex | None:
        if (
            self._index is not None
            and self.following
            and self.stamps.unmoved(self._read)
            and time.monotonic() < self._expires
        ):
            return self._index
        return None
