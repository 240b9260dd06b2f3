"""CLI start-up benchmark: whole `dinegraph` processes, timed from spawn to exit.

Times `dinegraph --help`, `staff-token --role HQ_ADMIN`, `member-token` and `create-api-key`
against a freshly migrated SQLite database in a temporary directory, next to a floor of
`python -c 'import typer'` and `python -c pass`, all in one run and interleaved (run 1 of
every command, then run 2, ...), so a machine that gets busier hurts them all alike.

Each command runs in up to three bytecode conditions:

- ``none``: no bytecode cache at all, not even the standard library's (an empty private
  PYTHONPYCACHEPREFIX and PYTHONDONTWRITEBYTECODE=1): every process compiles every module
  it imports. The floor pays the same for what it imports.
- ``installed``: the virtualenv as it is, with PYTHONDONTWRITEBYTECODE=1. Where the install
  holds no compiled bytecode (``uv sync`` compiles none unless told to; each line says so in
  ``site_packages_bytecode``), every process compiles each third-party and dinegraph module
  it imports from source, every time.
- ``cached``: a bytecode cache in a private PYTHONPYCACHEPREFIX, warmed by one untimed run
  of each command: what an install with compiled bytecode pays.

No condition writes into the virtualenv. With ``--baseline DIR`` (a source tree of
another dinegraph version, e.g. from ``git archive``) the same commands also run from that
tree, side by side, on the same database.

Prints one JSON line per (bytecode, command, version) on stdout, floors included; progress
goes to stderr. Usage::

    .venv/bin/python bench/cli_startup.py [--runs 5] [--baseline DIR] [--bytecode none,cached]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report import BenchError, emit, log, machine, product_revision

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LAUNCH = "import sys; sys.argv[0] = 'dinegraph'; from dinegraph.cli import app; app()"
WHERE = "import dinegraph; print(dinegraph.__file__)"

COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "staff-token": ["staff-token", "--role", "HQ_ADMIN"],
    "member-token": ["member-token", "--phone", "13800138000"],
    "create-api-key": ["create-api-key", "--name", "POS", "--scopes", "stock:read"],
}
FLOORS: dict[str, list[str]] = {
    "floor: import typer": ["-c", "import typer"],
    "floor: pass": ["-c", "pass"],
}


@dataclass
class Case:
    bytecode: str  # "none" | "installed" | "cached"
    command: str
    version: str  # "current" | "baseline" | "floor"
    argv: list[str]
    env: dict[str, str]
    cwd: Path  # not a source tree: `python -c` puts the working directory first on sys.path
    seconds: list[float] = field(default_factory=list)


def run(case: Case) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        case.argv,
        env=case.env,
        cwd=case.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{case.version} {case.command} failed:\n{done.stderr[-2000:]}")
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if case.command in ("staff-token", "member-token") and last.count(".") != 2:
        raise BenchError(f"{case.version} {case.command} printed no token: {done.stdout!r}")
    if case.command == "create-api-key" and not last.startswith("dg_"):
        raise BenchError(f"{case.version} create-api-key printed no key: {done.stdout!r}")
    return seconds


def environment(base: dict[str, str], bytecode: str, prefix: Path) -> dict[str, str]:
    """Nothing is ever written into the virtualenv or the source trees."""
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in base.items() if k not in drop}
    if bytecode != "cached":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    if bytecode != "installed":
        env["PYTHONPYCACHEPREFIX"] = str(prefix)
    return env


def site_packages_bytecode() -> bool:
    """Whether the install holds compiled bytecode (judged by SQLAlchemy's package)."""
    spec = importlib.util.find_spec("sqlalchemy")
    origin = spec.origin if spec else None
    return origin is not None and Path(importlib.util.cache_from_source(origin)).exists()


def summary(case: Case, floor: Case | None) -> dict[str, Any]:
    median = statistics.median(case.seconds)
    line: dict[str, Any] = {
        "scenario": "cli_startup",
        "bytecode": case.bytecode,
        "command": case.command,
        "version": case.version,
        "runs": len(case.seconds),
        "min_s": round(min(case.seconds), 3),
        "median_s": round(median, 3),
        "max_s": round(max(case.seconds), 3),
    }
    if floor is not None:
        floor_median = statistics.median(floor.seconds)
        line["floor_median_s"] = round(floor_median, 3)
        line["over_floor_s"] = round(median - floor_median, 3)
        line["ratio_to_floor"] = round(median / floor_median, 2)
    return line


# Complexity: One script of measurements and their report, read top to bottom.
def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser(description="Whole `dinegraph` processes, timed.")
    parser.add_argument("--runs", type=int, default=5, help="Timed runs of each command.")
    parser.add_argument(
        "--baseline", type=Path, help="A source tree of another dinegraph, run side by side."
    )
    parser.add_argument("--baseline-label", help="What the baseline is, e.g. its commit.")
    parser.add_argument(
        "--bytecode",
        default="none,installed,cached",
        help="Comma-separated conditions: none, installed, cached (default: all three).",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.bytecode.split(",") if m.strip()]
    if not modes or set(modes) - {"none", "installed", "cached"}:
        parser.error("--bytecode takes none, installed and cached, comma-separated")
    python = sys.executable
    sources = {"current": REPO}
    if args.baseline is not None:
        sources["baseline"] = args.baseline.resolve()

    with tempfile.TemporaryDirectory(prefix="dinegraph-cli-bench-") as tmp:
        workdir = Path(tmp)
        base = dict(os.environ)
        base["DINEGRAPH_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        base.pop("DINEGRAPH_MODE", None)  # member-token is for development mode
        migrated = subprocess.run(
            [python, "-c", LAUNCH, "migrate"],
            env={**base, "PYTHONPATH": str(REPO)},
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if migrated.returncode != 0:
            raise BenchError(f"migrate failed:\n{migrated.stderr[-2000:]}")
        log(migrated.stdout.strip())

        cases: list[Case] = []
        for mode in modes:
            prefix = workdir / f"pyc-{mode}"
            prefix.mkdir()
            env = environment(base, mode, prefix)
            for name, floor_args in FLOORS.items():
                cases.append(Case(mode, name, "floor", [python, *floor_args], env, workdir))
            for version, source in sources.items():
                version_env = {**env, "PYTHONPATH": str(source)}
                where = subprocess.run(
                    [python, "-c", WHERE],
                    env=version_env,
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                if not where.startswith(str(source)):
                    raise BenchError(f"{version} imports dinegraph from {where}, not {source}")
                for command, command_args in COMMANDS.items():
                    argv = [python, "-c", LAUNCH, *command_args]
                    cases.append(Case(mode, command, version, argv, version_env, workdir))

        for case in cases:
            if case.bytecode == "cached":
                run(case)  # untimed: fills the bytecode cache
        load_before = os.getloadavg()[0]
        for i in range(args.runs):
            log(f"run {i + 1}/{args.runs}")
            order = cases[i % len(cases) :] + cases[: i % len(cases)]  # rotate the start
            for case in order:
                case.seconds.append(run(case))
        load_after = os.getloadavg()[0]

    floors = {(c.bytecode, c.command): c for c in cases if c.version == "floor"}
    context = {
        **product_revision(REPO).as_dict(),
        "baseline": args.baseline_label or (str(args.baseline) if args.baseline else None),
        "site_packages_bytecode": site_packages_bytecode(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2),
        "machine": machine(),
    }
    for case in cases:
        floor = None if case.version == "floor" else floors[(case.bytecode, "floor: import typer")]
        emit({**summary(case, floor), **context})


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        log(f"error: {error}")
        sys.exit(1)
