"""Coupon claims benchmark: a flash coupon claimed by many distinct members at once, and a floor.

Builds a fresh demo database (SQLite in a temporary directory, or with --database-url a new
``dinegraph_bench_<random>`` database on that PostgreSQL server, dropped at the end), starts
``dinegraph serve --workers 1`` (production mode, generated secret key) on a free loopback
port, inserts --members fresh members straight into the database (plus --concurrency
warm-up members) and mints their access tokens with the server's secret key, and creates the
coupon templates through ``createCouponTemplate`` with an OPERATOR staff token.

* ``graphql``: a flash coupon (NO_THRESHOLD, 5 yuan off, valid 7 days, --quantity copies) is
  claimed once by every member, all the claims launched together and at most --concurrency
  of them in flight (an asyncio.Semaphore over one httpx.AsyncClient whose pool holds that
  many connections). Every claim past the quantity must be refused with COUPON_SOLD_OUT.
* ``floor``: the same number of attempts at the same concurrency on a second, fresh template
  of the same quantity, straight through the driver in this process: the product's engine
  (``dinegraph.db.engine.create_engine``: on SQLite WAL and BEGIN IMMEDIATE through the
  execution option ``WRITE``; on PostgreSQL the same pool) running one transaction per
  attempt with the bare conditional ``UPDATE coupon_templates SET issued = issued + 1
  WHERE id = :id AND issued < total_quantity`` and, for the attempts that won, the INSERT of
  the coupon row the product makes too (``floor_includes_insert``); rollback otherwise.

Each burst gets fresh templates, waits for a quiet machine, and is warmed up right before
(unmeasured claims of a small spare template by the warm-up members); a burst during which
other work took more than 30% of a core is made again (--retries), unless its answers were
wrong; the least disturbed attempt is reported. ``claims_per_s`` is accepted claims over the
whole burst (first launch to last answer); ``requests_per_s`` every answer over the same
time; latencies are from sending (past the semaphore) to the answer.

After every burst the database is checked: ``over_issued`` is how far the template's issued
count or its coupon rows went past the quantity (must be 0), and the issued count, the coupon
rows, their distinct members and the accepted answers must all agree. Any failure is
reported loudly and the exit status is 1.

Prints exactly one JSON line on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/coupon_claims.py [--members 5000] [--quantity 1000] [--concurrency 200]
    .venv/bin/python bench/coupon_claims.py \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import sqlalchemy as sa
from harness.cpu import busy_pct, pct_of_core, rss_mb, wait_for_quiet
from harness.database import Demo, demo_database, write_connection
from harness.http import graphql, graphql_body, pooled_client
from harness.load import Attempt, Burst, burst
from harness.processes import Server, cli_value, start_product, stopping, wait_ready
from harness.report import BenchError, json_line, log, machine
from harness.runs import (
    Out,
    Result,
    add_common_options,
    check_common_options,
    least_disturbed,
    run_bench,
    server_failures,
    wrong_answers,
)
from harness.shop import insert_members
from harness.stats import ms, percentile, ratio
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import coupon_templates, coupons
from dinegraph.resolvers.ids import decode_id
from dinegraph.security import issue_member_token

AMOUNT_OFF_FEN = 500
VALID_DAYS = 7

CLAIM = (
    "mutation Claim($templateId: ID!) "
    "{ claimCoupon(templateId: $templateId) { coupon { id } errors { code message } } }"
)
CREATE_TEMPLATE = (
    "mutation Create($input: CreateCouponTemplateInput!) "
    "{ createCouponTemplate(input: $input) { template { id } errors { code field message } } }"
)
# The floor's claim: the bare conditional UPDATE (the product also checks status = 'ACTIVE').
TAKE_ONE = sa.text(
    "UPDATE coupon_templates SET issued = issued + 1 WHERE id = :id AND issued < total_quantity"
)

ACCEPTED, SOLD_OUT, OTHER = "accepted", "sold_out", "other"


# --- setting up -----------------------------------------------------------------------------


async def create_template(
    client: httpx.AsyncClient, server: Server, operator_token: str, title: str, quantity: int
) -> tuple[str, int]:
    """A NO_THRESHOLD template through the product; (its global id, its row id)."""
    variables = {
        "input": {
            "title": title,
            "kind": "NO_THRESHOLD",
            "amountOffFen": AMOUNT_OFF_FEN,
            "validDays": VALID_DAYS,
            "totalQuantity": quantity,
        }
    }
    operator = {"authorization": f"Bearer {operator_token}"}
    data = await graphql(client, server.base_url, CREATE_TEMPLATE, variables, operator)
    payload = data["createCouponTemplate"]
    if payload["errors"] or payload["template"] is None:
        raise BenchError(f"createCouponTemplate refused: {payload['errors']}")
    global_id = str(payload["template"]["id"])
    return global_id, decode_id(global_id, "CouponTemplate", ["id"])


# --- the two ways to claim --------------------------------------------------------------------


def graphql_attempt(
    client: httpx.AsyncClient, server: Server, template: str, tokens: list[str]
) -> Attempt:
    """Claim through /graphql as member ``i`` (body and headers made beforehand)."""
    url = f"{server.base_url}/graphql"
    body = graphql_body(CLAIM, {"templateId": template}, "Claim")
    headers = [{"content-type": "application/json", "authorization": f"Bearer {t}"} for t in tokens]

    async def attempt(i: int) -> tuple[str, str | None]:
        response = await client.post(url, content=body, headers=headers[i])
        if response.status_code != 200:
            return OTHER, f"HTTP {response.status_code}: {response.content[:200]!r}"
        answer = orjson.loads(response.content)
        if "errors" in answer:
            return OTHER, f"GraphQL errors: {str(answer['errors'])[:200]}"
        payload = answer["data"]["claimCoupon"]
        if payload["coupon"] is not None and not payload["errors"]:
            return ACCEPTED, None
        codes = [e["code"] for e in payload["errors"]]
        if codes == ["COUPON_SOLD_OUT"]:
            return SOLD_OUT, None
        return OTHER, f"claimCoupon refused with {codes}: {payload['errors'][:1]}"

    return attempt


def floor_attempt(engine: AsyncEngine, template_id: int, member_ids: list[int]) -> Attempt:
    """One transaction: the bare conditional UPDATE, and the coupon INSERT when it won."""

    async def attempt(i: int) -> tuple[str, str | None]:
        async with write_connection(engine) as conn:
            taken = await conn.execute(TAKE_ONE, {"id": template_id})
            if taken.rowcount != 1:
                await conn.rollback()
                return SOLD_OUT, None
            now = datetime.now(UTC)
            await conn.execute(
                coupons.insert().values(
                    template_id=template_id,
                    member_id=member_ids[i],
                    status="AVAILABLE",
                    valid_from=now,
                    valid_until=now + timedelta(days=VALID_DAYS),
                    claimed_at=now,
                )
            )
            await conn.commit()
            return ACCEPTED, None

    return attempt


# --- the burst --------------------------------------------------------------------------------


async def issued_in_db(engine: AsyncEngine, template_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(coupon_templates.c.issued, coupon_templates.c.total_quantity).where(
                    coupon_templates.c.id == template_id
                )
            )
        ).one()
        counted = (
            await conn.execute(
                sa.select(
                    sa.func.count().label("rows"),
                    sa.func.count(sa.distinct(coupons.c.member_id)).label("members"),
                ).where(coupons.c.template_id == template_id)
            )
        ).one()
    return {
        "issued": int(row.issued),
        "total_quantity": int(row.total_quantity),
        "rows": int(counted.rows),
        "members": int(counted.members),
    }


def summarise(run: Burst, db: dict[str, int], quantity: int) -> Result:
    if not run.samples:
        raise BenchError("no attempt completed")
    outcomes = [s[2] for s in run.samples]
    accepted, sold_out = outcomes.count(ACCEPTED), outcomes.count(SOLD_OUT)
    other = outcomes.count(OTHER)
    latencies = sorted(s[1] for s in run.samples)
    sold_out_at = min((s[0] for s in run.samples if s[2] == SOLD_OUT), default=None)
    over_issued = max(0, db["issued"] - quantity, db["rows"] - quantity)
    problems: list[str] = []
    if over_issued:
        problems.append(
            f"OVER-ISSUED: issued {db['issued']}, {db['rows']} coupon rows, quantity {quantity}"
        )
    if not db["issued"] == db["rows"] == db["members"] == accepted:
        problems.append(
            f"issued {db['issued']}, {db['rows']} coupon rows of {db['members']} members, "
            f"{accepted} accepted answers: they should all agree"
        )
    if accepted != min(quantity, run.attempts):
        problems.append(f"{accepted} accepted of {min(quantity, run.attempts)} to give out")

    assert run.cpu is not None
    cpu, seconds = run.cpu, run.seconds
    return {
        "claims_per_s": round(accepted / run.seconds, 1),
        "requests_per_s": round(len(outcomes) / run.seconds, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "accepted": accepted,
        "sold_out": sold_out,
        "other_errors": other,
        "over_issued": over_issued,
        "seconds": round(run.seconds, 3),
        "max_ms": ms(latencies[-1]),
        "sold_out_after_s": None if sold_out_at is None else round(sold_out_at, 3),
        "issued_db": db["issued"],
        "coupon_rows_db": db["rows"],
        "consistent": not problems,
        "problems": problems,
        "first_errors": sorted(set(run.problems))[:3],
        # CPU over the burst in % of one core (the machine has nproc cores).
        "server_cpu_pct": pct_of_core(cpu.server_s, seconds),
        "client_cpu_pct": pct_of_core(cpu.client_s, seconds),
        "database_cpu_pct": pct_of_core(cpu.database_s, seconds),
        "other_cpu_pct": pct_of_core(cpu.other_s(seconds), seconds),
    }


async def warm_up(attempt: Attempt, attempts: int, concurrency: int, tag: str) -> None:
    """Unmeasured claims of a spare template: connections, pools and code paths warm."""
    run = await burst(attempt, attempts, concurrency, error=OTHER)
    if run.problems:
        raise BenchError(f"warm-up ({tag}) failed: {sorted(set(run.problems))[:3]}")
    log(f"warm-up ({tag}): {attempts} claims in {run.seconds:.2f}s")


# --- main -------------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, demo: Demo, product: Server, operator_token: str
) -> Result:
    await wait_ready(product)
    settings = demo.settings()  # the server's secret key, so that the tokens verify
    engine = demo.engine()
    results: Result = {}
    try:
        async with pooled_client(args.concurrency) as client:
            run_tag = secrets.token_hex(3)
            warm_ids = await insert_members(engine, f"warm-{run_tag}", args.concurrency)
            member_ids = await insert_members(engine, f"claim-{run_tag}", args.members)
            log(f"inserted {len(member_ids)} members (+{len(warm_ids)} for the warm-up)")
            warm_tokens = [issue_member_token(settings, i) for i in warm_ids]
            member_tokens = [issue_member_token(settings, i) for i in member_ids]

            def attempts_on(target: str, template: tuple[str, int], warm: bool) -> Attempt:
                if target == "graphql":
                    tokens = warm_tokens if warm else member_tokens
                    return graphql_attempt(client, product, template[0], tokens)
                return floor_attempt(engine, template[1], warm_ids if warm else member_ids)

            async def one_burst(target: str, attempt_no: int) -> Result:
                # Fresh templates every time: a spare one to warm up on, and the flash one.
                tag = f"{target[0]}{attempt_no}{run_tag}"
                warm_template = await create_template(
                    client, product, operator_token, f"预热券{tag}", args.concurrency // 2 + 1
                )
                flash = await create_template(
                    client, product, operator_token, f"闪抢券{tag}", args.quantity
                )
                busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                # Right before the burst, so that the client's connections are fresh.
                await warm_up(
                    attempts_on(target, warm_template, warm=True),
                    len(warm_ids),
                    args.concurrency,
                    target,
                )
                log(
                    f"{target}: {args.members} claims of {args.quantity} coupons, "
                    f"{args.concurrency} in flight"
                )
                run = await burst(
                    attempts_on(target, flash, warm=False),
                    args.members,
                    args.concurrency,
                    server_pid=product.pid if target == "graphql" else None,
                    postgres=demo.postgres,
                    error=OTHER,
                )
                result = summarise(run, await issued_in_db(engine, flash[1]), args.quantity)
                result["machine_busy_before_pct"] = busy_pct(busy)
                result["attempt"] = attempt_no
                log(f"{target}: {json_line(result)}")
                return result

            for target in ("graphql", "floor"):
                best, attempts = await least_disturbed(
                    functools.partial(one_burst, target),
                    retries=args.retries,
                    other_pct=lambda r: r["other_cpu_pct"],
                    wrong=lambda r: not r["consistent"] or bool(r["other_errors"]),
                    label=target,
                )
                best["attempts"] = attempts
                results[target] = best
    finally:
        await engine.dispose()

    graphql, floor = results["graphql"], results["floor"]
    return {
        "scenario": "coupon_claims",
        "database": demo.database,
        "members": args.members,
        "quantity": args.quantity,
        "concurrency": args.concurrency,
        "floor_includes_insert": True,
        "floor_driver": "dinegraph.db.engine.create_engine (SQLAlchemy Core, "
        + ("asyncpg)" if demo.postgres else "aiosqlite, BEGIN IMMEDIATE)"),
        "graphql": graphql,
        "floor": floor,
        "ratio_requests_per_s": ratio(graphql["requests_per_s"], floor["requests_per_s"]),
        "ratio_claims_per_s": ratio(graphql["claims_per_s"], floor["claims_per_s"]),
        "server_peak_rss_mb": rss_mb(product.pid, "VmHWM") or 0.0,
        "server_log_problems": product.log_problems()[:5],
        "server_log_warnings": product.log_warnings()[:5],
        "machine": machine(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000, help="claiming members (5000)")
    parser.add_argument("--quantity", type=int, default=1000, help="coupons on offer (1000)")
    parser.add_argument("--concurrency", type=int, default=200, help="claims in flight (200)")
    add_common_options(
        parser,
        retries=2,
        retries_help="run a burst again (up to this many times) when other work disturbed it",
    )
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    if not 1 <= args.members <= 100_000 or not 1 <= args.quantity <= 1_000_000:
        parser.error("--members must be in [1, 100000] and --quantity in [1, 1000000]")
    if not 1 <= args.concurrency <= 1000:
        parser.error("--concurrency must be in [1, 1000]")
    return args


def failures(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        for target in ("graphql", "floor"):
            got = result[target]
            found += wrong_answers(target, got, errors="other_errors", oversold="over_issued")
        found += server_failures(result)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_in(workdir: Path, out: Out) -> None:
        with demo_database(args.database_url, workdir) as demo:
            operator = cli_value(["staff-token", "--role", "OPERATOR"], demo.env)
            product = start_product("graphql", demo.env, workdir)
            with stopping(product):
                out(asyncio.run(measure(args, demo, product, operator)))

    return run_bench(measure_in, failures)


if __name__ == "__main__":
    sys.exit(main())
