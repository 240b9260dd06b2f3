"""Orders placed before sources existed migrate as the mini-program's, with their lines and
refunds in place; afterwards an order may have no member."""

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
from dinegraph.settings import Settings
from tests.databases import fresh_database
from tests.integration.test_migrations import BACKENDS
from tests.shop import new_shop, new_sku

SOURCES = "b8e1d4c7a39f"  # the revision that gave orders their source
PLACED = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
_ORDER = (
    "INSERT INTO orders (member_id, store_id, channel, status, idempotency_key, fingerprint, "
    "subtotal_fen, tier_discount_fen, coupon_discount_fen, delivery_fee_fen, "
    "delivery_discount_fen, packaging_fee_fen, total_fen, refunded_fen, points_earned, note, "
    "placed_at, pay_by, paid_at, updated_at, version) VALUES (:m, :s, 'PICKUP', 'PAID', :k, "
    "'f', 1000, 0, 0, 0, 0, 0, 1000, 0, 0, '', :at, :at, :at, :at, 1) RETURNING id"
)


@pytest.mark.parametrize("postgres", BACKENDS)
def test_orders_before_sources_migrate_as_the_mini_programs(tmp_path: Path, postgres: bool) -> None:
    with fresh_database(tmp_path, postgres=postgres) as url:
        config = alembic_config(url)
        before = ScriptDirectory.from_config(config).get_revision(SOURCES).down_revision
        assert isinstance(before, str)

        async def an_old_order() -> int:
            engine = create_engine(Settings(), url)
            try:
                shop = await new_shop(engine)
                sku = await new_sku(engine, price_fen=1000)
                async with engine.begin() as conn:
                    member = await conn.scalar(
                        sa.text(
                            "INSERT INTO members (nickname, tier, created_at) "
                            "VALUES ('食客', 'NORMAL', :at) RETURNING id"
                        ),
                        {"at": PLACED},
                    )
                    store = shop.store_ids[0]
                    order = await conn.scalar(
                        sa.text(_ORDER), {"m": member, "s": store, "k": "k", "at": PLACED}
                    )
                    await conn.execute(
                        sa.text(
                            "INSERT INTO order_lines (order_id, line_no, sku_id, product_id, "
                            "name, specs, unit_price_fen, quantity) SELECT :o, 1, id, "
                            "product_id, '菜', '{}', 1000, 1 FROM skus WHERE id = :sku"
                        ),
                        {"o": order, "sku": sku},
                    )
                    return store
            finally:
                await engine.dispose()

        async def with_a_partners_order(store: int) -> list[tuple[object, ...]]:
            engine = create_engine(Settings(), url)
            try:
                async with engine.begin() as conn:
                    await conn.scalar(
                        sa.text(_ORDER), {"m": None, "s": store, "k": "MEITUAN-1", "at": PLACED}
                    )
                    rows = await conn.execute(
                        sa.text(
                            "SELECT o.member_id IS NULL, o.source, l.note FROM orders o "
                            "LEFT JOIN order_lines l ON l.order_id = o.id ORDER BY o.id"
                        )
                    )
                    return [(bool(r[0]), r[1], r[2]) for r in rows]
            finally:
                await engine.dispose()

        command.downgrade(config, before)
        store = asyncio.run(an_old_order())
        command.upgrade(config, "head")
        rows = asyncio.run(with_a_partners_order(store))
        assert rows == [(False, "MINI_PROGRAM", ""), (True, "MINI_PROGRAM", None)]
        command.downgrade(config, before)  # the order without a member goes; the other stays
        command.upgrade(config, "head")
