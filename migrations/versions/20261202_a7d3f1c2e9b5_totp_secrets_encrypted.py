"""staff TOTP secrets encrypted at rest, as personal data is

Revision ID: a7d3f1c2e9b5
Revises: e5a1c9b3d720
Create Date: 2026-12-02 19:00:00.000000

A database copy must not be enough to make an account's second-factor codes. Existing
secrets are encrypted with the data keys of the engine that runs the migration
(DINEGRAPH_DATA_KEYS; derived from the secret key in development), under each column's
name as associated data, as ``db/personal.py`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dinegraph.db.personal import PersonalCipher, cipher_of

revision: str = "a7d3f1c2e9b5"
down_revision: str | None = "e5a1c9b3d720"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("totp_secret", "totp_pending_secret")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete = ON")  # no plain copy left in free pages
    with op.batch_alter_table("staff") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name, type_=sa.Text(), existing_type=sa.String(length=64), existing_nullable=True
            )
    _convert(bind, cipher_of(bind.dialect), encrypt=True)


def downgrade() -> None:
    bind = op.get_bind()
    _convert(bind, cipher_of(bind.dialect), encrypt=False)
    with op.batch_alter_table("staff") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name, type_=sa.String(length=64), existing_type=sa.Text(), existing_nullable=True
            )


def _convert(bind: sa.Connection, cipher: PersonalCipher, *, encrypt: bool) -> None:
    table = sa.table("staff", sa.column("id"), *(sa.column(n, sa.Text()) for n in _COLUMNS))
    present = sa.or_(*(table.c[n].is_not(None) for n in _COLUMNS))
    for row in bind.execute(sa.select(table).where(present)).all():
        values: dict[str, str | None] = {}
        for name in _COLUMNS:
            value = getattr(row, name)
            if value is not None:
                column = f"staff.{name}"
                values[name] = (
                    cipher.encrypt(value, column) if encrypt else cipher.decrypt(value, column)
                )
        bind.execute(table.update().where(table.c.id == row.id).values(values))
