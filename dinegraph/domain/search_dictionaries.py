"""jieba's and pypinyin's dictionaries, held in marisa tries instead of Python dicts.

jieba's prefix dictionary (498,113 words and prefixes of words) takes about 60 MiB of a
process as a dict, pypinyin's phrase dictionary (47,111 phrases, with a set of their
prefixes) about 44 MiB; as tries they take a few MiB. The answers are the libraries' own:

- jieba cuts with its own code over its own dictionary; only the mapping it looks words up
  in is the trie (``Tokenizer.FREQ``, whose every use is a lookup).
- pypinyin is loaded without its phrases (``PYPINYIN_NO_PHRASES``, its documented switch
  to save memory) and given them back through its documented hooks: ``pre_seg`` cuts a text
  into phrases as its own forward maximum matching does, ``post_pinyin`` gives a phrase its
  toned readings, and pypinyin turns them into each style as it does its own.

``tests/integration/test_search_dictionaries.py`` compares both with the libraries as
shipped, word for word.
"""

from __future__ import annotations

import array
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

import marisa_trie


def _built_once(build: Callable[[], Any]) -> Callable[[], Any]:
    """``build()`` the first time it is asked for, once, however many threads ask together
    (a production server's warm-up and a first search); what it built thereafter."""
    lock = threading.Lock()
    built: list[Any] = []

    def get() -> Any:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0]

    get.__doc__ = build.__doc__
    return get


_key_of = marisa_trie.Trie.get  # a key's id in the trie, or None


class WordCounts(marisa_trie.Trie):  # type: ignore[misc]
    """jieba's ``FREQ``: every dictionary word, and every prefix of one, to its count (0 for
    a mere prefix). ``in`` is the trie's own; a count is read by the key's id."""

    counts: array.array[int]

    def __getitem__(self, word: str) -> int:
        key = _key_of(self, word)
        if key is None:
            raise KeyError(word)  # as a dict's
        count: int = self.counts[key]
        return count

    def get(self, word: str, default: int | None = None) -> int | None:
        key = _key_of(self, word)
        return default if key is None else self.counts[key]


def _lines(source: Iterable[bytes]) -> Iterator[tuple[str, int]]:
    # As jieba's Tokenizer.gen_pfdict reads its dictionary: "word count [tag]" a line.
    for line in source:
        word, count = line.strip().decode("utf-8").split(" ")[:2]
        yield word, int(count)


def word_counts(tokenizer: Any) -> tuple[WordCounts, int]:
    """The prefix dictionary jieba would build from ``tokenizer``'s dictionary file, and
    its total count."""

    def keys() -> Iterator[str]:
        with tokenizer.get_dict_file() as f:
            for word, _ in _lines(f):
                for end in range(1, len(word) + 1):
                    yield word[:end]

    trie = WordCounts(keys())
    counts = array.array("q", bytes(8 * len(trie)))
    total = 0
    with tokenizer.get_dict_file() as f:
        for word, count in _lines(f):
            # A word listed twice keeps its last count, as in jieba's.
            counts[trie.key_id(word)] = count
            total += count
    trie.counts = counts
    return trie, total


@_built_once
def words() -> Any:
    """A jieba ``Tokenizer`` of jieba's own dictionary, looking words up in a trie."""
    with warnings.catch_warnings():
        # jieba's source raises a SyntaxWarning when first compiled on recent Pythons.
        warnings.simplefilter("ignore")
        import jieba  # type: ignore[import-untyped]
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    # What Tokenizer.initialize sets, made here instead of read from jieba's cache.
    tokenizer.FREQ, tokenizer.total = word_counts(tokenizer)
    tokenizer.initialized = True
    return tokenizer


_SWITCHES = ("PYPINYIN_NO_PHRASES", "PYPINYIN_NO_DICT_COPY")


def _import_pypinyin_without_phrases() -> None:
    """Import pypinyin without its phrases (they come from the trie) or a copy of its
    dictionaries kept for custom ones (there are none). It reads these switches once, as it
    is first imported; the process's environment is left as it was."""
    before = {name: os.environ.get(name) for name in _SWITCHES}
    os.environ.update(dict.fromkeys(_SWITCHES, "1"))
    try:
        import pypinyin.core  # noqa: F401
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


class PhraseReadings:
    """pypinyin's phrases in a trie, and by each one's id the toned readings of its
    characters (重庆: chóng, qìng), as numbers into the few hundred syllables there are."""

    __slots__ = ("_names", "_starts", "_syllables", "trie")

    def __init__(self, phrases: dict[str, list[list[str]]]) -> None:
        self.trie = marisa_trie.Trie(phrases)
        self._starts = array.array("I", bytes(4 * len(self.trie)))
        self._syllables = array.array("H")
        numbers: dict[str, int] = {}
        for phrase, each in phrases.items():
            self._starts[self.trie.key_id(phrase)] = len(self._syllables)
            # lazy_pinyin reads each character's first reading.
            self._syllables.extend(numbers.setdefault(r[0], len(numbers)) for r in each)
        # The names are made again from one string, so that nothing of the parsed phrases
        # outlives them (a few hundred strings among them would keep their memory).
        joined = "\n".join(numbers)
        del numbers
        self._names = joined.split("\n")

    def of(self, phrase: str) -> list[list[str]] | None:
        """The readings of a phrase, in pypinyin's shape ([[chóng], [qìng]]); None if it is
        no phrase."""
        key = self.trie.get(phrase)
        if key is None:
            return None
        start = self._starts[key]
        return [[self._names[n]] for n in self._syllables[start : start + len(phrase)]]


def _phrase_readings() -> PhraseReadings:
    data = resources.files("pypinyin").joinpath("phrases_dict.json").read_text("utf-8")
    phrases: dict[str, list[list[str]]] = json.loads(data)
    del data
    return PhraseReadings(phrases)


@_built_once
def pinyin() -> Any:
    """A ``pypinyin.Pinyin`` reading characters in context from pypinyin's phrases."""
    _import_pypinyin_without_phrases()
    return _phrase_pinyin(_phrase_readings())


def readings(text: str, *, first_letters: bool = False) -> list[str]:
    """pypinyin's ``lazy_pinyin`` of ``text``: each character's reading in context, without
    tones (or its first letter); what has no reading is kept as it is."""
    reader = pinyin()
    from pypinyin import Style  # imported by pinyin() with its switches set

    found: list[str] = reader.lazy_pinyin(
        text, style=Style.FIRST_LETTER if first_letters else Style.NORMAL
    )
    return found


def _phrase_pinyin(readings: PhraseReadings) -> Any:
    from pypinyin.constants import RE_HANS
    from pypinyin.converter import UltimateConverter
    from pypinyin.core import Pinyin
    from pypinyin.seg.simpleseg import simple_seg

    phrases = readings.trie

    def cut(run: str) -> Iterator[str]:
        # pypinyin.seg.mmseg.Seg(no_non_phrases=True).cut: the longest phrase the rest
        # begins with, else one character; and, as it does, a rest that only begins some
        # phrase (no phrase within it) is read character by character.
        while run:
            found = phrases.prefixes(run)
            if found:
                phrase = max(found, key=len)
                yield phrase
                run = run[len(phrase) :]
            elif next(phrases.iterkeys(run), None) is not None:
                yield from run
                return
            else:
                yield run[0]
                run = run[1:]

    class PhraseConverter(UltimateConverter):
        def post_pinyin(self, han: str, heteronym: bool, pinyin: Any, **kw: Any) -> Any:
            found = readings.of(han)
            if found is not None:
                return found
            return super().post_pinyin(han, heteronym, pinyin, **kw)

    class PhrasePinyin(Pinyin):
        def pre_seg(self, hans: str, **kw: Any) -> list[str]:
            cuts: list[str] = []
            for part in simple_seg(hans):
                if RE_HANS.match(part):
                    cuts.extend(cut(part))
                else:
                    cuts.append(part)
            return cuts

    return PhrasePinyin(PhraseConverter())
