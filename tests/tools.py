"""Outside tools some tests drive (node and the clients' npm packages, Chromium).

A developer without them gets those tests skipped with the reason; under CI (`CI=true`)
a missing tool fails the test instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """Skip, saying why; under CI, fail: CI installs every tool the suite uses."""
    if UNDER_CI:
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)


def node() -> str:
    """The `node` executable, with the clients' packages installed (`make test` does that)."""
    path = shutil.which("node")
    if path is None:
        missing("node is not installed: the npm reference-client tests need it")
    if not (CLIENTS / "node_modules" / ".package-lock.json").exists():
        missing("clients/node_modules is missing: run `make test` (it runs `npm ci` in clients/)")
    return path


def chromium() -> str:
    """A headless-capable Chromium (Debian's `chromium` package)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    missing("Chromium is not installed (Debian: apt-get install chromium)")
