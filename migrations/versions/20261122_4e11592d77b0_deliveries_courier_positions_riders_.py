"""deliveries, courier positions, riders; stores' provider, partner keys

Revision ID: 4e11592d77b0
Revises: 9dd7e151146a
Create Date: 2026-11-22 11:18:06.538033
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4e11592d77b0"
down_revision: str | None = "9dd7e151146a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "riders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_riders_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_riders")),
    )
    with op.batch_alter_table("riders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_riders_store_id"), ["store_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("courier_name", sa.String(length=30), nullable=True),
        sa.Column("courier_phone", sa.String(length=20), nullable=True),
        sa.Column("rider_id", sa.Integer(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("position_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin_lat", sa.Float(), nullable=False),
        sa.Column("origin_lng", sa.Float(), nullable=False),
        sa.Column("destination_lat", sa.Float(), nullable=False),
        sa.Column("destination_lng", sa.Float(), nullable=False),
        sa.Column("eta_seconds", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_deliveries_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_deliveries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["riders.id"], name=op.f("fk_deliveries_rider_id_riders")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_deliveries_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_deliveries_store_status", ["store_id", "status"], unique=False)

    op.create_table(
        "courier_positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_courier_positions_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courier_positions")),
    )
    with op.batch_alter_table("courier_positions", schema=None) as batch_op:
        batch_op.create_index("ix_courier_positions_received", ["received_at"], unique=False)
        batch_op.create_index(
            "ix_courier_positions_trip", ["delivery_id", "recorded_at"], unique=False
        )

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner", sa.String(length=16), nullable=True))

    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "delivery_provider", sa.String(length=16), server_default="DADA", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("delivery_provider")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("partner")

    with op.batch_alter_table("courier_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_courier_positions_trip")
        batch_op.drop_index("ix_courier_positions_received")

    op.drop_table("courier_positions")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_store_status")
        batch_op.drop_index(batch_op.f("ix_deliveries_order_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("riders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_riders_store_id"))

    op.drop_table("riders")
