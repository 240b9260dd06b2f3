"""What a benchmark tells: progress on stderr, results as JSON lines on stdout, and what
was measured (the product's revision and the machine)."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SHORT_COMMIT = 7  # what `git rev-parse --short` prints in a repository of this size
PRODUCT_PATHS = ("dinegraph", "migrations")  # what "uncommitted changes" looks at


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark cannot produce trustworthy figures; the message says why."""


def json_line(result: Mapping[str, Any]) -> str:
    """One result as one compact JSON line (orjson: UTF-8, no spaces)."""
    return orjson.dumps(result).decode()


def emit(result: Mapping[str, Any]) -> None:
    """Print one result on stdout, at once (a long run's first lines are not held back)."""
    sys.stdout.write(json_line(result) + "\n")
    sys.stdout.flush()


def machine(**extra: Any) -> dict[str, Any]:
    """The cores this process may run on (what `nproc` prints) and the Python version."""
    return {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(), **extra}


@dataclass(frozen=True)
class Revision:
    """The product's commit under test and whether its code had uncommitted changes
    (None where git could not tell)."""

    commit: str | None  # the full hash
    dirty: bool | None
    root: Path

    def label(self) -> str | None:
        """``abc1234``, or ``abc1234+dirty`` with uncommitted changes."""
        if self.commit is None:
            return None
        return self.commit[:SHORT_COMMIT] + ("+dirty" if self.dirty else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "commit": None if self.commit is None else self.commit[:12],
            "uncommitted_changes": self.dirty,
        }


def product_root() -> Path:
    """The source tree of the ``dinegraph`` this interpreter imports (servers and the CLI
    inherit the environment, PYTHONPATH included): the repository's own, or another tree
    put first on PYTHONPATH to measure an older commit. Found without importing it."""
    spec = importlib.util.find_spec("dinegraph")
    if spec is None or spec.origin is None:
        return Path(__file__).resolve().parents[2]
    return Path(spec.origin).resolve().parents[1]


def product_revision(root: Path | None = None) -> Revision:
    """Read-only git: never takes the index lock of a tree someone is working in."""
    where = product_root() if root is None else root

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "--no-optional-locks", "-C", str(where), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", *PRODUCT_PATHS)
    return Revision(git("rev-parse", "HEAD"), None if status is None else bool(status), where)
