"""kitchen stations, their routes, and the tickets accepted orders are split into

Revision ID: 3b8e61d0c5a4
Revises: 1dc3453005ce
Create Date: 2026-12-02 11:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b8e61d0c5a4"
down_revision: str | None = "1dc3453005ce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kitchen_stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_kitchen_stations_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kitchen_stations")),
        sa.UniqueConstraint("store_id", "name", name="uq_kitchen_stations_store_name"),
    )
    op.create_table(
        "station_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(category_id IS NULL) <> (product_id IS NULL)",
            name=op.f("ck_station_routes_category_or_product"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_station_routes_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_station_routes_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["kitchen_stations.id"],
            name=op.f("fk_station_routes_station_id_kitchen_stations"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_station_routes_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_routes")),
        sa.UniqueConstraint("store_id", "category_id", name="uq_station_routes_category"),
        sa.UniqueConstraint("store_id", "product_id", name="uq_station_routes_product"),
    )
    op.create_index(
        op.f("ix_station_routes_station_id"), "station_routes", ["station_id"], unique=False
    )
    op.create_table(
        "kitchen_tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("station_name", sa.String(length=20), nullable=False),
        sa.Column("order_number", sa.String(length=24), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("table_no", sa.String(length=16), nullable=True),
        sa.Column("pickup_code", sa.String(length=8), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("print_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_kitchen_tickets_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_kitchen_tickets_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kitchen_tickets")),
    )
    op.create_index(
        op.f("ix_kitchen_tickets_order_id"), "kitchen_tickets", ["order_id"], unique=False
    )
    op.create_index(
        "ix_kitchen_tickets_store_station",
        "kitchen_tickets",
        ["store_id", "station_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_kitchen_tickets_store_station", table_name="kitchen_tickets")
    op.drop_index(op.f("ix_kitchen_tickets_order_id"), table_name="kitchen_tickets")
    op.drop_table("kitchen_tickets")
    op.drop_index(op.f("ix_station_routes_station_id"), table_name="station_routes")
    op.drop_table("station_routes")
    op.drop_table("kitchen_stations")
