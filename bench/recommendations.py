"""猜你喜欢 benchmark: offline accuracy on a time-split hold-out, model build time and serving
latency, on order histories generated for the demo chain (dinegraph/db/demo_history.py).

1. Accuracy (pure model, in process): the generated orders are split by time (the last
   ``--holdout`` share held out). For each member with history before the split and an
   order after it (up to ``--eval-members`` of them), the first held-out order is the
   truth; popularity alone (store × meal period), item-kNN alone and the blend (kNN, taste
   tags, order-again, popularity, weather) each rank the products the store sells on that
   order's channel, in that order's meal period and weather. Figures: hit-rate@10 (some
   product of the order in the top 10), NDCG@10, coverage (distinct products recommended
   over the catalogue).
2. Build: a scratch demo database (the harness's: SQLite, or with --database-url a new
   database on that PostgreSQL server, dropped at the end) gets the whole history written
   as orders, then ``build_recommendations`` (what `dinegraph build-recommendations` runs)
   is timed.
3. Serving: the `recommendations` HOME query through a real `dinegraph serve --workers 1`
   (production mode) on a loopback port, one request at a time, for ``--requests`` random
   members, each asked twice: cold (their history is read) and warm (the profile cached).

Prints one JSON line on stdout; progress on stderr. Usage::

    .venv/bin/python bench/recommendations.py [--members 10000] [--orders 100000]
    .venv/bin/python bench/recommendations.py --smoke
    .venv/bin/python bench/recommendations.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness.database import Demo, check_database_url, demo_database
from harness.processes import Server, start_product, stopping, terminate_as_exit, wait_ready
from harness.report import BenchError, emit, log
from harness.stats import latency_figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dinegraph.db import demo_data  # noqa: E402
from dinegraph.db.demo_history import SHANGHAI, History, generate_history  # noqa: E402
from dinegraph.domain.catalog import Category, Channel, Product, ProductKind  # noqa: E402
from dinegraph.domain.recommendation_blend import (  # noqa: E402
    BLEND,
    CF_ONLY,
    POPULARITY_ONLY,
    Blend,
    Request,
    profile_of,
    recommend,
)
from dinegraph.domain.recommendations import (  # noqa: E402
    Basket,
    Scene,
    Weather,
    build_model,
    meal_period,
    product_features,
)

K = 10


def _catalogue() -> tuple[dict[int, Product], dict[int, Category], dict[str, int]]:
    cats = {c["code"]: n + 1 for n, c in enumerate(demo_data.CATEGORIES)}
    categories = {
        cats[c["code"]]: Category(cats[c["code"]], c["name"], cats.get(c["parent"] or ""), 0)
        for c in demo_data.CATEGORIES
    }
    products: dict[int, Product] = {}
    sku_product: dict[str, int] = {}
    for n, p in enumerate(demo_data.PRODUCTS, start=1):
        products[n] = Product(
            n,
            cats[p["category"]],
            ProductKind(p["kind"]),
            p["name"],
            "",
            tuple(p["tags"]),
            (),
            frozenset(Channel(c) for c in p["channels"]),
            True,
            0,
        )
        for sku in p["skus"]:
            sku_product[sku["code"]] = n
    return products, categories, sku_product


def _baskets(history: History, sku_product: dict[str, int]) -> list[tuple[Basket, str, str]]:
    stores = {s["code"]: n + 1 for n, s in enumerate(demo_data.STORES)}
    return [
        (
            Basket(
                member=f"m:{o.member}",
                store_id=stores[o.store],
                period=meal_period(o.placed_at.astimezone(SHANGHAI).time()),
                product_ids=tuple(dict.fromkeys(sku_product[s] for s in o.skus)),
                at=o.placed_at,
            ),
            o.channel,
            o.weather,
        )
        for o in history.orders
    ]


def accuracy(history: History, holdout: float, eval_members: int, seed: int) -> dict[str, Any]:
    products, categories, sku_product = _catalogue()
    rows = _baskets(history, sku_product)
    cut = int(len(rows) * (1 - holdout))
    train = [b for b, _, _ in rows[:cut]]
    model = build_model(train)
    by_member: dict[str, list[Basket]] = {}
    for basket in train:
        by_member.setdefault(basket.member, []).append(basket)
    truth: dict[str, tuple[Basket, str, str]] = {}
    for basket, channel, weather in rows[cut:]:
        if basket.member in by_member and basket.member not in truth:
            truth[basket.member] = (basket, channel, weather)
    chosen = sorted(truth)
    random.Random(seed).shuffle(chosen)
    chosen = chosen[:eval_members]
    features = {p.id: product_features(p, categories) for p in products.values()}
    variants: dict[str, Blend] = {"popularity": POPULARITY_ONLY, "cf": CF_ONLY, "blend": BLEND}
    figures: dict[str, Any] = {}
    for name, blend in variants.items():
        hits, gains, seen = 0, 0.0, set()
        for member in chosen:
            basket, channel, weather = truth[member]
            on_sale = {i: p for i, p in products.items() if Channel(channel) in p.channels}
            profile = profile_of(by_member[member], (), basket.at)
            request = Request(
                scene=Scene.HOME,
                store_id=basket.store_id,
                period=basket.period,
                weather=Weather(weather),
                first=K,
            )
            ranked = [
                r.product_id
                for r in recommend(request, model, profile, on_sale, features, blend=blend)
            ]
            seen.update(ranked)
            wanted = set(basket.product_ids)
            if wanted & set(ranked):
                hits += 1
            dcg = sum(1 / math.log2(i + 2) for i, p in enumerate(ranked) if p in wanted)
            ideal = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), K)))
            gains += dcg / ideal
        n = max(len(chosen), 1)
        figures[name] = {
            "hit_rate_at_10": round(hits / n, 4),
            "ndcg_at_10": round(gains / n, 4),
            "coverage": round(len(seen) / len(products), 4),
        }
    figures["evaluated_members"] = len(chosen)
    figures["train_orders"] = cut
    figures["heldout_orders"] = len(rows) - cut
    return figures


async def build(demo: Demo, history: History) -> dict[str, Any]:
    """Write the history as orders into the demo database and time the model's build."""
    from dinegraph.db.demo_history import insert_history
    from dinegraph.db.engine import WRITE
    from dinegraph.db.recommendations import build_recommendations

    engine = demo.engine()
    try:
        started = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                await insert_history(conn, history)
        log(f"wrote {len(history.orders)} orders in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        built = await build_recommendations(engine, datetime.now(UTC), SHANGHAI)
        seconds = time.perf_counter() - started
        log(f"built model {built.version} in {seconds:.1f} s")
    finally:
        await engine.dispose()
    return {"build_seconds": round(seconds, 2), "build_orders": built.orders}


async def serve(demo: Demo, server: Server, members: int, seed: int) -> dict[str, Any]:
    """HOME recommendations through a real server's /graphql, one request at a time: each
    member twice, the first reading their history (cold), the second from the profile cache
    (warm)."""
    import sqlalchemy as sa

    from dinegraph.db.tables import members as member_table
    from dinegraph.resolvers.ids import encode_id
    from dinegraph.security import issue_member_token

    await wait_ready(server)
    engine = demo.engine()
    try:
        async with engine.connect() as conn:
            ids = list(
                await conn.scalars(
                    sa.select(member_table.c.id).where(
                        member_table.c.wechat_openid.like("bench-member-%")
                    )
                )
            )
    finally:
        await engine.dispose()
    settings = demo.settings()
    chosen = random.Random(seed).sample(ids, min(members, len(ids)))
    store = encode_id("Store", 1)
    query = (
        f'{{ recommendations(scene: HOME, storeId: "{store}", first: 10) '
        "{ product { id name skus { id price { fen } } } reason } }"
    )
    cold: list[float] = []
    warm: list[float] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, trust_env=False) as client:
        for n, member in enumerate(chosen):
            headers = {"Authorization": f"Bearer {issue_member_token(settings, member)}"}
            for into in (cold, warm):
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": query}, headers=headers)
                into.append(time.perf_counter() - started)
                body = response.json()
                if response.status_code != 200 or not body.get("data", {}).get("recommendations"):
                    raise BenchError(f"no recommendations: {response.status_code} {body}")
                if n == 0 and into is cold:
                    log(f"first answer: {body['data']['recommendations'][0]}")
    problems = server.log_problems()
    if problems:
        raise BenchError("errors in the server's log:\n" + "\n".join(problems[:5]))
    return {
        "serve_cold_ms": latency_figures(cold),
        "serve_warm_ms": latency_figures(warm),
        "serve_requests": len(cold) + len(warm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--eval-members", type=int, default=2000)
    parser.add_argument(
        "--requests", type=int, default=300, help="members asked twice (cold, then warm)"
    )
    parser.add_argument("--database-url", default=None, help="a loopback PostgreSQL server")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="500 members, 5000 orders")
    args = parser.parse_args()
    check_database_url(parser, args.database_url)
    if args.smoke:
        args.members, args.orders, args.eval_members, args.requests = 500, 5000, 200, 20
    now = datetime.now(UTC)
    started = time.perf_counter()
    history = generate_history(
        members=args.members, orders=args.orders, now=now, seed=args.seed, prefix="bench-member"
    )
    log(f"generated {len(history.orders)} orders in {time.perf_counter() - started:.1f} s")
    figures = accuracy(history, args.holdout, args.eval_members, args.seed)
    log(f"accuracy: {figures}")
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="dinegraph-bench-") as tmp:
        workdir = Path(tmp)
        with demo_database(args.database_url, workdir) as demo:
            served = asyncio.run(build(demo, history))
            env = {**demo.env, "DINEGRAPH_RECOMMENDATIONS_REBUILD_MINUTES": "0"}
            server = start_product("graphql", env, workdir)
            with stopping(server):
                served |= asyncio.run(serve(demo, server, args.requests, args.seed))
    popularity = figures["popularity"]["hit_rate_at_10"]
    blend = figures["blend"]["hit_rate_at_10"]
    emit(
        {
            "scenario": "recommendations",
            "members": args.members,
            "orders": args.orders,
            **figures,
            "blend_vs_popularity_hit_rate_points": round((blend - popularity) * 100, 2),
            **served,
            "database": "postgresql" if args.database_url else "sqlite",
            "serving": "dinegraph serve --workers 1 (production), HOME, one request at a time",
        }
    )


if __name__ == "__main__":
    main()
