"""A serving process freezes what start-up made and collects its young objects less often.

Each case runs in a fresh interpreter: freezing and thresholds are the whole process's, and
the test process's own collector must stay as pytest set it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dinegraph.settings import Settings

PROBE = """
import gc, json
from dinegraph.app import serve_app
before, default = gc.get_freeze_count(), gc.get_threshold()
app = serve_app()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "default": default,
                  "threshold": gc.get_threshold(), "app": type(app).__name__}))
"""


def _serve_app_in_fresh_process(tmp_path: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={
            **os.environ,
            "DINEGRAPH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}",
            "DINEGRAPH_BROKER_URL": "memory://",
            "DINEGRAPH_MODE": "development",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return got


def test_a_served_app_freezes_start_up_and_raises_the_young_threshold(tmp_path: Path) -> None:
    got = _serve_app_in_fresh_process(tmp_path, DINEGRAPH_GC_YOUNG_THRESHOLD="12345")
    assert got["app"] == "Starlette"
    assert got["before"] == 0
    # The modules, the schema and the settings: far more than a bare interpreter holds.
    assert got["frozen"] > 50_000
    assert got["threshold"] == [12345, *got["default"][1:]]  # the older ones keep theirs


def test_a_threshold_of_zero_keeps_pythons_default(tmp_path: Path) -> None:
    got = _serve_app_in_fresh_process(tmp_path, DINEGRAPH_GC_YOUNG_THRESHOLD="0")
    assert got["threshold"] == got["default"]
    assert got["frozen"] > 50_000


def test_a_threshold_python_cannot_hold_is_refused_with_the_settings() -> None:
    """Past a C int, gc.set_threshold would fail in each worker as it starts; the setting is
    refused before anything runs, as every other bound of the settings is."""
    with pytest.raises(ValidationError, match="gc_young_threshold"):
        Settings(gc_young_threshold=99_999_999_999)
    with pytest.raises(ValidationError, match="gc_young_threshold"):
        Settings(gc_young_threshold=-1)
    assert Settings(gc_young_threshold=1_000_000).gc_young_threshold == 1_000_000


TRIM_PROBE = """
import json
from dinegraph.collector import return_freed_memory
from dinegraph.domain import search_dictionaries

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) // 1024

start = rss()
search_dictionaries.words()  # builds jieba's trie: its build frees far more than it keeps
built = rss()
returned = return_freed_memory()
print(json.dumps({"start": start, "built": built, "trimmed": rss(), "returned": returned}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_memory_freed_by_a_build_goes_back_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if not got["returned"]:
        pytest.skip("this C library has no malloc_trim")
    # The trie and jieba keep about 10 MiB; the build held several times that, freed.
    assert got["built"] - got["start"] > 25, got
    assert got["built"] - got["trimmed"] > 15, got
