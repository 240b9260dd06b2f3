"""Behaviour events; the recommendation model's versions, neighbours and popularity

Revision ID: e5a1c9b3d720
Revises: 6e4b2d9f8a13
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c9b3d720"
down_revision: str | None = "6e4b2d9f8a13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "behaviour_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=72), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("client_event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("query", sa.String(length=50), nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_behaviour_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_events")),
        sa.UniqueConstraint("actor", "client_event_id", name="uq_behaviour_events_client_id"),
    )
    op.create_index(
        "ix_behaviour_events_actor_created", "behaviour_events", ["actor", "created_at"]
    )
    op.create_index("ix_behaviour_events_occurred", "behaviour_events", ["occurred_at"])
    op.create_table(
        "recommendation_models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("events", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("products", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_recommendation_models")),
    )
    op.create_table(
        "recommendation_neighbours",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("neighbour_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("together", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "version", "product_id", "rank", name=op.f("pk_recommendation_neighbours")
        ),
    )
    op.create_table(
        "recommendation_popularity",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "version", "store_id", "period", "rank", name=op.f("pk_recommendation_popularity")
        ),
    )


def downgrade() -> None:
    op.drop_table("recommendation_popularity")
    op.drop_table("recommendation_neighbours")
    op.drop_table("recommendation_models")
    op.drop_index("ix_behaviour_events_occurred", table_name="behaviour_events")
    op.drop_index("ix_behaviour_events_actor_created", table_name="behaviour_events")
    op.drop_table("behaviour_events")
