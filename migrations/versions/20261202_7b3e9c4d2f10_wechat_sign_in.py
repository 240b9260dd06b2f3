"""WeChat sign-in: members' unionid, the shared API access token

Revision ID: 7b3e9c4d2f10
Revises: fa26aa85dc22
Create Date: 2026-12-02 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b3e9c4d2f10"
down_revision: str | None = "fa26aa85dc22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wechat_unionid", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_members_wechat_unionid"), ["wechat_unionid"], unique=False
        )
    op.create_table(
        "wechat_access_tokens",
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("appid", name=op.f("pk_wechat_access_tokens")),
    )


def downgrade() -> None:
    op.drop_table("wechat_access_tokens")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_wechat_unionid"))
        batch_op.drop_column("wechat_unionid")
