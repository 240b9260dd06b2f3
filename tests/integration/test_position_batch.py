"""Courier reports written in batches (``domain.services.position_batch``), and without.

Both paths must answer alike: each report its own outcome or coded refusal, every kept
report in the track and in the audit log, a refused one changing nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import audit_log, courier_positions
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.audit import ActorKind, AuditDraft, AuditEntry, Outcome
from dinegraph.domain.delivery import PositionVerdict
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.identity import PartnerViewer
from dinegraph.domain.services.delivery import ReportPosition
from dinegraph.domain.services.position_batch import (
    PositionBatcher,
    PositionReport,
)
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.integration.test_delivery import at, delivery_of, partner_key, ready_order, report
from tests.shop import new_shop, shop_client


async def positions_of(engine: AsyncEngine, delivery_id: int) -> list[float]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            sa.select(courier_positions.c.lat)
            .where(courier_positions.c.delivery_id == delivery_id)
            .order_by(courier_positions.c.recorded_at)
        )
        return list(rows)


async def audited(engine: AsyncEngine, delivery_id: int) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            sa.select(audit_log.c.outcome).where(
                audit_log.c.action == "reportCourierPosition",
                audit_log.c.object_type == "Delivery",
                audit_log.c.object_id == delivery_id,
            )
        )
        return sorted(rows)


@pytest.mark.parametrize("batch_ms", [0, 200], ids=["one-by-one", "batched"])
async def test_reports_sent_together_each_get_their_own_answer(
    batch_ms: float, credentials: Credentials, settings: Settings, engine: AsyncEngine
) -> None:
    async with shop_client(
        settings, engine, courier_report_min_interval_seconds=0, position_batch_ms=batch_ms
    ) as (client, services):
        assert services.positions.enabled is (batch_ms > 0)
        shop = await new_shop(engine)
        staff = credentials.hq_admin
        orders = [await ready_order(client, settings, engine, staff, shop) for _ in range(2)]
        first, second = [(await delivery_of(client, o, staff))["delivery"]["id"] for o in orders]
        dada = await partner_key(engine, "DADA", ["delivery:write"])
        sf = await partner_key(engine, "SF_INTRA_CITY", ["delivery:write"])
        lat, lng = shop.centre
        unknown = encode_id("Delivery", 10**9)
        # Sent together: the refusals do not depend on which report lands first.
        sent: list[tuple[dict[str, str], str, tuple[float, float], str]] = [
            (dada, first, (lat + 0.001, lng), at(services, 10)),
            (dada, second, (lat + 0.002, lng), at(services, 10)),
            (sf, first, (lat, lng), at(services, 12)),  # not its trip
            (dada, unknown, (lat, lng), at(services, 12)),
            (dada, second, (lat + 1.0, lng), at(services, 12)),  # 110 km away
        ]
        answers: list[Any] = await asyncio.gather(
            *(report(client, key, d, point, when) for key, d, point, when in sent)
        )
        codes = [[e["code"] for e in a["errors"]] for a in answers]
        assert codes == [[], [], ["WRONG_PROVIDER"], ["NOT_FOUND"], ["IMPLAUSIBLE_POSITION"]]
        assert [a["accepted"] for a in answers] == [True, True, False, False, False]
        # Then, together again: an older report of one trip (kept, the courier stays put)
        # and a newer one of the other.
        older, newer = await asyncio.gather(
            report(client, dada, first, (lat + 0.0005, lng), at(services, 5)),
            report(client, dada, second, (lat + 0.003, lng), at(services, 20)),
        )
        assert older["errors"] == [] and older["accepted"] is False
        assert older["delivery"]["position"] == {"lat": lat + 0.001, "lng": lng}
        assert newer["errors"] == [] and newer["accepted"] is True
        # Each accepted report moved its delivery one version on; the older one did not.
        assert older["delivery"]["version"] == answers[0]["delivery"]["version"]
        assert newer["delivery"]["version"] == answers[1]["delivery"]["version"] + 1
        seen = await delivery_of(client, orders[0], staff)
        assert seen["delivery"]["position"] == {"lat": lat + 0.001, "lng": lng}
        seen = await delivery_of(client, orders[1], staff)
        assert seen["delivery"]["position"] == {"lat": lat + 0.003, "lng": lng}
        assert seen["delivery"]["version"] == newer["delivery"]["version"]
        one, two = (decode_id(d, "Delivery", ["deliveryId"]) for d in (first, second))
        assert await positions_of(engine, one) == [lat + 0.0005, lat + 0.001]
        assert await positions_of(engine, two) == [lat + 0.002, lat + 0.003]
        # One entry per kept report; the platform that was not the carrier is kept DENIED.
        done, denied = Outcome.DONE.value, Outcome.DENIED.value
        assert await audited(engine, one) == sorted([done, done, denied])
        assert await audited(engine, two) == [done, done]


async def trip(
    settings: Settings, engine: AsyncEngine, credentials: Credentials, count: int
) -> tuple[list[int], tuple[float, float], ReportPosition]:
    """``count`` deliveries of one new shop under way, and a report to copy for them."""
    async with shop_client(settings, engine, courier_report_min_interval_seconds=0) as (
        client,
        services,
    ):
        shop = await new_shop(engine)
        staff = credentials.hq_admin
        ids = []
        for _ in range(count):
            order = await ready_order(client, settings, engine, staff, shop)
            found = (await delivery_of(client, order, staff))["delivery"]["id"]
            ids.append(decode_id(found, "Delivery", ["deliveryId"]))
        now = services.clock()
        cmd = ReportPosition(
            delivery_id=0,
            lat=shop.centre[0],
            lng=shop.centre[1],
            recorded_at=now,
            now=now,
            policy=services.orders.delivery,
        )
        return ids, shop.centre, cmd


DADA = PartnerViewer(
    api_key_id=1, name="dada", scopes=frozenset({"delivery:write"}), store_ids=None, partner="DADA"
)


def draft(delivery_id: int) -> AuditDraft:
    entry = AuditEntry(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        actor_kind=ActorKind.PARTNER,
        credential="key:test",
        action="reportCourierPosition",
        object_type="Delivery",
        object_id=delivery_id,
        api_key_id=None,
    )
    return AuditDraft(entry)


class PoisonedBatch(SqlUnitOfWork):
    """A unit whose batch write fails (its audit: None); units of one report work."""

    async def __aenter__(self) -> SqlUnitOfWork:
        unit = await super().__aenter__()
        if self.audit is None:

            async def refuse(*_: object) -> None:
                raise RuntimeError("poisoned batch")

            self.deliveries.add_positions = refuse  # type: ignore[method-assign,assignment]
        return unit


async def test_a_failed_batch_is_written_again_report_by_report(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    ids, (lat, lng), cmd = await trip(settings, engine, credentials, 2)
    batcher = PositionBatcher(0.05, 10)

    def new_unit(audit: AuditDraft | None) -> PoisonedBatch:
        unit = PoisonedBatch(engine)
        unit.audit = audit
        return unit

    good = [
        PositionReport(replace(cmd, delivery_id=d, lat=lat + 0.002), DADA, draft(d)) for d in ids
    ]
    bad = PositionReport(replace(cmd, delivery_id=ids[0], lat=lat + 1.0), DADA, None)
    results = await asyncio.gather(
        *(batcher.report(r, new_unit) for r in [*good, bad]), return_exceptions=True
    )
    refused = results[2]
    assert isinstance(refused, DomainError) and refused.code is ErrorCode.IMPLAUSIBLE_POSITION
    for (moved, verdict), d in zip(results[:2], ids, strict=True):  # type: ignore[misc]
        assert verdict is PositionVerdict.ACCEPTED and moved.position == GeoPoint(lat + 0.002, lng)
        assert await positions_of(engine, d) == [lat + 0.002]
    assert all(r.audit is not None and r.audit.written for r in good)
