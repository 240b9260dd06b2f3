"""WeChat Pay prepays of orders

Revision ID: 7c2e9a4b1d05
Revises: 7b3e9c4d2f10
Create Date: 2026-12-02 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e9a4b1d05"
down_revision: str | None = "7b3e9c4d2f10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_prepays",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("prepay_id", sa.String(length=64), nullable=False),
        sa.Column("payer", sa.String(length=128), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payment_prepays_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_payment_prepays")),
    )
    op.create_index(
        "ix_payment_prepays_open", "payment_prepays", ["closed_at", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_payment_prepays_open", table_name="payment_prepays")
    op.drop_table("payment_prepays")
