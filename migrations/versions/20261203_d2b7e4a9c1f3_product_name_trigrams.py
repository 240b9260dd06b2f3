"""products found by part of a name: a pg_trgm index on PostgreSQL

Revision ID: d2b7e4a9c1f3
Revises: a7d3f1c2e9b5
Create Date: 2026-12-03 08:30:00.000000

Staff look products up by any part of a name (``products(query:)``: ILIKE '%…%'), which
no B-tree serves. On PostgreSQL a GIN index over the name's trigrams does; the extension
pg_trgm is trusted (PostgreSQL 13+), so the database's owner may create it. SQLite has no
such index: there the lookup scans the table, and this revision does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "d2b7e4a9c1f3"
down_revision: str | None = "a7d3f1c2e9b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_products_name_trgm",
        "products",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_products_name_trgm", table_name="products")
    # pg_trgm stays: it may have been there before, and other objects may use it.
