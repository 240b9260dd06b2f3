"""Product search: an index of the catalogue, how a query matches it, and the ranking.

The index is built from the listed products (names, tags, categories, descriptions, SKU
names) and the synonyms head office keeps. A query matches a product by its name (exact,
prefix, contained, its words), a tag, a category, pinyin or initials ("tcpg", "tangcu"), a
synonym, a typo's likeness, or its description, in that order of quality; popularity at the
store moves results within a few points, never a description match above a name match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.search_text import (
    alike,
    compact,
    initials,
    is_latin,
    normalise,
    pinyin,
    syllables,
    words,
)
from dinegraph.domain.text import check_characters

QUERY_MAX = 50
"""Characters of a query or prefix; a longer one is refused (``TOO_LONG``)."""
TERM_MAX = 20
SYNONYMS_MAX = 20
SUGGESTIONS_MAX = 20
POPULARITY_POINTS = 8.0
"""The most popularity adds to a match's quality (out of 100)."""
_SYNONYM_FACTOR = 0.85  # a match through a synonym counts a little less than the word typed
_VARIANTS_MAX = 16
# Least likeness (0-100) a typo needs: Chinese names are short, one wrong character of
# three or four is a typo; pinyin is longer, a wrong letter or two.
_FUZZY_HANZI = 70.0
_FUZZY_LATIN = 84.0
_TYPOS_BELOW = 60.0  # typos are looked for only when nothing matched as typed


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


@dataclass(frozen=True, slots=True)
class Hit:
    product_id: int
    quality: float  # 0-100, from the match alone
    matched_by: MatchKind


@dataclass(frozen=True, slots=True)
class _Entry:
    product_id: int
    name: str
    name_words: frozenset[str]
    pinyin: str
    syllables: tuple[str, ...]
    initials: str
    tags: frozenset[str]
    categories: tuple[str, ...]
    description: str  # with the SKU names
    channels: frozenset[Channel]
    sort: int


@dataclass(frozen=True, slots=True)
class _Suggestion:
    text: str
    key: str
    pinyin: str
    initials: str
    weight: int  # products before categories before tags and synonyms


@dataclass(frozen=True, slots=True)
class _Query:
    text: str  # compact
    words: frozenset[str]
    latin: bool
    pinyin: str
    syllables: tuple[str, ...]


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


# --- the index ----------------------------------------------------------------------------


@dataclass
class SearchIndex:
    """The catalogue as search reads it; built once per catalogue version."""

    _entries: list[_Entry]
    _synonyms: list[frozenset[str]]
    _suggestions: list[_Suggestion]
    _names: list[str] = field(init=False)
    _pinyins: list[str] = field(init=False)
    _by_character: dict[str, list[int]] = field(init=False)
    _by_syllable: dict[str, list[int]] = field(init=False)
    _by_letters: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self._names = [e.name for e in self._entries]
        self._pinyins = [e.pinyin for e in self._entries]
        # A Chinese query can only match an entry sharing a character with it, or (typed
        # with a homophone) the pinyin of one: the rest are never looked at.
        # A Latin one, an entry holding its first two letters together (in its pinyin, its
        # initials, or Latin words of its text).
        by_character: dict[str, list[int]] = {}
        by_syllable: dict[str, list[int]] = {}
        by_letters: dict[str, list[int]] = {}
        for n, e in enumerate(self._entries):
            texts = [e.name, *e.tags, *e.categories, e.description]
            for character in set("".join(texts)):
                if not character.isascii():
                    by_character.setdefault(character, []).append(n)
            for syllable in set(e.syllables):
                by_syllable.setdefault(syllable, []).append(n)
            for pair in _letter_pairs([e.pinyin, e.initials, *texts]):
                by_letters.setdefault(pair, []).append(n)
        self._by_character = by_character
        self._by_syllable = by_syllable
        self._by_letters = by_letters

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, channel: Channel) -> list[Hit]:
        """Products on ``channel`` matching a cleaned query (``clean_query``), by quality."""
        if not query:
            return []
        best: dict[int, Hit] = {}
        for variant, factor in self._variants(query):
            asked = _query(variant)
            for entry in self._candidates(asked):
                if channel not in entry.channels:
                    continue
                found = _match(entry, asked)
                if found is None:
                    continue
                quality, kind = found
                if factor < 1.0:
                    quality, kind = quality * factor, MatchKind.SYNONYM
                _keep(best, Hit(entry.product_id, quality, kind))
            if max((h.quality for h in best.values()), default=0.0) < _TYPOS_BELOW:
                for hit in self._typos(asked, channel, best):
                    _keep(best, Hit(hit.product_id, hit.quality * factor, hit.matched_by))
        return sorted(best.values(), key=lambda h: -h.quality)

    def suggest(self, prefix: str, limit: int) -> list[str]:
        """Product names, categories, tags and synonyms a cleaned prefix begins (in hanzi,
        pinyin or initials), or failing that contains."""
        key = compact(prefix)
        if not key:
            return []
        latin = is_latin(prefix)
        ranked: list[tuple[int, int, int, str]] = []
        for s in self._suggestions:
            if s.key.startswith(key):
                tier = 0
            elif latin and (s.initials.startswith(key) or s.pinyin.startswith(key)):
                tier = 1
            elif len(key) > 1 and key in s.key:
                tier = 2
            else:
                continue
            ranked.append((tier, -s.weight, len(s.text), s.text))
        seen: set[str] = set()
        chosen: list[str] = []
        for *_, text in sorted(ranked):
            if text not in seen:
                seen.add(text)
                chosen.append(text)
            if len(chosen) == limit:
                break
        return chosen

    def _candidates(self, asked: _Query) -> Iterable[_Entry]:
        """Every entry for a Latin query; for a Chinese one, those sharing a character or a
        syllable with it, in catalogue order."""
        if asked.latin:
            if len(asked.text) < 2:
                return self._entries
            return [self._entries[n] for n in self._by_letters.get(asked.text[:2], ())]
        found: set[int] = set()
        for character in set(asked.text):
            found.update(self._by_character.get(character, ()))
        for syllable in set(asked.syllables):
            found.update(self._by_syllable.get(syllable, ()))
        return [self._entries[n] for n in sorted(found)]

    def _variants(self, query: str) -> list[tuple[str, float]]:
        """The query, then the query with each synonym it holds swapped for the others."""
        text = compact(query)
        found: list[tuple[str, float]] = [(query, 1.0)]
        for group in self._synonyms:
            for word in group:
                if compact(word) not in text:
                    continue
                for other in sorted(group - {word}):
                    found.append((text.replace(compact(word), compact(other)), _SYNONYM_FACTOR))
        return found[:_VARIANTS_MAX]

    def _typos(self, asked: _Query, channel: Channel, matched: Mapping[int, Hit]) -> list[Hit]:
        """Products whose name, or its pinyin, is a typo or two away from the query."""
        if asked.latin:
            if len(asked.text) < 5:
                return []
            choices, cutoff = self._pinyins, _FUZZY_LATIN
        else:
            if len(asked.text) < 3:
                return []
            choices, cutoff = self._names, _FUZZY_HANZI
        hits: list[Hit] = []
        for n, score in alike(asked.text, choices, cutoff):
            entry = self._entries[n]
            if entry.product_id in matched or channel not in entry.channels:
                continue
            # 20-45 by likeness: below every exact kind of match, above a description.
            quality = 20.0 + 25.0 * (score - cutoff) / (100.0 - cutoff)
            hits.append(Hit(entry.product_id, quality, MatchKind.TYPO))
        return hits


def build_index(documents: Iterable[SearchDocument], synonyms: Iterable[SynonymSet]) -> SearchIndex:
    """The index of these products and synonyms (CPU only; a few ms per hundred products)."""
    entries: list[_Entry] = []
    suggestions: dict[str, _Suggestion] = {}

    def suggest(text: str, weight: int) -> None:
        key = compact(normalise(text))
        if key and (key not in suggestions or suggestions[key].weight < weight):
            suggestions[key] = _Suggestion(text, key, pinyin(key), initials(key), weight)

    for doc in documents:
        name = compact(normalise(doc.name))
        details = " ".join([doc.description, *doc.sku_names])
        entries.append(
            _Entry(
                product_id=doc.product_id,
                name=name,
                name_words=words(name),
                pinyin=pinyin(name),
                syllables=syllables(name),
                initials=initials(name),
                tags=frozenset(compact(normalise(t)) for t in doc.tags),
                categories=tuple(compact(normalise(c)) for c in doc.categories),
                description=compact(normalise(details)),
                channels=doc.channels,
                sort=doc.sort,
            )
        )
        suggest(doc.name, 3)
        for category in doc.categories:
            suggest(category, 2)
        for tag in doc.tags:
            suggest(tag, 1)
    groups: list[frozenset[str]] = []
    for entry in synonyms:
        group = frozenset({entry.term, *entry.synonyms})
        if len(group) > 1:
            groups.append(group)
        for word in group:
            suggest(word, 1)
    return SearchIndex(entries, groups, list(suggestions.values()))


# --- matching and ranking -------------------------------------------------------------------


def _query(text: str) -> _Query:
    flat = compact(text)
    latin = is_latin(text)
    return _Query(
        text=flat,
        words=frozenset(w for w in (*words(flat), *text.split(" ")) if w) - {flat},
        latin=latin,
        pinyin="" if latin else pinyin(flat),
        syllables=() if latin else syllables(flat),
    )


def _match(e: _Entry, q: _Query) -> tuple[float, MatchKind] | None:
    """The best way ``e`` matches ``q``, with its quality (0-100); None when it does not."""
    text = q.text
    by_name = _name_match(e, q)
    if by_name is not None:
        return by_name
    if text in e.tags:
        return 72.0, MatchKind.TAG
    if any(text in c for c in e.categories):
        return 62.0, MatchKind.CATEGORY
    if q.latin and len(text) >= 2:
        found = _latin_match(e, text)
        if found is not None:
            return found
    elif len(q.pinyin) >= 4 and q.pinyin in e.pinyin:
        return 58.0, MatchKind.PINYIN  # a homophone typed for a character (拍 for 排)
    long_words = [w for w in q.words if len(w) > 1]
    if long_words:
        share = sum(w in e.name for w in long_words) / len(long_words)
        if share:
            return 40.0 + 20.0 * share, MatchKind.NAME_WORDS
    if text in e.description:
        return 18.0, MatchKind.DESCRIPTION
    return None


def _name_match(e: _Entry, q: _Query) -> tuple[float, MatchKind] | None:
    if e.name == q.text:
        return 100.0, MatchKind.NAME
    if e.name.startswith(q.text):
        return 92.0, MatchKind.NAME_PREFIX
    if q.text in e.name:
        return 85.0, MatchKind.NAME
    if q.words and all(w in e.name for w in q.words):
        return 78.0, MatchKind.NAME_WORDS
    return None


def _latin_match(e: _Entry, text: str) -> tuple[float, MatchKind] | None:
    if e.initials == text:
        return 70.0, MatchKind.INITIALS
    if e.pinyin == text:
        return 70.0, MatchKind.PINYIN
    if e.pinyin.startswith(text) and len(text) >= 3:
        return 66.0, MatchKind.PINYIN
    if e.initials.startswith(text):
        return 64.0, MatchKind.INITIALS
    if len(text) >= 4 and text in e.pinyin:
        return 58.0, MatchKind.PINYIN
    if len(text) >= 3 and text in e.initials:
        return 54.0, MatchKind.INITIALS
    return None


def _letter_pairs(texts: Iterable[str]) -> set[str]:
    return {
        text[i : i + 2]
        for text in texts
        for i in range(len(text) - 1)
        if text[i : i + 2].isascii() and " " not in text[i : i + 2]
    }


def _keep(best: dict[int, Hit], hit: Hit) -> None:
    known = best.get(hit.product_id)
    if known is None or hit.quality > known.quality:
        best[hit.product_id] = hit


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
