"""Search's dictionaries in tries cut and read exactly as jieba and pypinyin do as shipped.

Each side runs in a fresh interpreter, since pypinyin reads its switches once, on import:
the libraries as shipped (jieba's own dictionary, pypinyin with its phrases) and
``dinegraph.domain.search_dictionaries``. Both read the same texts: every phrase of
pypinyin's and each cut short, a share of jieba's words, the demo chain's every text, and
phrases run together so that cuts must be chosen across them.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from importlib import resources
from typing import Any

import pytest

from dinegraph.db import demo_data

pytestmark = pytest.mark.timeout(300)

SHIPPED = """
import json, sys, warnings
warnings.simplefilter("ignore")
import jieba
jieba.setLogLevel(60)
from pypinyin import Style, lazy_pinyin, constants
texts = json.load(sys.stdin)
json.dump({
    "phrases": len(constants.PHRASES_DICT),
    "cuts": [list(jieba.cut_for_search(t)) for t in texts["cut"]],
    "readings": [lazy_pinyin(t) for t in texts["read"]],
    "first_letters": [lazy_pinyin(t, style=Style.FIRST_LETTER) for t in texts["read"]],
}, sys.stdout)
"""

OURS = """
import json, os, sys
from dinegraph.domain import search_dictionaries as d
texts = json.load(sys.stdin)
cuts = [list(d.words().cut_for_search(t)) for t in texts["cut"]]
readings = [d.readings(t) for t in texts["read"]]
first_letters = [d.readings(t, first_letters=True) for t in texts["read"]]
from pypinyin import constants
json.dump({
    "phrases": len(constants.PHRASES_DICT),
    "switches": sorted(k for k in os.environ if k.startswith("PYPINYIN_")),
    "cuts": cuts, "readings": readings, "first_letters": first_letters,
}, sys.stdout)
"""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _texts() -> dict[str, list[str]]:
    phrases = list(
        json.loads(resources.files("pypinyin").joinpath("phrases_dict.json").read_text("utf-8"))
    )
    demo = sorted({s for name in dir(demo_data) for s in _strings(getattr(demo_data, name))})
    pick = random.Random(16)
    together = ["".join(pick.sample(phrases, pick.randint(2, 4))) for _ in range(3000)]
    # A text that only begins a phrase: pypinyin reads it character by character.
    short = [p[:-1] for p in phrases if len(p) > 2]
    short += ["".join(pick.sample(phrases, 2)) + p for p in pick.sample(short, 3000)]
    mixed = ["重庆小面 2份", "Coca-Cola 可乐(大)", "长沙臭豆腐", "糖醋排骨ABC", "行长的银行", "  "]
    import jieba  # type: ignore[import-untyped]

    with jieba.Tokenizer().get_dict_file() as f:
        dictionary = [line.decode("utf-8").split(" ")[0] for line in f]
    return {
        "cut": [*demo, *together, *mixed, *dictionary[::40]],
        "read": [*phrases, *short, *demo, *together, *mixed],
    }


def _run(code: str, texts: dict[str, list[str]]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_the_tries_cut_and_read_every_text_as_the_libraries_do() -> None:
    texts = _texts()
    shipped = _run(SHIPPED, texts)
    ours = _run(OURS, texts)

    assert shipped["phrases"] > 40_000  # pypinyin as shipped had its phrases
    assert ours["phrases"] == 0  # ours read them from the trie alone
    assert ours["switches"] == []  # and left the process's environment as it was
    for kind in ("cuts", "readings", "first_letters"):
        source = texts["cut" if kind == "cuts" else "read"]
        differ = [
            (text, a, b)
            for text, a, b in zip(source, shipped[kind], ours[kind], strict=True)
            if a != b
        ]
        assert differ == [], f"{len(differ)} {kind} differ, first {differ[:5]}"
    # The comparison is not empty: multi-reading characters read in context.
    read = dict(zip(texts["read"], ours["readings"], strict=True))
    assert read["重庆小面 2份"][:2] == ["chong", "qing"]
    assert read["行长的银行"] == ["hang", "zhang", "de", "yin", "hang"]
