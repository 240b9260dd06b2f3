"""The search index: the catalogue as search reads it, and how a query matches it.

Built once per catalogue version (``dinegraph.search_index`` keeps it); pure computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dinegraph.domain.catalog import Channel
from dinegraph.domain.search import Hit, MatchKind, SearchDocument, SynonymSet
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

_SYNONYM_FACTOR = 0.85  # a match through a synonym counts a little less than the word typed
_VARIANTS_MAX = 16
# Least likeness (0-100) a typo needs: Chinese names are short, one wrong character of
# three or four is a typo; pinyin is longer, a wrong letter or two.
_FUZZY_HANZI = 70.0
_FUZZY_LATIN = 84.0
_TYPOS_BELOW = 60.0  # typos are looked for only when nothing matched as typed


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


# --- matching ---------------------------------------------------------------------------


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
