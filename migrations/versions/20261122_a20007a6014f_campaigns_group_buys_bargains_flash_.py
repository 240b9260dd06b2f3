"""campaigns: group-buys, bargains, flash sales

Revision ID: a20007a6014f
Revises: 4e11592d77b0
Create Date: 2026-11-22 13:27:08.221887
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a20007a6014f"
down_revision: str | None = "4e11592d77b0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("store_ids", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("quota_per_store", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("new_members_only", sa.Boolean(), nullable=False),
        sa.Column("group_size", sa.Integer(), nullable=True),
        sa.Column("group_hours", sa.Integer(), nullable=True),
        sa.Column("bargain_helps", sa.Integer(), nullable=True),
        sa.Column("bargain_hours", sa.Integer(), nullable=True),
        sa.Column("daily_help_cap", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_window", ["ends_at", "starts_at"], unique=False)

    op.create_table(
        "campaign_entries",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_entries_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_campaign_entries_member_id_members")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", name=op.f("pk_campaign_entries")),
    )
    op.create_table(
        "help_days",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("helps", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_help_days_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "day", name=op.f("pk_help_days")),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("inviter_id", sa.Integer(), nullable=False),
        sa.Column("invitee_id", sa.Integer(), nullable=False),
        sa.Column("invitee_was_new", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_invitations_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["invitee_id"], ["members.id"], name=op.f("fk_invitations_invitee_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"], ["members.id"], name=op.f("fk_invitations_inviter_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("kind", "target_id", "invitee_id", name="uq_invitations_once"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_invitations_inviter", ["inviter_id"], unique=False)

    op.create_table(
        "bargains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("start_price_fen", sa.Integer(), nullable=False),
        sa.Column("floor_price_fen", sa.Integer(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("helps_needed", sa.Integer(), nullable=False),
        sa.Column("helps_done", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("helps_done <= helps_needed", name=op.f("ck_bargains_helps")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_bargains_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_bargains_member_id_members")
        ),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_bargains_sku_id_skus")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_bargains_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bargains")),
    )
    with op.batch_alter_table("bargains", schema=None) as batch_op:
        batch_op.create_index("ix_bargains_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_bargains_member", ["member_id", "id"], unique=False)

    op.create_table(
        "campaign_items",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_items_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["skus.id"], name=op.f("fk_campaign_items_sku_id_skus")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "sku_id", name=op.f("pk_campaign_items")),
    )
    op.create_table(
        "campaign_quotas",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "remaining >= 0", name=op.f("ck_campaign_quotas_remaining_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_quotas_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["skus.id"], name=op.f("fk_campaign_quotas_sku_id_skus")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_campaign_quotas_store_id_stores")
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "store_id", "sku_id", name=op.f("pk_campaign_quotas")
        ),
    )
    op.create_table(
        "group_buys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        sa.Column("seats_paid", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "seats_taken <= size AND seats_paid <= seats_taken", name=op.f("ck_group_buys_seats")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_group_buys_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["members.id"], name=op.f("fk_group_buys_leader_id_members")
        ),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_group_buys_sku_id_skus")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_group_buys_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_buys")),
    )
    with op.batch_alter_table("group_buys", schema=None) as batch_op:
        batch_op.create_index("ix_group_buys_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_group_buys_open", ["status", "expires_at"], unique=False)

    op.create_table(
        "bargain_helps",
        sa.Column("bargain_id", sa.Integer(), nullable=False),
        sa.Column("helper_id", sa.Integer(), nullable=False),
        sa.Column("step_no", sa.Integer(), nullable=False),
        sa.Column("cut_fen", sa.Integer(), nullable=False),
        sa.Column("helped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bargain_id"], ["bargains.id"], name=op.f("fk_bargain_helps_bargain_id_bargains")
        ),
        sa.ForeignKeyConstraint(
            ["helper_id"], ["members.id"], name=op.f("fk_bargain_helps_helper_id_members")
        ),
        sa.PrimaryKeyConstraint("bargain_id", "helper_id", name=op.f("pk_bargain_helps")),
        sa.UniqueConstraint("bargain_id", "step_no", name="uq_bargain_helps_step"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["group_buys.id"], name=op.f("fk_group_members_group_id_group_buys")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_group_members_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_group_members_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bargain_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_orders_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_orders_group", ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_group")
        batch_op.drop_index("ix_orders_campaign")
        batch_op.drop_column("bargain_id")
        batch_op.drop_column("group_id")
        batch_op.drop_column("campaign_id")

    op.drop_table("group_members")
    op.drop_table("bargain_helps")
    with op.batch_alter_table("group_buys", schema=None) as batch_op:
        batch_op.drop_index("ix_group_buys_open")
        batch_op.drop_index("ix_group_buys_campaign")

    op.drop_table("group_buys")
    op.drop_table("campaign_quotas")
    op.drop_table("campaign_items")
    with op.batch_alter_table("bargains", schema=None) as batch_op:
        batch_op.drop_index("ix_bargains_member")
        batch_op.drop_index("ix_bargains_campaign")

    op.drop_table("bargains")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_inviter")
        batch_op.drop_index("ix_invitations_campaign")

    op.drop_table("invitations")
    op.drop_table("help_days")
    op.drop_table("campaign_entries")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_window")

    op.drop_table("campaigns")
