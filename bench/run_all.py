"""Every benchmark scenario, one after another, each one's JSON lines on stdout.

First all of them on SQLite; then, with --database-url (default: $BENCH_DATABASE_URL), those
that take a database again on a scratch PostgreSQL database of that server; --redis-url
(default: $BENCH_REDIS_URL) adds the stock fan-out's Redis configuration. ``--smoke`` runs
each with the smallest sizes its options allow, a few seconds each: it shows that the
scenarios work end to end, not how fast anything is. A scenario that fails is reported and
the others still run; the exit status is 1 if any failed. Usage::

    .venv/bin/python bench/run_all.py [--smoke] [--only menu,checkout]
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        BENCH_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/run_all.py

BENCHMARKS.md lists each scenario's own command; a new scenario gets a line here too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.database import check_database_url, check_redis_url
from harness.report import log

BENCH_DIR = Path(__file__).resolve().parent
QUICK = "--retries 0 --quiet-wait 0"


@dataclass(frozen=True)
class Scenario:
    name: str  # bench/<name>.py
    smoke: str  # options for the smallest sizes they allow
    database: bool = True  # takes --database-url, so runs on PostgreSQL too
    redis: bool = False  # takes --redis-url
    postgres_also: str = ""  # on PostgreSQL, a second run with these options too


SCENARIOS = (
    Scenario("menu", "--clients 2 --seconds 1 --warmup 0.5 --quiet-wait 0"),
    Scenario("coupon_claims", f"--members 20 --quantity 5 --concurrency 4 {QUICK}"),
    Scenario("stock_contention", f"--clients 2 --seconds 1 --stock 5 --spread-skus 2 {QUICK}"),
    Scenario(
        "stock_fanout",
        f"--subscribers 2,4 --sales 1 --gap 0.1 --client-procs 1 {QUICK}",
        redis=True,
    ),
    Scenario("checkout", f"--orders 10 --hot-attempts 10 --hot-stock 3 --concurrency 4 {QUICK}"),
    Scenario(
        "flash_sale",
        f"--buyers 20 --quota 5 --connections 4 --spread 0.2 {QUICK}",
        postgres_also="--processes 2",  # two processes, as a two-core node serves
    ),
    Scenario(
        "courier_fanout",
        "--deliveries 4 --stores 2 --map-subscribers 1 --seconds 1 --warmup 0 --calibrate 1 "
        f"--drain 5 --client-procs 1 --report-connections 2 --setup-concurrency 4 {QUICK}",
    ),
    Scenario("search", "--products 500 --rounds 2 --builds 1 --quiet-wait 0"),
    Scenario("subscription_memory", "--events 300", database=False),
    Scenario("cli_startup", "--runs 1 --bytecode installed", database=False),
    Scenario("recommendations", "--smoke"),
)


def commands(
    scenarios: tuple[Scenario, ...],
    *,
    database_url: str | None,
    redis_url: str | None,
    smoke: bool,
) -> list[tuple[str, list[str]]]:
    """(label, arguments of ``python``) of every run, in order: SQLite first."""
    runs = []
    for database in (None, database_url) if database_url else (None,):
        for scenario in scenarios:
            if database is not None and not scenario.database:
                continue
            argv = [str(BENCH_DIR / f"{scenario.name}.py")]
            argv += scenario.smoke.split() if smoke else []
            if database is not None:
                argv += ["--database-url", database]
                argv += ["--redis-url", redis_url] if scenario.redis and redis_url else []
            where = "postgresql" if database else "sqlite" if scenario.database else "no database"
            runs.append((f"{scenario.name} ({where})", argv))
            if database is not None and scenario.postgres_also:
                also = scenario.postgres_also
                runs.append((f"{scenario.name} {also} ({where})", [*argv, *also.split()]))
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the smallest sizes, not figures")
    parser.add_argument("--only", default="", help="comma-separated scenario names (all)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or None)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL") or None)
    args = parser.parse_args(argv)
    check_database_url(parser, args.database_url)
    check_redis_url(parser, args.redis_url)
    names = {s.name for s in SCENARIOS}
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    if set(args.only) - names:
        parser.error(f"--only takes {', '.join(sorted(names))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = tuple(s for s in SCENARIOS if not args.only or s.name in args.only)
    runs = commands(
        chosen, database_url=args.database_url, redis_url=args.redis_url, smoke=args.smoke
    )
    failed = []
    for label, argv in runs:
        log(f"=== {label}: {' '.join(argv)}")
        started = time.monotonic()
        code = subprocess.run([sys.executable, *argv], stdin=subprocess.DEVNULL).returncode
        log(f"=== {label}: exit {code} after {time.monotonic() - started:.0f}s")
        if code != 0:
            failed.append(label)
    log(
        f"{len(runs) - len(failed)} passed, {len(failed)} failed"
        + (f": {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
