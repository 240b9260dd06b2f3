"""members, sign-in and points

Revision ID: a95cecef0722
Revises: 92d411feaeea
Create Date: 2026-11-22 08:56:22.242579
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a95cecef0722"
down_revision: str | None = "92d411feaeea"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_codes")),
    )
    with op.batch_alter_table("login_codes", schema=None) as batch_op:
        batch_op.create_index("ix_login_codes_ip", ["ip", "created_at"], unique=False)
        batch_op.create_index("ix_login_codes_phone", ["phone", "created_at"], unique=False)

    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("wechat_openid", sa.String(length=64), nullable=True),
        sa.Column("nickname", sa.String(length=30), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_members_points_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("phone", name=op.f("uq_members_phone")),
        sa.UniqueConstraint("wechat_openid", name=op.f("uq_members_wechat_openid")),
    )
    op.create_table(
        "check_ins",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_check_ins_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "day", name=op.f("pk_check_ins")),
    )
    op.create_table(
        "member_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("contact_name", sa.String(length=30), nullable=False),
        sa.Column("contact_phone", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_addresses_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_addresses")),
    )
    with op.batch_alter_table("member_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_addresses_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("balance_after", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_points_ledger_balance_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_ledger_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_ledger")),
        sa.UniqueConstraint("member_id", "kind", "reference", name="uq_points_ledger_key"),
    )
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_points_ledger_member", ["member_id", "id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_refresh_tokens_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_family"), ["family"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_family"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_points_ledger_member")

    op.drop_table("points_ledger")
    with op.batch_alter_table("member_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_addresses_member_id"))

    op.drop_table("member_addresses")
    op.drop_table("check_ins")
    op.drop_table("members")
    with op.batch_alter_table("login_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_login_codes_phone")
        batch_op.drop_index("ix_login_codes_ip")

    op.drop_table("login_codes")
