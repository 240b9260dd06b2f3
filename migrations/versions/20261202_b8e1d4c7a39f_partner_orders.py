"""orders from partners: source, external id, table, pickup time, cancel reason, line notes

Revision ID: b8e1d4c7a39f
Revises: 7c3e9a1f0b42
Create Date: 2026-12-02 11:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8e1d4c7a39f"
down_revision: str | None = "7c3e9a1f0b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every order so far was placed in the mini-program: the default says so.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("member_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="MINI_PROGRAM")
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column("table_no", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("pickup_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_orders_external", ["source", "external_id"])
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("note", sa.String(length=100), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("note")
    # Orders without a member cannot stay once member_id is required again.
    partner_orders = "SELECT id FROM orders WHERE member_id IS NULL"
    op.execute(f"DELETE FROM order_lines WHERE order_id IN ({partner_orders})")
    op.execute("DELETE FROM orders WHERE member_id IS NULL")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_external", type_="unique")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("pickup_at")
        batch_op.drop_column("table_no")
        batch_op.drop_column("external_id")
        batch_op.drop_column("source")
        batch_op.alter_column("member_id", existing_type=sa.Integer(), nullable=False)
