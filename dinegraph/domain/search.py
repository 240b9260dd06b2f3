"""Product search: what it reads, the rules of its input, and the ranking.

Search reads the listed products (names, tags, categories, descriptions, SKU names) and the
synonyms head office keeps; ``search_matching`` builds them into an index and matches a
query against it. A product matches by its name (exact, prefix, contained, its words), a
tag, a synonym, a category, pinyin or initials ("tcpg", "tangcu"), a typo's likeness, or its
description, in that order of quality; popularity at the store moves results within a few
points (``rank``), never a description match above a name match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dinegraph.domain.catalog import Channel, Product
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.search_text import normalise
from dinegraph.domain.text import check_characters

QUERY_MAX = 50
"""Characters of a query or prefix; a longer one is refused (``TOO_LONG``)."""
TERM_MAX = 20
SYNONYMS_MAX = 20
SUGGESTIONS_MAX = 20
POPULARITY_POINTS = 8.0
"""The most popularity adds to a match's quality (out of 100)."""


class MatchKind(StrEnum):
    """What made a product match, best first."""

    NAME = "NAME"
    NAME_PREFIX = "NAME_PREFIX"
    NAME_WORDS = "NAME_WORDS"
    TAG = "TAG"
    SYNONYM = "SYNONYM"
    CATEGORY = "CATEGORY"
    INITIALS = "INITIALS"
    PINYIN = "PINYIN"
    TYPO = "TYPO"
    DESCRIPTION = "DESCRIPTION"


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """What search reads of one listed product."""

    product_id: int
    name: str
    description: str
    tags: tuple[str, ...]
    categories: tuple[str, ...]  # its category and those above it
    sku_names: tuple[str, ...]
    channels: frozenset[Channel]
    sort: int = 0


@dataclass(frozen=True, slots=True)
class SynonymSet:
    """A term and the words customers type for it (麻小 for 小龙虾)."""

    term: str
    synonyms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SynonymEntry:
    """A term's synonyms as kept, for head office's page."""

    synonyms: SynonymSet
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SearchMiss:
    """A query that found nothing at a store, how often, first and last."""

    store_id: int
    query: str
    count: int
    first_seen_at: datetime
    last_seen_at: datetime


MISSES_KEPT = 10_000
"""Queries that found nothing kept at most; the least recently seen are forgotten."""
POPULARITY_DAYS = 30
"""Units sold at the store in this many days make a product popular there."""


class SearchReads(Protocol):
    """What search reads and writes (``db.search``)."""

    async def catalogue(self) -> tuple[list[SearchDocument], list[SynonymSet]]:
        """The listed products as search reads them, and every synonym set."""
        ...

    async def units_sold(self, store_id: int, since: datetime) -> dict[int, int]:
        """Units of each product sold at the store since ``since`` (refunds taken off)."""
        ...

    async def record_miss(self, store_id: int, query: str, at: datetime) -> None:
        """Count a query that found nothing, keeping at most ``MISSES_KEPT`` of them."""
        ...

    async def misses(self, limit: int) -> list[SearchMiss]:
        """The queries that found nothing, most often first."""
        ...

    async def synonym_entries(self) -> list[SynonymEntry]:
        """Every term with synonyms, by term."""
        ...

    async def products_named(
        self, fragment: str, *, after_id: int | None, limit: int
    ) -> list[Product]:
        """Every product, listed or not, whose name holds ``fragment`` in any letter case,
        by id after ``after_id``, at most ``limit`` of them."""
        ...


@dataclass(frozen=True, slots=True)
class Hit:
    product_id: int
    quality: float  # 0-100, from the match alone
    matched_by: MatchKind


@dataclass(frozen=True, slots=True)
class SetSearchSynonyms:
    term: str
    synonyms: tuple[str, ...]
    now: datetime


# --- input ------------------------------------------------------------------------------


def clean_query(value: str, field: Sequence[str] = ("query",)) -> str:
    """A query as compared: normalised; empty when there is nothing to look for (an empty
    answer, not an error); ``TOO_LONG`` beyond ``QUERY_MAX`` characters."""
    check_characters(value, field)
    if len(value) > QUERY_MAX * 4:  # refused before any work on it
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=QUERY_MAX)
    text = normalise(value)
    if len(text) > QUERY_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=QUERY_MAX)
    return text


def clean_name_fragment(value: str, field: Sequence[str] = ("query",)) -> str:
    """Part of a product name as staff type it to find the product, spaces around it
    dropped; empty when there is nothing to look for (an empty answer); ``TOO_LONG``
    beyond ``QUERY_MAX`` characters. Matched as typed: ``%`` and ``_`` are letters here."""
    check_characters(value, field)
    text = value.strip()
    if len(text) > QUERY_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=QUERY_MAX)
    return text


def clean_synonym_set(term: str, synonyms: Iterable[str]) -> SynonymSet:
    """A term and its synonyms, normalised, each at most ``TERM_MAX`` characters, without
    repeats or the term itself; none means the term has no synonyms any more."""
    cleaned_term = _clean_term(term, ["term"])
    found: list[str] = []
    for n, raw in enumerate(synonyms):
        word = _clean_term(raw, ["synonyms", str(n)])
        if word != cleaned_term and word not in found:
            found.append(word)
    if len(found) > SYNONYMS_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["synonyms"], min=0, max=SYNONYMS_MAX)
    return SynonymSet(cleaned_term, tuple(found))


def _clean_term(value: str, field: list[str]) -> str:
    check_characters(value, field)
    text = normalise(value[: TERM_MAX * 4])
    if not text:
        raise DomainError(ErrorCode.REQUIRED, field=field)
    if len(text) > TERM_MAX or len(value) > TERM_MAX * 4:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=TERM_MAX)
    return text


def popularity_points(units: int, most: int) -> float:
    """0 to ``POPULARITY_POINTS``: units sold against the store's best seller, on a log scale."""
    if units <= 0 or most <= 0:
        return 0.0
    return POPULARITY_POINTS * math.log1p(units) / math.log1p(most)


def rank(hits: Iterable[Hit], units_sold: Mapping[int, int]) -> list[Hit]:
    """Best first: match quality with the store's popularity added; ties by product id."""
    most = max(units_sold.values(), default=0)
    return sorted(
        hits,
        key=lambda h: (
            -(h.quality + popularity_points(units_sold.get(h.product_id, 0), most)),
            h.product_id,
        ),
    )
