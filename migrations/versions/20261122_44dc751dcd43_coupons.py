"""coupons

Revision ID: 44dc751dcd43
Revises: a95cecef0722
Create Date: 2026-11-22 09:02:35.983689
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "44dc751dcd43"
down_revision: str | None = "a95cecef0722"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_off_fen", sa.Integer(), nullable=False),
        sa.Column("threshold_fen", sa.Integer(), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=False),
        sa.Column("cap_fen", sa.Integer(), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("min_tier", sa.String(length=16), nullable=False),
        sa.Column("new_members_only", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("total_quantity", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("claim_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fission_friends", sa.Integer(), nullable=True),
        sa.Column("fission_bonus_template_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "issued >= 0 AND issued <= total_quantity",
            name=op.f("ck_coupon_templates_issued_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["fission_bonus_template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupon_templates_fission_bonus_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=True),
        sa.Column("shared_from_id", sa.Integer(), nullable=True),
        sa.Column("bonus_for_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bonus_for_id"], ["coupons.id"], name=op.f("fk_coupons_bonus_for_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["shared_from_id"], ["coupons.id"], name=op.f("fk_coupons_shared_from_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("bonus_for_id", name=op.f("uq_coupons_bonus_for_id")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index("ix_coupons_member", ["member_id", "status", "id"], unique=False)
        batch_op.create_index("ix_coupons_shared_from", ["shared_from_id"], unique=False)
        batch_op.create_index(
            "ix_coupons_template_member", ["template_id", "member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_template_member")
        batch_op.drop_index("ix_coupons_shared_from")
        batch_op.drop_index("ix_coupons_member")

    op.drop_table("coupons")
    op.drop_table("coupon_templates")
