"""How search reads Chinese text: one normal form, words (jieba), pinyin and its initials
(pypinyin), and how alike two strings are (rapidfuzz). Pure functions, no I/O of their own
(jieba's and pypinyin's bundled dictionaries are read once, on first use, into the tries of
``search_dictionaries``)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process

from dinegraph.domain import search_dictionaries

_SPACES = re.compile(r"\s+")
# What is neither a letter, a digit nor a CJK character: brackets, dots, dashes.
_PUNCTUATION = re.compile(r"[^\w\u3400-\u9fff]+")
_ASCII_WORD = re.compile(r"^[a-z0-9 ]+$")


def load_dictionaries() -> None:
    """Load jieba's and pypinyin's dictionaries now (a second or two), not on first use."""
    search_dictionaries.words()
    search_dictionaries.pinyin()


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC), lower case, punctuation and runs of space as one
    space, trimmed: how a query, a name or a term is compared."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()


def compact(text: str) -> str:
    """A normalised text without its spaces: "糖醋 排骨" reads as "糖醋排骨"."""
    return text.replace(" ", "")


def is_latin(text: str) -> bool:
    """Letters, digits and spaces only: typed as pinyin or initials (or a Latin name)."""
    return bool(text) and _ASCII_WORD.match(text) is not None


def words(text: str) -> frozenset[str]:
    """The words of a normalised text, finely cut for search ("糖醋排骨": 糖醋, 排骨, 糖醋排骨)."""
    return frozenset(w for w in (t.strip() for t in _cut(text)) if w)


@lru_cache(maxsize=4096)
def _cut(text: str) -> tuple[str, ...]:
    found: Iterator[str] = search_dictionaries.words().cut_for_search(text)
    return tuple(found)


@lru_cache(maxsize=16384)  # a name is read for its entry and its suggestion alike
def pinyin(text: str) -> str:
    """Full pinyin without tones or spaces ("糖醋排骨": tangcupaigu); Latin letters stay.

    A character read several ways (多音字) takes the reading pypinyin's phrase dictionary
    gives it in context, the common one otherwise."""
    found = search_dictionaries.readings(compact(text))
    return "".join(s for s in found if s.strip()).lower()


@lru_cache(maxsize=16384)
def syllables(text: str) -> tuple[str, ...]:
    """The pinyin syllables of the Chinese characters in a text ("糖醋": tang, cu)."""
    chinese = "".join(c for c in compact(text) if not c.isascii())
    return tuple(s.lower() for s in search_dictionaries.readings(chinese) if s.strip())


@lru_cache(maxsize=16384)
def initials(text: str) -> str:
    """The first letter of each syllable ("糖醋排骨": tcpg); a Latin word keeps its letters."""
    parts = search_dictionaries.readings(compact(text), first_letters=True)
    return "".join(p for p in parts if p.strip()).lower()


def alike(query: str, choices: Sequence[str], cutoff: float) -> list[tuple[int, float]]:
    """(index, 0-100) of each choice some part of which is at least ``cutoff`` like
    ``query`` (a typo or two), in one pass of rapidfuzz's own loop."""
    found = process.extract(
        query, choices, scorer=fuzz.partial_ratio, score_cutoff=cutoff, limit=None
    )
    return [(int(index), float(score)) for _, score, index in found]
