"""WeChat sign-in: members' unionid, the shared API access token

Revision ID: 7b3e9c4d2f10
Revises: 3b8e61d0c5a4
Create Date: 2026-12-02 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b3e9c4d2f10"
down_revision: str | None = "3b8e61d0c5a4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column is a plain ALTER TABLE ADD COLUMN on both databases: no copy of
    # `members` (a batch copy on SQLite would drop the table its orders point at).
    op.add_column("members", sa.Column("wechat_unionid", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_members_wechat_unionid"), "members", ["wechat_unionid"], unique=False)
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
    op.drop_index(op.f("ix_members_wechat_unionid"), table_name="members")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops a plain column in place; a batch copy would drop `members`
        # under the rows that point at it.
        op.execute("ALTER TABLE members DROP COLUMN wechat_unionid")
    else:
        op.drop_column("members", "wechat_unionid")
