"""stock ledger

Revision ID: 92d411feaeea
Revises: 15a26468f41c
Create Date: 2026-11-22 08:20:33.594714
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "92d411feaeea"
down_revision: str | None = "15a26468f41c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_movements_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
        sa.UniqueConstraint("store_id", "source", "reference", name="uq_stock_movements_key"),
    )
    op.create_table(
        "stock_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("movement_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("balance_after", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("balance_after >= 0", name=op.f("ck_stock_ledger_balance_not_negative")),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["stock_movements.id"],
            name=op.f("fk_stock_ledger_movement_id_stock_movements"),
        ),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_stock_ledger_sku_id_skus")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_ledger_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_ledger")),
        sa.UniqueConstraint("movement_id", "sku_id", name="uq_stock_ledger_movement_sku"),
    )
    with op.batch_alter_table("stock_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stock_ledger_store_sku", ["store_id", "sku_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_ledger_store_sku")

    op.drop_table("stock_ledger")
    op.drop_table("stock_movements")
