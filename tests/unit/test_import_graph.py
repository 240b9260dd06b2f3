"""Imports point one way: ``app → schema → resolvers → domain ← db, events``.

Every module under ``dinegraph/`` is read with ``ast`` (nothing is imported), and each of
its imports is checked against the layers below: module level, inside functions and under
``TYPE_CHECKING`` alike, since a typing-only import still ties the two modules together.

| layer        | modules                         | may import (and the stdlib)            |
| ------------ | ------------------------------- | -------------------------------------- |
| domain       | domain/**                       | domain; no outside library but the     |
|              |                                 | pure text ones search uses             |
| config       | settings                        | domain                                 |
| db           | db/**                           | domain, db, config, persisted (1)      |
| events       | events/**                       | domain, events                         |
| integrations | integrations/**                 | domain, integrations                   |
| resolvers    | resolvers/**                    | domain, resolvers, events (2), context (3) |
| schema       | schema/**                       | domain, resolvers, schema, context (3),|
|              |                                 | edge, config                           |
| edge         | security, payments, persisted,  | domain, config, edge, resolvers (4)    |
|              | wechatpay_notify, admin_console,|                                        |
|              | i18n, graphiql, request_limits, |                                        |
|              | public_reads, read_cache,       |                                        |
|              | search_index                    |                                        |
|              | credential_cache, passwords,    |                                        |
|              | key_use, printing               |                                        |
| context      | context                         | everything (wiring)                    |
| wiring       | app, view, shared_feeds,        | everything                             |
|              | schedules, wechatpay_wiring,    |                                        |
|              | carrier_callbacks,              |                                        |
|              | cli,                            |                                        |
|              | cli_app, cli_credentials,       |                                        |
|              | cli_operations, simulate,       |                                        |
|              | collector                       |                                        |

``dinegraph`` itself (the package's ``__init__``: the version) may be imported by anyone.

Resolvers, schema and edge modules also import no database or broker driver (sqlalchemy,
asyncpg, aiosqlite, alembic, redis): they reach storage only through ports.

Why the exceptions:

1. ``persisted`` declares the persisted-query store it needs (``StoredDocument``, the
   ``DocumentStore`` protocol); ``db/documents.py`` implements it, as db implements the
   domain's ports.
2. Subscription resolvers name the topics they join (``events/codec.py``); the hub itself
   comes to them through the context.
3. ``Context`` is the object a resolver receives as ``info.context``: the request's viewer
   and the ports wiring chose (``uow()``, the reader, the loaders). It is wiring, but the
   GraphQL side may name its type; adapters stay behind it, never imported by name.
4. ``payments`` decodes and encodes the order's global ID as GraphQL does
   (``resolvers/ids.py``, the one place IDs are decoded); ``public_reads`` decodes the IDs
   a cached read's arguments name (a menu's store) the same way.

The edge modules serve the app at its edge (tokens and API keys, the payment callback,
persisted queries, which reads are public and the cache of their answers, messages in the
viewer's language, the GraphiQL page, the limits on a request's size and JSON) but choose no
adapter: the app passes them ports (``security.Credentials``, ``payments.payment_notify``'s
units of work, ``persisted.DocumentStore``). Only ``app`` (with ``view``, its GraphQL view, and
``schedules``, its in-server sweeps), ``context`` and ``cli`` (with its ``cli_*`` modules)
pick concrete adapters; ``simulate`` is a client that drives a server over HTTP, and
``collector`` sets up the garbage collector of a serving process.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "dinegraph"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

# Top-level modules of the package (not under a sub-package) and their layers.
MODULE_LAYERS = {
    "settings": "config",
    "security": "edge",
    "credential_cache": "edge",
    "passwords": "edge",
    "key_use": "edge",
    "payments": "edge",
    "wechatpay_notify": "edge",
    "persisted": "edge",
    "i18n": "edge",
    "graphiql": "edge",
    "admin_console": "edge",
    "request_limits": "edge",
    "public_reads": "edge",
    "read_cache": "edge",
    "search_index": "edge",
    "outbound": "edge",
    "printing": "edge",
    "context": "context",
    "app": "wiring",
    "view": "wiring",
    "shared_feeds": "wiring",
    "schedules": "wiring",
    "wechatpay_wiring": "wiring",
    "carrier_callbacks": "wiring",
    "cli": "wiring",
    "cli_app": "wiring",
    "cli_credentials": "wiring",
    "cli_operations": "wiring",
    "simulate": "wiring",
    "collector": "wiring",
}
PACKAGE_LAYERS = {"domain", "db", "events", "integrations", "resolvers", "schema"}
EVERYTHING = frozenset({*PACKAGE_LAYERS, "config", "edge", "context", "wiring", "package"})

ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "config": frozenset({"domain"}),
    "db": frozenset({"domain", "db", "config"}),
    "events": frozenset({"domain", "events"}),
    "integrations": frozenset({"domain", "integrations"}),
    "resolvers": frozenset({"domain", "resolvers", "events", "context"}),
    "schema": frozenset({"domain", "resolvers", "schema", "context", "edge", "config"}),
    "edge": frozenset({"domain", "config", "edge", "resolvers"}),
    "context": EVERYTHING,
    "wiring": EVERYTHING,
}
# Single modules a layer may import though their layer is out of bounds (see 1. above).
ALLOWED_MODULES: dict[str, frozenset[str]] = {
    "db": frozenset({"dinegraph.persisted"}),
}

# The domain may use the standard library and these pure libraries, nothing else, computing
# only: search reads Chinese text with jieba, pypinyin and rapidfuzz (words, pinyin, typos),
# their dictionaries held in marisa tries; the recommendation model is numpy and scipy.
PURE_LIBRARIES: frozenset[str] = frozenset(
    {"jieba", "pypinyin", "marisa_trie", "rapidfuzz", "numpy", "scipy"}
)
DRIVERS = frozenset({"sqlalchemy", "asyncpg", "aiosqlite", "alembic", "redis"})
NO_DRIVERS = frozenset({"resolvers", "schema", "edge"})


@dataclass(frozen=True, slots=True)
class Import:
    line: int
    target: str  # the absolute module name imported


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a dinegraph module; None if the table does not place it."""
    parts = module.split(".")
    if parts == [PACKAGE]:
        return "package"
    if parts[1] in PACKAGE_LAYERS:
        return parts[1]
    return MODULE_LAYERS.get(parts[1])


def imports_of(source: str, module: str, *, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in ``source``, wherever it stands, as absolute module names."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = set()
            for alias in node.names:
                # ``from dinegraph import graphiql`` imports the module dinegraph.graphiql.
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
            found.extend(Import(node.lineno, target) for target in sorted(targets))
    return found


def refusal(layer: str, target: str) -> str | None:
    """Why a module of ``layer`` may not import ``target``; None if it may."""
    top = target.split(".")[0]
    if top != PACKAGE:
        if layer == "domain" and top not in sys.stdlib_module_names | PURE_LIBRARIES:
            return "the domain imports no framework or outside library"
        if layer in NO_DRIVERS and top in DRIVERS:
            return f"{layer} reaches storage through ports, not drivers"
        return None
    target_layer = layer_of(target)
    if target_layer is None or target_layer == "package":
        return None  # unplaced modules fail test_every_module_has_a_layer
    if target_layer in ALLOWED[layer] or target in ALLOWED_MODULES.get(layer, frozenset()):
        return None
    return f"{layer} may not import {target_layer}"


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def violations() -> list[str]:
    modules = package_modules()
    known = set(modules)
    found = []
    for module, path in modules.items():
        layer = layer_of(module)
        if layer is None:
            continue
        source = path.read_text(encoding="utf-8")
        is_package = path.name == "__init__.py"
        for imp in imports_of(source, module, is_package=is_package, known=known):
            why = refusal(layer, imp.target)
            if why is not None:
                where = path.relative_to(ROOT.parent)
                found.append(f"{where}:{imp.line}: {module} imports {imp.target} ({why})")
    return sorted(found)


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in package_modules() if layer_of(m) is None]
    assert not unplaced, (
        "modules the layer table does not place (add them to MODULE_LAYERS and the "
        "docstring): " + ", ".join(unplaced)
    )


def test_imports_point_one_way() -> None:
    found = violations()
    assert not found, f"{len(found)} imports against the direction:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "dinegraph.domain.x",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy\n",
            [(3, "sqlalchemy", "the domain imports no framework or outside library")],
        ),
        (
            "dinegraph.resolvers.x",
            "def f():\n    from ..db import queries\n    return queries\n",
            [(2, "dinegraph.db.queries", "resolvers may not import db")],
        ),
        (
            "dinegraph.events.x",
            "from dinegraph.db.tables import event_outbox\n",
            [(1, "dinegraph.db.tables", "events may not import db")],
        ),
        ("dinegraph.schema.x", "from dinegraph.resolvers import ids\nimport json\n", []),
    ],
)
def test_the_checker_sees_imports_anywhere(
    module: str, source: str, expected: list[tuple[int, str, str]]
) -> None:
    known = {"dinegraph.db.queries", "dinegraph.resolvers.ids"}
    layer = layer_of(module)
    assert layer is not None
    got = [
        (imp.line, imp.target, refusal(layer, imp.target))
        for imp in imports_of(source, module, is_package=False, known=known)
    ]
    assert [g for g in got if g[2] is not None] == expected
