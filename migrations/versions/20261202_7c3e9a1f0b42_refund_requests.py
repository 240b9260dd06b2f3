"""refunds follow a lifecycle: requested, approved, submitted, refunded, refused, failed

Revision ID: 7c3e9a1f0b42
Revises: fa26aa85dc22
Create Date: 2026-12-02 10:40:00.000000

A refund's client key moves to ``idempotency_key``; ``reference`` becomes the provider's
refund reference (out_refund_no). Refunds made before were made at once: REFUNDED.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3e9a1f0b42"
down_revision: str | None = "fa26aa85dc22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _reference(order_id: int, key: str) -> str:
    # As domain.refunds.refund_reference computes it (copied: a migration must not change
    # when the code does).
    return f"R{order_id}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.drop_constraint("uq_refunds_reference", type_="unique")
        batch_op.alter_column(
            "reference",
            new_column_name="idempotency_key",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "actor",
            new_column_name="requested_by",
            existing_type=sa.String(length=40),
            existing_nullable=False,
        )
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="REFUNDED")
        )
        batch_op.add_column(sa.Column("refusal_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("provider_refund_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))

    refunds = sa.table(
        "refunds",
        sa.column("id", sa.Integer()),
        sa.column("order_id", sa.Integer()),
        sa.column("idempotency_key", sa.String()),
        sa.column("reference", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("requested_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(refunds.c.id, refunds.c.order_id, refunds.c.idempotency_key))
    for row in rows.all():
        bind.execute(
            refunds.update()
            .where(refunds.c.id == row.id)
            .values(reference=_reference(row.order_id, row.idempotency_key))
        )
    bind.execute(
        refunds.update().values(requested_at=refunds.c.created_at, updated_at=refunds.c.created_at)
    )

    with op.batch_alter_table("refunds") as batch_op:
        batch_op.alter_column("reference", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), server_default=None, nullable=False
        )
        batch_op.alter_column(
            "requested_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            "updated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_unique_constraint("uq_refunds_idempotency", ["order_id", "idempotency_key"])
        batch_op.create_unique_constraint("uq_refunds_reference", ["reference"])
        batch_op.create_index("ix_refunds_order", ["order_id", "id"], unique=False)
        batch_op.create_index("ix_refunds_status", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.drop_index("ix_refunds_status")
        batch_op.drop_index("ix_refunds_order")
        batch_op.drop_constraint("uq_refunds_reference", type_="unique")
        batch_op.drop_constraint("uq_refunds_idempotency", type_="unique")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("requested_at")
        batch_op.drop_column("provider_refund_id")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("refusal_reason")
        batch_op.drop_column("status")
        batch_op.drop_column("reference")
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.alter_column(
            "requested_by",
            new_column_name="actor",
            existing_type=sa.String(length=40),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "idempotency_key",
            new_column_name="reference",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.create_unique_constraint("uq_refunds_reference", ["order_id", "reference"])
