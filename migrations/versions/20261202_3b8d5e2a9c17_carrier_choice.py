"""Stores' delivery platforms and carrier rule; platforms' quotes per delivery

Revision ID: 3b8d5e2a9c17
Revises: b8e1d4c7a39f
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b8d5e2a9c17"
down_revision: str | None = "b8e1d4c7a39f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.add_column(
            sa.Column("delivery_platforms", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "carrier_rule", sa.String(length=16), nullable=False, server_default="PREFERRED"
            )
        )
    op.create_table(
        "delivery_quotes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=True),
        sa.Column("eta_seconds", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("refused", sa.String(length=64), nullable=True),
        sa.Column("chosen", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_quotes_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_quotes")),
        sa.UniqueConstraint("delivery_id", "provider", name="uq_delivery_quotes_delivery_provider"),
    )


def downgrade() -> None:
    op.drop_table("delivery_quotes")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("carrier_rule")
        batch.drop_column("delivery_platforms")
