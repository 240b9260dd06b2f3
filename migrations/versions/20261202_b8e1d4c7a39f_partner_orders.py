"""orders from partners: source, external id, table, pickup time, cancel reason, line notes

Revision ID: b8e1d4c7a39f
Revises: 7c2e9a4b1d05
Create Date: 2026-12-02 11:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8e1d4c7a39f"
down_revision: str | None = "7c2e9a4b1d05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("source", "external_id", "table_no", "pickup_at", "cancel_reason")


def _member_id(nullable: bool) -> None:
    """Make orders.member_id optional (a partner's order has no member), or required again.

    On SQLite, altering a column means rebuilding the table, and dropping ``orders`` inside
    the migration's transaction trips the foreign keys of its lines, payments and refunds.
    The NOT NULL constraint changes no stored row, so its definition is edited in place, by
    SQLite's documented procedure (https://www.sqlite.org/lang_altertable.html#otheralter).
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.alter_column("orders", "member_id", existing_type=sa.Integer(), nullable=nullable)
        return
    required, optional = "member_id INTEGER NOT NULL", "member_id INTEGER"
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'orders'"
    ).scalar_one()
    before, after = (required, optional) if nullable else (optional + ",", required + ",")
    if before not in sql:
        raise RuntimeError(f"orders.member_id is not declared as {before!r}: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'orders'",
        (sql.replace(before, after, 1),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _member_id(nullable=True)
    # Every order so far was placed in the mini-program: the default says so. Columns are
    # added in place (no table rebuild on SQLite, see above).
    op.add_column(
        "orders",
        sa.Column("source", sa.String(length=16), nullable=False, server_default="MINI_PROGRAM"),
    )
    op.add_column("orders", sa.Column("external_id", sa.String(length=48), nullable=True))
    op.add_column("orders", sa.Column("table_no", sa.String(length=16), nullable=True))
    op.add_column("orders", sa.Column("pickup_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("cancel_reason", sa.String(length=200), nullable=True))
    op.create_index("uq_orders_external", "orders", ["source", "external_id"], unique=True)
    op.add_column(
        "order_lines",
        sa.Column("note", sa.String(length=100), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # Orders without a member cannot stay once member_id is required again.
    partner_orders = "SELECT id FROM orders WHERE member_id IS NULL"
    op.execute(f"DELETE FROM order_lines WHERE order_id IN ({partner_orders})")
    op.execute("DELETE FROM orders WHERE member_id IS NULL")
    op.drop_column("order_lines", "note")
    op.drop_index("uq_orders_external", table_name="orders")
    for column in reversed(_COLUMNS):
        op.drop_column("orders", column)
    _member_id(nullable=False)
