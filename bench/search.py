"""Product search benchmark: building the index, and answering a search.

Two catalogues, measured in this process (the domain's index alone, no I/O): the demo
chain's (about a hundred products) and a synthetic one of --products products (5,000 by
default: dish names made of cooking methods, ingredients and styles, with tags and
descriptions). For each: the index's build time (median of --builds builds) and the latency
of one search (match and rank) over a mix of queries typed as customers type them (hanzi,
pinyin, initials, a typo, a synonym, a tag, a miss), --rounds times each. The very first
build, which loads jieba's and pypinyin's dictionaries, is reported on its own.

Then the whole path on a real server: a fresh demo database (SQLite, or with
--database-url a scratch PostgreSQL database), `dinegraph serve --workers 1` in production
mode, and the mini-program's SearchProducts document sent from one client, the same mix
--rounds times: the first search (which builds the server's index) and the p50/p99 of the
rest.

Prints exactly one JSON line on stdout; progress goes to stderr. Usage::

    .venv/bin/python bench/search.py [--products 5000] [--rounds 50] [--builds 3]
    .venv/bin/python bench/search.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness.database import demo_database
from harness.http import graphql
from harness.ids import global_id
from harness.processes import start_product, stopping, wait_ready
from harness.report import BenchError, log, machine, product_revision
from harness.runs import Out, add_common_options, check_common_options, run_bench
from harness.stats import percentile

from dinegraph.db import demo_data
from dinegraph.domain.catalog import Channel
from dinegraph.domain.search import (
    SearchDocument,
    SynonymSet,
    clean_query,
    rank,
)
from dinegraph.domain.search_matching import SearchIndex, build_index

QUERIES = (
    "糖醋排骨",
    "排骨",
    "tcpg",
    "tangcu",
    "tangcupaigo",
    "糖醋拍骨",
    "麻小",
    "夜宵",
    "火星陨石",
)
SEARCH = """query SearchProducts($query: String!, $storeId: ID!) {
  searchProducts(query: $query, storeId: $storeId, channel: DELIVERY, first: 20) {
    totalCount
    edges { matchedBy node { id name skus { id price { fen } stock { soldOut } } } }
  }
}"""

_METHODS = (
    "红烧",
    "清蒸",
    "干煸",
    "香辣",
    "糖醋",
    "椒盐",
    "蒜蓉",
    "豉汁",
    "黑椒",
    "麻辣",
    "白灼",
    "酱爆",
)
_INGREDIENTS = (
    "排骨",
    "牛肉",
    "鸡翅",
    "鱼片",
    "虾仁",
    "豆腐",
    "茄子",
    "土豆",
    "花菜",
    "肥肠",
    "羊排",
    "鸭舌",
    "扇贝",
    "鱿鱼",
    "猪蹄",
    "牛腩",
    "鸡丁",
    "菜心",
    "芥兰",
    "藕片",
)
_STYLES = ("", "煲", "饭", "面", "锅", "套餐", "(预制装)", "(即热)", "拼盘", "小炒")
_TAGS = ("招牌", "人气", "辣", "酸甜", "下饭", "新品", "限定", "儿童", "清淡", "夜宵")


def _demo_documents() -> tuple[list[SearchDocument], list[SynonymSet]]:
    categories = {c["code"]: c for c in demo_data.CATEGORIES}

    def chain(code: str | None) -> tuple[str, ...]:
        names: list[str] = []
        while code:
            names.append(categories[code]["name"])
            code = categories[code]["parent"]
        return tuple(names)

    documents = [
        SearchDocument(
            product_id=n,
            name=p["name"],
            description=p["description"],
            tags=tuple(p["tags"]),
            categories=chain(p["category"]),
            sku_names=tuple(s["name"] for s in p["skus"]),
            channels=frozenset(Channel(c) for c in p["channels"]),
        )
        for n, p in enumerate(demo_data.PRODUCTS, start=1)
        if p.get("listed", True)
    ]
    synonyms = [SynonymSet(s["term"], tuple(s["synonyms"])) for s in demo_data.SEARCH_SYNONYMS]
    return documents, synonyms


def _synthetic_documents(count: int) -> tuple[list[SearchDocument], list[SynonymSet]]:
    rng = random.Random(20261202)
    documents, synonyms = _demo_documents()
    seen = {d.name for d in documents}
    while len(documents) < count:
        name = rng.choice(_METHODS) + rng.choice(_INGREDIENTS) + rng.choice(_STYLES)
        if name in seen:
            name += f"{len(documents)}号"
        seen.add(name)
        documents.append(
            SearchDocument(
                product_id=len(documents) + 1,
                name=name,
                description=f"{rng.choice(_METHODS)}做法，精选{rng.choice(_INGREDIENTS)}，现点现做。",
                tags=tuple(rng.sample(_TAGS, k=2)),
                categories=(rng.choice(("粤式小炒", "湘味辣菜", "冷冻预制菜", "煲仔饭炒饭")),),
                sku_names=("小份", "大份"),
                channels=frozenset(rng.sample(list(Channel), k=3)),
            )
        )
    return documents, synonyms


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _measure_index(
    label: str, catalogue: tuple[list[SearchDocument], list[SynonymSet]], args: argparse.Namespace
) -> dict[str, Any]:
    documents, synonyms = catalogue
    built: list[SearchIndex] = []
    builds = [
        _timed(lambda: built.append(build_index(documents, synonyms))) for _ in range(args.builds)
    ]
    index = built[-1]
    popular = {d.product_id: (d.product_id * 7919) % 50 for d in documents}
    latencies: list[float] = []
    found: dict[str, int] = {}
    for _ in range(args.rounds):
        for query in QUERIES:
            cleaned = clean_query(query)
            started = time.perf_counter()
            hits = rank(index.search(cleaned, Channel.DELIVERY), popular)
            latencies.append(time.perf_counter() - started)
            found[query] = len(hits)
    latencies.sort()
    log(f"{label}: {len(documents)} products, built in {_ms(statistics.median(builds))} ms")
    return {
        "products": len(documents),
        "build_ms": _ms(statistics.median(builds)),
        "search_p50_ms": _ms(percentile(latencies, 50)),
        "search_p99_ms": _ms(percentile(latencies, 99)),
        "searches": len(latencies),
        "found": found,
    }


async def _measure_server(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with demo_database(args.database_url, workdir) as demo:
        server = start_product("search", demo.env, workdir)
        with stopping(server):
            await wait_ready(server)
            store = global_id("Store", 3)
            latencies: list[float] = []
            async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
                first = 0.0
                for round_no in range(args.rounds):
                    for query in QUERIES:
                        started = time.perf_counter()
                        await graphql(
                            client, server.base_url, SEARCH, {"query": query, "storeId": store}
                        )
                        took = time.perf_counter() - started
                        if round_no == 0 and query == QUERIES[0]:
                            first = took  # the server builds its index for it
                        else:
                            latencies.append(took)
            problems = server.log_problems()
            if problems:
                raise BenchError(f"the server logged errors: {problems[:3]}")
    latencies.sort()
    return {
        "database": demo.database,
        "first_search_ms": _ms(first),
        "http_p50_ms": _ms(percentile(latencies, 50)),
        "http_p99_ms": _ms(percentile(latencies, 99)),
        "requests": len(latencies) + 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=5000, help="synthetic catalogue (5000)")
    parser.add_argument("--rounds", type=int, default=50, help="times each query runs (50)")
    parser.add_argument("--builds", type=int, default=3, help="index builds timed (3)")
    add_common_options(parser, retries=None)
    args = parser.parse_args()
    check_common_options(parser, args)
    if not 100 <= args.products <= 100_000:
        parser.error("--products must be in [100, 100000]")
    if not 1 <= args.rounds <= 10_000 or not 1 <= args.builds <= 20:
        parser.error("--rounds must be in [1, 10000] and --builds in [1, 20]")

    def measure(workdir: Path, out: Out) -> None:
        revision = product_revision()
        # jieba and pypinyin load their dictionaries on first use: a server's first build.
        cold = _timed(lambda: build_index(*_demo_documents()))
        log(f"first build, dictionaries loaded: {_ms(cold)} ms")
        demo = _measure_index("demo", _demo_documents(), args)
        synthetic = _measure_index("synthetic", _synthetic_documents(args.products), args)
        served = asyncio.run(_measure_server(args, workdir))
        out(
            {
                "bench": "search",
                "commit": revision.commit,
                "dirty": revision.dirty,
                "first_build_ms": _ms(cold),
                "demo_index": demo,
                "synthetic_index": synthetic,
                "server": served,
                "queries": list(QUERIES),
                "machine": machine(),
            }
        )

    return run_bench(measure)


if __name__ == "__main__":
    sys.exit(main())
