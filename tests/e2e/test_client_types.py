"""The mini-program's TypeScript types: GraphQL Code Generator makes them from schema.graphql
and clients/miniprogram/*.graphql; the committed file must be what it makes today, and the
typed example must compile under strict TypeScript."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.tools import CLIENTS, node

GENERATED = CLIENTS / "miniprogram" / "generated" / "graphql.ts"
CODEGEN = CLIENTS / "node_modules" / "@graphql-codegen" / "cli" / "cjs" / "bin.js"
TSC = CLIENTS / "node_modules" / "typescript" / "bin" / "tsc"


def _run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=CLIENTS,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_committed_types_are_what_codegen_makes_now(tmp_path: Path) -> None:
    fresh = tmp_path / "graphql.ts"
    made = _run(node(), CODEGEN, "--config", "codegen.ts", "--silent", CODEGEN_OUTPUT=str(fresh))
    assert made.returncode == 0, made.stdout + made.stderr
    assert fresh.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8"), (
        "clients/miniprogram/generated/graphql.ts is stale: run `cd clients && npm run codegen`"
    )


def test_the_typed_example_compiles_under_strict_typescript() -> None:
    checked = _run(node(), TSC, "--noEmit", "-p", CLIENTS / "tsconfig.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
