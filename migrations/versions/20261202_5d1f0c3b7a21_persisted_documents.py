"""persisted GraphQL documents

Revision ID: 5d1f0c3b7a21
Revises: a20007a6014f
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1f0c3b7a21"
down_revision: str | None = "a20007a6014f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_persisted_documents")),
    )
    op.create_index(
        "ix_persisted_documents_trusted_created_at",
        "persisted_documents",
        ["trusted", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_persisted_documents_trusted_created_at", table_name="persisted_documents")
    op.drop_table("persisted_documents")
