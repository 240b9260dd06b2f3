"""personal data encrypted at rest, phones found through a blind index

Revision ID: 1dc3453005ce
Revises: 7c3e9a1f0b42
Create Date: 2026-12-02 10:30:00.000000

Existing rows are converted with the data keys of the engine that runs the migration
(DINEGRAPH_DATA_KEYS, DINEGRAPH_BLIND_INDEX_KEY; derived from the secret key in development).
On SQLite, freed pages are zeroed while it runs, so no plain copy stays in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

from dinegraph.db.personal import PersonalCipher, cipher_of

revision: str = "1dc3453005ce"
down_revision: str | None = "7c3e9a1f0b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each encrypted column: its plain type before, whether it may be null, what it holds.
_TEXT, _FLOAT, _DATE, _JSON = "text", "float", "date", "json"
_COLUMNS: dict[str, tuple[tuple[str, sa.types.TypeEngine[object], bool, str], ...]] = {
    "members": (("phone", sa.String(length=20), True, _TEXT), ("birthday", sa.Date(), True, _DATE)),
    "member_addresses": (
        ("contact_name", sa.String(length=30), False, _TEXT),
        ("contact_phone", sa.String(length=20), False, _TEXT),
        ("address", sa.String(length=200), False, _TEXT),
        ("lat", sa.Float(), False, _FLOAT),
        ("lng", sa.Float(), False, _FLOAT),
    ),
    "orders": (
        ("address_lat", sa.Float(), True, _FLOAT),
        ("address_lng", sa.Float(), True, _FLOAT),
        ("address_detail", sa.String(length=200), True, _TEXT),
        ("contact_name", sa.String(length=30), True, _TEXT),
        ("contact_phone", sa.String(length=20), True, _TEXT),
    ),
    "riders": (
        ("name", sa.String(length=30), False, _TEXT),
        ("phone", sa.String(length=20), False, _TEXT),
    ),
    "deliveries": (
        ("courier_name", sa.String(length=30), True, _TEXT),
        ("courier_phone", sa.String(length=20), True, _TEXT),
        ("destination_lat", sa.Float(), False, _FLOAT),
        ("destination_lng", sa.Float(), False, _FLOAT),
    ),
    # Events not yet published (a delivery's names its courier); already text.
    "event_outbox": (("payload", sa.Text(), False, _TEXT),),
    # Calls out not yet made (a login code's text names the phone, a courier order the
    # customer's address); JSON kept as its text.
    "outbound_calls": (("payload", sa.JSON(), True, _JSON),),
    "staff": (("display_name", sa.String(length=60), True, _TEXT),),
}
_PLAIN_TYPE = {_FLOAT: "double precision", _DATE: "date", _JSON: "json"}


def upgrade() -> None:
    bind = op.get_bind()
    cipher = cipher_of(bind.dialect)
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete = ON")

    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_members_phone", type_="unique")
        batch.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, plain, nullable, _ in columns:
                if isinstance(plain, sa.Text):
                    continue
                batch.alter_column(
                    name,
                    type_=sa.Text(),
                    existing_type=plain,
                    existing_nullable=nullable,
                    postgresql_using=f"{name}::text",
                )
        _convert(bind, cipher, table, columns, encrypt=True)
    with op.batch_alter_table("members") as batch:
        batch.create_unique_constraint(op.f("uq_members_phone_index"), ["phone_index"])

    with op.batch_alter_table("login_codes") as batch:
        batch.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
    codes = sa.table("login_codes", sa.column("id"), sa.column("phone"), sa.column("phone_index"))
    for row in bind.execute(sa.select(codes.c.id, codes.c.phone)).all():
        bind.execute(
            codes.update()
            .where(codes.c.id == row.id)
            .values(phone_index=cipher.blind_index(row.phone))
        )
    with op.batch_alter_table("login_codes") as batch:
        batch.drop_index("ix_login_codes_phone")
        batch.drop_column("phone")
        batch.alter_column(
            "phone_index",
            existing_type=sa.String(length=64),
            existing_nullable=True,
            nullable=False,
        )
        batch.create_index("ix_login_codes_phone_index", ["phone_index", "created_at"])


def downgrade() -> None:
    bind = op.get_bind()
    cipher = cipher_of(bind.dialect)
    # Login codes live five minutes and their phones were never kept: they go.
    op.execute(sa.text("DELETE FROM login_codes"))
    with op.batch_alter_table("login_codes") as batch:
        batch.drop_index("ix_login_codes_phone_index")
        batch.drop_column("phone_index")
        batch.add_column(
            sa.Column("phone", sa.String(length=20), nullable=False, server_default="")
        )
    with op.batch_alter_table("login_codes") as batch:
        batch.alter_column(
            "phone",
            existing_type=sa.String(length=20),
            existing_nullable=False,
            server_default=None,
        )
        batch.create_index("ix_login_codes_phone", ["phone", "created_at"])

    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_members_phone_index", type_="unique")
        batch.drop_column("phone_index")
    for table, columns in _COLUMNS.items():
        _convert(bind, cipher, table, columns, encrypt=False)
        with op.batch_alter_table(table) as batch:
            for name, plain, nullable, kind in columns:
                if isinstance(plain, sa.Text):
                    continue
                batch.alter_column(
                    name,
                    type_=plain,
                    existing_type=sa.Text(),
                    existing_nullable=nullable,
                    postgresql_using=f"{name}::{_PLAIN_TYPE.get(kind, 'text')}",
                )
    with op.batch_alter_table("members") as batch:
        batch.create_unique_constraint(op.f("uq_members_phone"), ["phone"])


def _convert(
    bind: sa.Connection,
    cipher: PersonalCipher,
    table: str,
    columns: tuple[tuple[str, sa.types.TypeEngine[object], bool, str], ...],
    *,
    encrypt: bool,
) -> None:
    """Encrypt (or decrypt) every value of the columns, as the text the column type writes
    (db/personal.py), a thousand rows a statement; members get their phone's blind index."""
    indexed = table == "members" and encrypt
    names = [name for name, _, _, _ in columns]
    kinds = {name: kind for name, _, _, kind in columns}
    written = [*names, *(["phone_index"] if indexed else [])]
    rows_table = sa.table(table, sa.column("id"), *(sa.column(n, sa.Text()) for n in written))
    update = (
        rows_table.update()
        .where(rows_table.c.id == sa.bindparam("row_id"))
        .values({n: sa.bindparam(f"new_{n}") for n in written})
    )
    rows = bind.execute(sa.select(rows_table.c.id, *(rows_table.c[n] for n in names))).all()
    for start in range(0, len(rows), 1000):
        batch: list[dict[str, object]] = []
        for row in rows[start : start + 1000]:
            values: dict[str, object] = {"row_id": row.id}
            for name in names:
                value = getattr(row, name)
                column = f"{table}.{name}"
                if value is None:
                    values[f"new_{name}"] = None
                elif encrypt:
                    values[f"new_{name}"] = cipher.encrypt(
                        _as_text(str(value), kinds[name]), column
                    )
                else:
                    values[f"new_{name}"] = cipher.decrypt(str(value), column)
            if indexed:
                phone = row.phone
                values["new_phone_index"] = None if phone is None else cipher.blind_index(phone)
            batch.append(values)
        if batch:
            bind.execute(update, batch)


def _as_text(value: str, kind: str) -> str:
    """How the encrypted column types write a value (PersonalFloat, PersonalDate)."""
    if kind == _FLOAT:
        return repr(float(value))
    if kind == _DATE:
        return date.fromisoformat(value[:10]).isoformat()
    return value
