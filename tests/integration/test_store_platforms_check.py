"""The start-up check of the stores' carriers: production refuses to start while a store is
set to a delivery platform it does not configure, naming the stores and the settings;
development says so in its log and carries for them with the development courier."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import check_store_platforms
from dinegraph.db.delivery import stores_by_platform
from dinegraph.db.engine import create_engine
from dinegraph.settings import ConfigurationError, Mode, Settings
from tests.conftest import PRODUCTION_ADAPTER_VALUES
from tests.databases import fresh_database

SF_SETTINGS = ("DINEGRAPH_SF_DEV_ID", "DINEGRAPH_SF_DEV_KEY", "DINEGRAPH_SF_SHOP_ID")
NO_SF: dict[str, Any] = {
    "sf_dev_id": None,
    "sf_dev_key": None,
    "sf_shop_id": None,
    "delivery_platforms": "DADA",
}


def _production(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(
        update={**PRODUCTION_ADAPTER_VALUES, "mode": Mode.PRODUCTION, **values}
    )


async def test_the_demo_chain_names_each_store_under_its_carriers(engine: AsyncEngine) -> None:
    found = await stores_by_platform(engine)
    assert any("SZ-FT-02" in name for name in found["SF_INTRA_CITY"])  # 车公庙店
    assert any("SZ-NS-01" in name for name in found["OWN_RIDER"])
    assert not any("SZ-FT-02" in name for name in found.get("DADA", []))


async def test_production_refuses_a_store_on_a_platform_it_does_not_configure(
    settings: Settings, engine: AsyncEngine
) -> None:
    without_sf = _production(settings, **NO_SF)
    without_sf.check_servable()  # the settings alone are whole: DADA is all they list
    with pytest.raises(ConfigurationError) as refused:
        await check_store_platforms(without_sf, engine)
    message = str(refused.value)
    assert "SZ-FT-02" in message and "SF_INTRA_CITY" in message
    assert all(name in message for name in SF_SETTINGS)
    assert "DINEGRAPH_DELIVERY_PLATFORMS" in message
    assert "SZ-FT-01" not in message  # a 达达 store, and 达达 is configured
    await check_store_platforms(_production(settings), engine)  # both platforms: it serves


async def test_development_warns_of_stores_on_an_unconfigured_platform(
    settings: Settings, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    development = settings.model_copy(update={"mode": Mode.DEVELOPMENT, **NO_SF})
    with caplog.at_level(logging.WARNING, logger="dinegraph"):
        await check_store_platforms(development, engine)
    warned = [r.getMessage() for r in caplog.records if r.name == "dinegraph"]
    assert any("SZ-FT-02" in m and "DINEGRAPH_SF_DEV_ID" in m for m in warned), warned


def test_a_database_without_the_schema_stops_production_and_warns_development(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(url: str) -> None:
        empty = create_engine(settings, url)
        try:
            with pytest.raises(ConfigurationError, match="dinegraph migrate"):
                await check_store_platforms(_production(settings), empty)
            with caplog.at_level(logging.WARNING, logger="dinegraph"):
                await check_store_platforms(settings, empty)
        finally:
            await empty.dispose()

    with fresh_database(tmp_path, migrated=False) as url:
        asyncio.run(check(url))
    assert any("dinegraph migrate" in r.getMessage() for r in caplog.records)
