"""Refunds made before refunds had a lifecycle were made at once: they migrate as REFUNDED,
with a reference for the payment provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from dinegraph.db.engine import create_engine
from dinegraph.db.migrate import alembic_config
from dinegraph.db.tables import refunds
from dinegraph.domain.refunds import refund_reference
from dinegraph.settings import Settings
from tests.databases import fresh_database
from tests.integration.test_migrations import BACKENDS
from tests.shop import new_shop

LIFECYCLE = "7c3e9a1f0b42"  # the revision that gave refunds a lifecycle
PLACED = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("postgres", BACKENDS)
def test_refunds_made_before_migrate_as_refunded(tmp_path: Path, postgres: bool) -> None:
    with fresh_database(tmp_path, postgres=postgres) as url:

        async def an_order() -> int:
            engine = create_engine(Settings(), url)
            try:
                shop = await new_shop(engine)
                async with engine.begin() as conn:
                    member = await conn.scalar(
                        sa.text(
                            "INSERT INTO members (nickname, tier, created_at) "
                            "VALUES ('食客', 'NORMAL', :at) RETURNING id"
                        ),
                        {"at": PLACED},
                    )
                    return int(
                        await conn.scalar(
                            sa.text(
                                "INSERT INTO orders (member_id, store_id, channel, status, "
                                "idempotency_key, fingerprint, subtotal_fen, tier_discount_fen, "
                                "coupon_discount_fen, delivery_fee_fen, delivery_discount_fen, "
                                "packaging_fee_fen, total_fen, refunded_fen, points_earned, note, "
                                "placed_at, pay_by, paid_at, updated_at, version) VALUES "
                                "(:m, :s, 'PICKUP', 'REFUNDED', 'k', 'f', 1000, 0, 0, 0, 0, 0, "
                                "1000, 1000, 0, '', :at, :at, :at, :at, 3) RETURNING id"
                            ),
                            {"m": member, "s": shop.store_ids[0], "at": PLACED},
                        )
                    )
            finally:
                await engine.dispose()

        async def old_refunds(order_id: int) -> None:
            engine = create_engine(Settings(), url)
            try:
                async with engine.begin() as conn:
                    for key, amount in (("staff-key-1", 400), ("cancel", 600)):
                        await conn.execute(
                            sa.text(
                                "INSERT INTO refunds (order_id, reference, amount_fen, lines, "
                                "reason, actor, stock_returned, coupon_restored, created_at) "
                                "VALUES (:o, :key, :amount, '[[1, 1]]', '缺货', 'staff:1', "
                                "true, false, :at)"
                            ),
                            {"o": order_id, "key": key, "amount": amount, "at": PLACED},
                        )
            finally:
                await engine.dispose()

        async def migrated(order_id: int) -> list[sa.Row[tuple[object, ...]]]:
            engine = create_engine(Settings(), url)
            try:
                async with engine.connect() as conn:
                    return list(
                        await conn.execute(
                            sa.select(refunds)
                            .where(refunds.c.order_id == order_id)
                            .order_by(refunds.c.id)
                        )
                    )
            finally:
                await engine.dispose()

        order_id = asyncio.run(an_order())
        config = alembic_config(url)
        before = ScriptDirectory.from_config(config).get_revision(LIFECYCLE).down_revision
        assert isinstance(before, str)
        command.downgrade(config, before)
        asyncio.run(old_refunds(order_id))
        command.upgrade(config, "head")
        rows = asyncio.run(migrated(order_id))
        assert [
            (r.idempotency_key, r.reference, r.status, r.amount_fen, r.requested_by, r.lines)
            for r in rows
        ] == [
            (
                "staff-key-1",
                refund_reference(order_id, "staff-key-1"),
                "REFUNDED",
                400,
                "staff:1",
                [[1, 1]],
            ),
            ("cancel", refund_reference(order_id, "cancel"), "REFUNDED", 600, "staff:1", [[1, 1]]),
        ]
        assert all(r.requested_at == PLACED and r.updated_at == PLACED for r in rows)
