"""The schedules inside the server: sweeps of unpaid orders, of campaigns and of calls out
due, and the pruning of old courier positions, each a task for the app's lifetime."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.db.queries import ReadQueries
from dinegraph.db.recommendations import build_recommendations, current_version
from dinegraph.db.uow import SqlReader, SqlUnitOfWork
from dinegraph.domain.services.campaigns import SWEEP_BATCH as CAMPAIGN_SWEEP_BATCH
from dinegraph.domain.services.campaigns import close_campaigns, fail_expired_groups
from dinegraph.domain.services.coupons import resume_issue_jobs
from dinegraph.domain.services.delivery import prune_positions
from dinegraph.domain.services.dispatch import hand_on_unaccepted
from dinegraph.domain.services.orders import SWEEP_BATCH, cancel_expired
from dinegraph.events.brokers import Broker
from dinegraph.settings import Settings
from dinegraph.wechatpay_wiring import reconcile_once, reconcile_refunds_once

log = logging.getLogger("dinegraph")


def _unit(engine: AsyncEngine, broker: Broker, services: Services) -> SqlUnitOfWork:
    """A sweep's unit of work: its events to the broker, its supply changes to the board."""
    return SqlUnitOfWork(engine, events=broker, board=services.board.unit(), calls=services.calls)


async def resume_coupon_issues(engine: AsyncEngine, broker: Broker, services: Services) -> None:
    """At start: finish issuing coupons to the segments a stopped server was still on.
    Every server does so; the job's row lock keeps them from issuing a batch twice."""
    try:
        resumed = await resume_issue_jobs(
            new_uow=lambda: _unit(engine, broker, services), now=services.clock()
        )
    except Exception:  # logged; a later start tries again
        log.exception("resuming coupon issues failed")
        return
    if resumed:
        log.info("resumed %d coupon issues", resumed)


async def sweep_unpaid_orders(
    engine: AsyncEngine, broker: Broker, services: Services, every_seconds: float
) -> None:
    """The scheduler inside the server: cancel unpaid orders once their time is up.

    A plain read looks first, so an idle round takes no write lock.
    """
    reads = ReadQueries(engine)
    while True:
        await asyncio.sleep(every_seconds)
        try:
            while await reads.unpaid_expired(services.clock()):
                cancelled = await cancel_expired(
                    services.clock(), uow=_unit(engine, broker, services)
                )
                if cancelled:
                    log.info("cancelled %d unpaid orders", len(cancelled))
                if len(cancelled) < SWEEP_BATCH:
                    break
        except Exception:
            log.exception("unpaid-order sweep failed; trying again next round")


async def hand_on_round(
    engine: AsyncEngine, broker: Broker, services: Services, wait: float
) -> int:
    """One round: deliveries no rider took in time go to their next platform."""
    handed = await hand_on_unaccepted(
        services.clock(), timedelta(seconds=wait), uow=_unit(engine, broker, services)
    )
    if handed:
        log.info("handed %d deliveries on to their next platform", len(handed))
    return len(handed)


async def sweep_unaccepted(
    engine: AsyncEngine, broker: Broker, services: Services, settings: Settings
) -> None:
    """The scheduler inside the server: platforms that found no rider in time are called
    off, and the next platform of the delivery's ranking asked."""
    while True:
        await asyncio.sleep(settings.order_sweep_seconds)
        try:
            await hand_on_round(engine, broker, services, settings.rider_accept_timeout_seconds)
        except Exception:
            log.exception("unaccepted-delivery sweep failed; trying again next round")


async def sweep_campaigns(
    engine: AsyncEngine, broker: Broker, services: Services, every_seconds: float
) -> None:
    """The scheduler inside the server: fail groups not filled in time (refunding their
    members) and give ended campaigns' quotas back to the shelves.

    A plain read looks first, so an idle round takes no write lock.
    """
    while True:
        await asyncio.sleep(every_seconds)
        try:
            now = services.clock()
            async with SqlReader(engine) as reads:
                groups_due = bool(await reads.campaigns.expired_groups(now, 1))
                campaigns_due = bool(await reads.campaigns.to_close(now, 1))
            while groups_due:
                failed = await fail_expired_groups(
                    now, services.orders, uow=_unit(engine, broker, services)
                )
                if failed.groups:
                    log.info("failed %d expired groups", len(failed.groups))
                groups_due = len(failed.groups) == CAMPAIGN_SWEEP_BATCH
            if campaigns_due:
                closed = await close_campaigns(now, uow=_unit(engine, broker, services))
                if closed:
                    log.info("closed %d ended campaigns", closed)
        except Exception:
            log.exception("campaign sweep failed; trying again next round")


async def prune_old_positions(engine: AsyncEngine, services: Services, settings: Settings) -> None:
    """Courier positions are kept for DINEGRAPH_POSITION_RETENTION_DAYS, then forgotten."""
    retention = timedelta(days=settings.position_retention_days)
    while True:
        await asyncio.sleep(settings.position_prune_every_seconds)
        try:
            gone = await prune_positions(services.clock(), retention, uow=SqlUnitOfWork(engine))
            if gone:
                log.info("pruned %d courier positions", gone)
        except Exception:
            log.exception("position pruning failed; trying again next round")


async def reconcile_wechatpay(
    engine: AsyncEngine, broker: Broker, services: Services, settings: Settings
) -> None:
    """Ask WeChat Pay about payments and refunds whose notification never came, and close
    the trades of cancelled orders, every DINEGRAPH_WECHATPAY_RECONCILE_SECONDS."""
    quiet_for = timedelta(seconds=settings.wechatpay_reconcile_after_seconds)
    refunds_quiet_for = timedelta(seconds=settings.refund_reconcile_after_seconds)
    after_id = 0  # where the next round of refunds goes on
    while True:
        await asyncio.sleep(settings.wechatpay_reconcile_seconds)
        try:
            done = await reconcile_once(engine, broker, services, quiet_for)
            if done.confirmed or done.closed or done.refunded or done.ended:
                log.info(
                    "WeChat Pay reconciliation: %d confirmed, %d closed, %d ended unpaid, "
                    "%d refunded",
                    len(done.confirmed),
                    len(done.closed),
                    len(done.ended),
                    len(done.refunded),
                )
        except Exception:
            log.exception("WeChat Pay reconciliation failed; trying again next round")
        try:
            refunds = await reconcile_refunds_once(
                engine, broker, services, refunds_quiet_for, after_id=after_id
            )
            after_id = refunds.after_id
            if refunds.settled:
                log.info(
                    "WeChat Pay refund reconciliation: %d refunded, %d failed",
                    len(refunds.refunded),
                    len(refunds.failed),
                )
        except Exception:
            log.exception("WeChat Pay refund reconciliation failed; trying again next round")


async def sweep_calls(services: Services, every_seconds: float) -> None:
    """Calls out that are due: retries, and calls whose process died before making them."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            made = await services.calls.sweep()
            if made:
                log.info("made %d calls out", made)
        except Exception:
            log.exception("sweep of calls out failed; trying again next round")


async def rebuild_recommendations(
    engine: AsyncEngine, services: Services, settings: Settings
) -> None:
    """The recommendation model, rebuilt every DINEGRAPH_RECOMMENDATIONS_REBUILD_MINUTES from
    orders and behaviour events (never on a request's path), and at once on a database that
    has none yet; servers pick the new version up within seconds. Builds from several
    processes at once are safe: each writes a version."""
    every = settings.recommendations_rebuild_minutes * 60
    wait = every
    try:
        if await current_version(engine) is None:
            wait = 0  # no build has reached this database: 猜你喜欢 would be empty for a round
    except Exception:
        log.exception("could not read the recommendation model's version; building next round")
    while True:
        await asyncio.sleep(wait)
        wait = every
        try:
            built = await build_recommendations(engine, services.clock(), settings.timezone)
            log.info(
                "recommendation model %d built from %d orders and %d events in %.1f s",
                built.version,
                built.orders,
                built.events,
                built.seconds,
            )
        except Exception:
            log.exception("recommendation build failed; trying again next round")
