"""member spend

Revision ID: 2ca63620a6cf
Revises: 44dc751dcd43
Create Date: 2026-11-22 09:06:19.795969
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2ca63620a6cf"
down_revision: str | None = "44dc751dcd43"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_spend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_spend_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_spend")),
        sa.UniqueConstraint("member_id", "reference", name="uq_member_spend_key"),
    )
    with op.batch_alter_table("member_spend", schema=None) as batch_op:
        batch_op.create_index("ix_member_spend_member_at", ["member_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_spend", schema=None) as batch_op:
        batch_op.drop_index("ix_member_spend_member_at")

    op.drop_table("member_spend")
