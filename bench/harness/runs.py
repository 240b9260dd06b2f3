"""A scenario's frame: its common options, its main, and measuring again when other work
on the machine disturbed a measurement."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from .database import check_database_url, check_redis_url
from .processes import terminate_as_exit
from .report import BenchError, emit, log

DISTURBED_PCT = 30.0  # other work above this share of a core during a measurement: again

Result = dict[str, Any]
Out = Callable[[Result], None]
T = TypeVar("T")


def add_common_options(
    parser: argparse.ArgumentParser,
    *,
    retries: int | None,
    retries_help: str = "run a measurement again (up to this many times) when other work "
    "disturbed it",
    database_help: str = "",
) -> None:
    """--retries (unless None), --quiet-wait and --database-url, the same in every scenario."""
    if retries is not None:
        parser.add_argument(
            "--retries", type=int, default=retries, help=f"{retries_help} ({retries})"
        )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="wait up to this many seconds for other work on the machine to finish (120)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a scratch database on, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (default: SQLite in a "
        "temp dir)" + database_help,
    )


def check_common_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 <= getattr(args, "retries", 0) <= 5:
        parser.error("--retries must be in [0, 5]")
    if not 0 <= args.quiet_wait <= 3600:
        parser.error("--quiet-wait must be in [0, 3600] seconds")
    check_database_url(parser, args.database_url)


def add_processes_options(parser: argparse.ArgumentParser) -> None:
    """--processes and --redis-url: the product as several processes on one database."""
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="product processes (``dinegraph serve --workers 1`` each) on one database, the "
        "client's connections spread over them as a balancer would; more than one shares the "
        "PostgreSQL broker, or on SQLite the Redis one at --redis-url (1)",
    )
    parser.add_argument("--redis-url", help="e.g. redis://127.0.0.1:6379/0 (SQLite, --processes 2)")


def check_processes_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *, sqlite: bool
) -> None:
    if not 1 <= args.processes <= 4:
        parser.error("--processes must be in [1, 4]")
    if args.processes > 1 and sqlite and not args.redis_url:
        parser.error("--processes above 1 on SQLite needs --redis-url for the shared broker")
    check_redis_url(parser, args.redis_url)


def run_bench(
    measure: Callable[[Path, Out], None],
    failures: Callable[[list[Result]], list[str]] = lambda _: [],
) -> int:
    """A scenario's main: ``measure(workdir, out)`` in a temporary directory, each result
    printed as a JSON line the moment it is handed to ``out``; then ``failures`` of them
    all, each reported loudly. 0 only when the figures can be trusted."""
    results: list[Result] = []

    def out(result: Result) -> None:
        emit(result)
        results.append(result)

    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        try:
            measure(Path(tmp), out)
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 1
    problems = failures(results)
    for problem in problems:
        log(f"FAILED: {problem}")
    return 1 if problems else 0


def wrong_answers(
    where: str, got: Result, *, errors: str = "errors", oversold: str | None = None
) -> list[str]:
    """Why a measured result cannot be trusted: units sold (or coupons issued) past what
    there was, a database that disagrees with the answers, requests that failed."""
    found = []
    if oversold is not None and got[oversold]:
        found.append(f"{where}: OVERSOLD by {got[oversold]} ({oversold})")
    if not got["consistent"]:
        found.append(f"{where}: {got['problems']}")
    if got[errors]:
        found.append(f"{where}: {got[errors]} failed requests: {got.get('first_errors')}")
    return found


def server_failures(result: Result) -> list[str]:
    """Errors the product's server logged (tracebacks, ERROR lines) during the run."""
    problems = result.get("server_log_problems")
    return [f"the server logged errors: {problems}"] if problems else []


async def least_disturbed(
    measure: Callable[[int], Awaitable[T]],
    *,
    retries: int,
    other_pct: Callable[[T], float | None],
    wrong: Callable[[T], bool] = lambda _: False,
    label: str,
    between: Callable[[], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``measure(attempt)`` until other work took at most DISTURBED_PCT of a core during
    it, at most ``retries`` more times; (the least disturbed result, the attempts made).
    A wrong result is reported as it is, never measured away: it ends the attempts."""
    best: T | None = None
    attempt = 0
    for attempt in range(1, retries + 2):
        if attempt > 1 and between is not None:
            await between()
        result = await measure(attempt)
        if wrong(result):
            best = result
            break
        if best is None or (other_pct(result) or 0) < (other_pct(best) or 0):
            best = result
        other = other_pct(result)
        if other is None or other <= DISTURBED_PCT or attempt > retries:
            break
        log(f"{label}: other work took {other}% of a core meanwhile; again")
    assert best is not None
    other = other_pct(best)
    if other is not None and other > DISTURBED_PCT:
        log(f"WARNING: {label}: other work took {other}% of a core")
    return best, attempt
