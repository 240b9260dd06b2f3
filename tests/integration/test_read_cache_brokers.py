"""The read cache on a shared broker (PostgreSQL LISTEN/NOTIFY, Redis): two app instances,
each with its own cache, as two processes would be. A change committed through one drops
what the other kept; a process's own sales count at once, though its broker brings them
back later."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.databases import broker_url
from tests.integration.test_read_cache import (
    MENU,
    RECORD_SALE,
    UPDATE_PRODUCT,
    Served,
    menu_of,
    sale,
    sales_race_reads,
    serving,
    sku_in,
)
from tests.shop import new_shop, new_sku

BROKERS = ["postgres", "redis"]
# How long another process may take to hear of a commit, on a loaded machine.
HEARD_WITHIN_S = 10.0


async def _until_heard(app: Served, store: int, sku: int, before: object) -> dict[str, object]:
    """The SKU in the store's menu once ``app`` has heard of a change: till then it may
    answer from its cache, with what it showed ``before``."""
    deadline = time.monotonic() + HEARD_WITHIN_S
    while True:
        menu, hit = await app.read(MENU, menu_of(store))
        found = sku_in(menu, sku)
        if not hit:
            assert found is not None
            return found
        assert found == before
        assert time.monotonic() < deadline, "the other process never heard of the change"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_change_through_one_process_drops_what_another_process_kept(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, broker: str
) -> None:
    url = broker_url(settings, broker)
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=1600, stock={store: 10})
    # A long max age: only the broker's news can drop what B keeps.
    apart: dict[str, Any] = {"broker_url": url, "read_cache_max_age_seconds": 3600.0}
    async with serving(settings, engine, **apart) as a, serving(settings, engine, **apart) as b:
        await asyncio.sleep(0.2)  # let both subscriptions reach the broker
        menu, _ = await b.read(MENU, menu_of(store))
        kept = sku_in(menu, sku)
        assert kept is not None and kept["stock"]["available"] == 10
        assert (await b.read(MENU, menu_of(store)))[1]

        await a.write(RECORD_SALE, sale(store, sku), credentials.hq_admin)
        heard = await _until_heard(b, store, sku, kept)
        assert heard["stock"]["available"] == 9  # type: ignore[index]

        assert (await b.read(MENU, menu_of(store)))[1]
        renamed = f"改名{uuid.uuid4().hex[:6]}"
        update = {"input": {"id": heard["product"], "name": renamed}}
        await a.write(UPDATE_PRODUCT, update, credentials.operator)
        assert (await _until_heard(b, store, sku, heard))["name"] == renamed


@pytest.mark.parametrize("broker", BROKERS)
async def test_no_read_is_older_than_a_sale_before_it_when_the_broker_brings_news_late(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, broker: str
) -> None:
    await sales_race_reads(settings, engine, credentials, broker_url=broker_url(settings, broker))
