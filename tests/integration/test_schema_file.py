"""The committed schema.graphql is what the server serves."""

from __future__ import annotations

from pathlib import Path

from dinegraph.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_matches_the_live_schema() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == export_sdl(), (
        "schema.graphql is out of date: run `make schema` and commit it"
    )
