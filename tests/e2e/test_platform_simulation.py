"""The simulator drives 达达 and 顺丰同城 through a real server: `dinegraph serve` orders
through its real adapters at the platforms' local protocol servers (tests/fakes), which
play the riders and post their signed callbacks back; `dinegraph simulate` plays members
and the store. Quotes, dispatch, callbacks to delivered, the call-off of a platform that
found no rider and the hand-on to the next (re-dispatch), and a trip the platform
cancelled (by either platform), dispatched again."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinegraph.db.engine import create_engine
from dinegraph.db.seed import seed_demo
from dinegraph.db.tables import courier_positions, deliveries, stores
from dinegraph.settings import Settings
from tests.conftest import make_settings
from tests.databases import fresh_database
from tests.e2e.conftest import free_port, run_cli, running_server
from tests.fakes.dada import FakeDada
from tests.fakes.sf_intra_city import FakeSfIntraCity
from tests.shop import next_noon

STORE = "SZ-FT-01"  # 福田中心店: the only store open, on 达达 then 顺丰同城
SF_SHOP = "3243279847393"


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Settings]:
    """A demo chain of its own: one store open, asking 达达 first, then 顺丰同城."""
    with fresh_database(tmp_path) as url:
        settings = make_settings(url)

        async def load() -> None:
            engine = create_engine(settings, url)
            try:
                await seed_demo(engine)
                async with engine.begin() as conn:
                    await conn.execute(
                        stores.update().where(stores.c.code != STORE).values(is_open=False)
                    )
                    await conn.execute(
                        stores.update()
                        .where(stores.c.code == STORE)
                        .values(
                            delivery_provider="DADA",
                            delivery_platforms="DADA,SF_INTRA_CITY",
                            carrier_rule="PREFERRED",
                        )
                    )
            finally:
                await engine.dispose()

        asyncio.run(load())
        yield settings


async def _trips(settings: Settings) -> list[tuple[str, str, int]]:
    """Every delivery: its platform, its status and how many positions it reported."""
    engine = create_engine(settings, settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    deliveries.c.provider,
                    deliveries.c.status,
                    sa.func.count(courier_positions.c.id),
                )
                .outerjoin(courier_positions, courier_positions.c.delivery_id == deliveries.c.id)
                .group_by(deliveries.c.id, deliveries.c.provider, deliveries.c.status)
                .order_by(deliveries.c.id)
            )
            return [(r[0], r[1], int(r[2])) for r in rows]
    finally:
        await engine.dispose()


def test_simulate_drives_orders_through_dada_and_sf_by_their_callbacks(chain: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # 达达's riders: the first order finds none (handed on to 顺丰同城, which delivers it),
    # the second is delivered, the third cancelled by its rider. The store sends that one
    # again: 达达 finds none this time, 顺丰同城's rider cancels it, the store sends it once
    # more and 达达 delivers it.
    dada = FakeDada(plans=("no_rider", "deliver", "cancel"), step_seconds=0.5)
    sf = FakeSfIntraCity(
        plans=("deliver", "cancel"),
        step_seconds=1.2,
        positions=6,
        callback_url=f"{url}/delivery/sf/callback",
    )
    with dada.running(), sf.running():
        env = {
            "DINEGRAPH_CLOCK_START": next_noon().isoformat(),
            "DINEGRAPH_DELIVERY_PLATFORMS": "DADA,SF_INTRA_CITY",
            "DINEGRAPH_DADA_BASE_URL": dada.url,
            "DINEGRAPH_DADA_APP_KEY": dada.app_key,
            "DINEGRAPH_DADA_APP_SECRET": dada.app_secret,
            "DINEGRAPH_DADA_SOURCE_ID": dada.source_id,
            "DINEGRAPH_DADA_CALLBACK_URL": f"{url}/delivery/dada/callback",
            "DINEGRAPH_SF_BASE_URL": sf.url,
            "DINEGRAPH_SF_DEV_ID": sf.dev_id,
            "DINEGRAPH_SF_DEV_KEY": sf.dev_key,
            "DINEGRAPH_SF_SHOP_ID": SF_SHOP,
            "DINEGRAPH_SF_CALLBACK_URL": f"{url}/delivery/sf/callback",
            "DINEGRAPH_RIDER_ACCEPT_TIMEOUT_SECONDS": "4",
            "DINEGRAPH_ORDER_SWEEP_SECONDS": "1",
            "DINEGRAPH_COURIER_REPORT_MIN_INTERVAL_SECONDS": "0.5",
        }
        with running_server(chain, port=port, **env):
            ran = run_cli(
                chain,
                "simulate",
                "--url",
                url,
                "--orders",
                "3",
                "--orders-per-minute",
                "60",
                "--minutes",
                "1",
                "--cook-seconds",
                "0",
                "--farthest-m",
                "300",
                "--grace-seconds",
                "150",
                "--platform-callbacks",
                "DADA,SF_INTRA_CITY",
            )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out
    lines = ran.stdout.strip().splitlines()
    placed, delivered = (int(n) for n in re.findall(r"\d+", lines[-1]))
    assert lines[-1].startswith("done:") and (placed, delivered) == (3, 3), out
    handed_on, again = (int(n) for n in re.findall(r"\d+", lines[-2]))
    assert lines[-2].startswith("platforms:") and (handed_on, again) == (2, 2), out
    assert "found no rider: handed on to SF_INTRA_CITY" in out and "cancelled it" in out

    # The server quoted at both, ordered at 达达, called it off when no rider came, and
    # ordered at 顺丰同城: all through their protocols (the fakes check every signature).
    dada_calls = [path.rsplit("/", 1)[-1] for path, _ in dada.requests]
    sf_calls = [api for api, _ in sf.requests]
    assert "queryDeliverFee" in dada_calls and "precreateorder" in sf_calls
    assert dada_calls.count("addOrder") == 5  # three orders, one of them three times
    assert dada_calls.count("formalCancel") == 2  # the two no-rider orders, called off
    assert set(dada.cancel_reasons.values()) == {(1, "没有配送员接单")}
    assert sf_calls.count("createorder") == 2 and not sf.refusals
    # Every callback and push was taken at once, up to delivered.
    assert dada.callbacks and all(code == 200 for *_, code in dada.callbacks), dada.callbacks
    assert sf.pushes and all(code == 200 for *_, code in sf.pushes), sf.pushes
    assert {status for _, status, _ in dada.callbacks} == {2, 100, 3, 4, 5}
    assert {status for _, status, _ in sf.pushes} == {10, 12, 15, 17, 2}

    trips = asyncio.run(_trips(chain))
    assert sorted((p, s) for p, s, _ in trips) == [
        ("DADA", "DELIVERED"),
        ("DADA", "DELIVERED"),
        ("DADA", "FAILED"),  # its rider cancelled
        ("SF_INTRA_CITY", "DELIVERED"),
        ("SF_INTRA_CITY", "FAILED"),  # its rider cancelled
    ], trips
    (positions,) = [n for p, s, n in trips if (p, s) == ("SF_INTRA_CITY", "DELIVERED")]
    assert positions >= 6, trips  # the rider moved on the map
