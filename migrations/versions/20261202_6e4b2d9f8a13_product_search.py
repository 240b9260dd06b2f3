"""Product search: head office's synonyms, and the searches that found nothing

Revision ID: 6e4b2d9f8a13
Revises: 3b8d5e2a9c17
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e4b2d9f8a13"
down_revision: str | None = "3b8d5e2a9c17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_synonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=20), nullable=False),
        sa.Column("synonyms", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_synonyms")),
        sa.UniqueConstraint("term", name=op.f("uq_search_synonyms_term")),
    )
    op.create_table(
        "search_misses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=50), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_search_misses_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_misses")),
        sa.UniqueConstraint("store_id", "query", name="uq_search_misses_store_query"),
    )
    op.create_index("ix_search_misses_last_seen", "search_misses", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_search_misses_last_seen", table_name="search_misses")
    op.drop_table("search_misses")
    op.drop_table("search_synonyms")
