"""Maintenance and simulation commands of `dinegraph`: expire-points, prune-positions,
rotate-data-keys, reconcile-payments, build-recommendations, simulate.

Registered on the app by dinegraph/cli.py; like every cli module, this imports at module
level only typer, the standard library and the option enums (see dinegraph/cli.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dinegraph.cli_app import announcing, load_settings, open_engine, run_async
from dinegraph.domain.identity import StaffRole
from dinegraph.domain.providers import Provider

if TYPE_CHECKING:
    from dinegraph.settings import Settings


def expire_points_command() -> None:
    """Expire earned points past their date (run it daily, e.g. from cron)."""
    from datetime import UTC, datetime

    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.domain.services.points import expire_points

    async def run(settings: Settings) -> int:
        engine = open_engine(settings)
        try:
            total = 0
            while True:
                seen, expired = await expire_points(datetime.now(UTC), uow=SqlUnitOfWork(engine))
                total += expired
                if seen == 0:
                    return total
        finally:
            await engine.dispose()

    typer.echo(f"expired {run_async(run)} points")


def rotate_data_keys_command(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt personal data under the first key of DINEGRAPH_DATA_KEYS (and index phones
    again under DINEGRAPH_BLIND_INDEX_KEY). Resumable: run it again after an interruption."""
    from dinegraph.db.data_keys import ColumnRotation, rotate_data_keys

    async def run(settings: Settings) -> list[ColumnRotation]:
        engine = open_engine(settings)
        try:
            return await rotate_data_keys(engine, batch_size=batch_size)
        finally:
            await engine.dispose()

    report = run_async(run)
    for count in report:
        typer.echo(f"{count.column}: {count.rotated} rewritten, {count.current} already current")
    current = load_settings().personal_data_keys[0][0]
    typer.echo(f"rewrote {sum(c.rotated for c in report)} values; all under key {current}")


def prune_positions_command() -> None:
    """Forget courier positions older than DINEGRAPH_POSITION_RETENTION_DAYS (for cron; the
    server also does it hourly)."""
    from datetime import UTC, datetime, timedelta

    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.domain.services.delivery import prune_positions

    async def run(settings: Settings) -> int:
        engine = open_engine(settings)
        try:
            return await prune_positions(
                datetime.now(UTC),
                timedelta(days=settings.position_retention_days),
                uow=SqlUnitOfWork(engine),
            )
        finally:
            await engine.dispose()

    typer.echo(f"pruned {run_async(run)} courier positions")


def build_recommendations_command() -> None:
    """Rebuild the recommendation model (猜你喜欢) from orders and behaviour events, and
    forget events past their retention (for cron; the server also does it on a schedule)."""
    from datetime import UTC, datetime

    from dinegraph.db.recommendations import BuildReport, build_recommendations

    async def run(settings: Settings) -> BuildReport:
        engine = open_engine(settings)
        try:
            return await build_recommendations(engine, datetime.now(UTC), settings.timezone)
        finally:
            await engine.dispose()

    built = run_async(run)
    typer.echo(
        f"recommendation model {built.version}: {built.orders} orders, {built.events} events, "
        f"{built.products} products, built in {built.seconds:.2f} s; "
        f"{built.pruned_events} old events forgotten"
    )


def reconcile_payments_command(
    older_than_seconds: Annotated[
        float | None,
        typer.Option(help="Ask about prepays quiet this long (default: the server's setting)."),
    ] = None,
    refunds_older_than_seconds: Annotated[
        float | None,
        typer.Option(help="Ask about refunds SUBMITTED this long (default: the server's setting)."),
    ] = None,
) -> None:
    """Ask WeChat Pay about orders whose payment notification never came (confirming the
    paid ones), close the trades of cancelled orders, and settle refunds whose refund
    notification never came; the server does it every minute."""
    from datetime import timedelta

    from dinegraph.app import default_services
    from dinegraph.wechatpay_wiring import reconcile_once, reconcile_refunds_once

    async def run(settings: Settings) -> str:
        services = default_services(settings)
        if services.wechatpay is None:
            raise typer.BadParameter("WeChat Pay is not configured: set DINEGRAPH_WECHATPAY_MCHID")
        quiet = (
            older_than_seconds
            if older_than_seconds is not None
            else settings.wechatpay_reconcile_after_seconds
        )
        refunds_quiet = (
            refunds_older_than_seconds
            if refunds_older_than_seconds is not None
            else settings.refund_reconcile_after_seconds
        )
        try:
            # Through the servers' broker: a member watching the order hears what changed.
            async with announcing(settings) as (engine, broker):
                done = await reconcile_once(engine, broker, services, timedelta(seconds=quiet))
                refunds = await reconcile_refunds_once(
                    engine, broker, services, timedelta(seconds=refunds_quiet)
                )
        finally:
            await services.wechatpay.aclose()
        return (
            f"confirmed {len(done.confirmed)} paid, closed {len(done.closed)}, "
            f"ended unpaid {len(done.ended)}, refunded {len(done.refunded)}, "
            f"failed {len(done.failed)}; "
            f"refunds settled {refunds.settled} ({len(refunds.refunded)} refunded, "
            f"{len(refunds.failed)} failed), {len(refunds.processing)} still processing, "
            f"{len(refunds.unanswered)} unanswered"
        )

    typer.echo(run_async(run))


def simulate(
    url: Annotated[str, typer.Option(help="The running server to drive.")] = (
        "http://127.0.0.1:8000"
    ),
    orders_per_minute: Annotated[float, typer.Option(min=0.1, max=600)] = 6,
    minutes: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=240,
            help="How long new orders are placed. Then trips under way get --grace-seconds "
            "to finish; any still riding are abandoned, so the run ends within both.",
        ),
    ] = 5,
    grace_seconds: Annotated[
        float,
        typer.Option(min=0, max=3600, help="After --minutes, how long trips may finish."),
    ] = 60,
    speed_kmh: Annotated[float, typer.Option(min=5, max=60, help="Couriers' speed.")] = 20,
    report_every: Annotated[float, typer.Option(min=1, max=60, help="Seconds.")] = 2,
    cook_seconds: Annotated[float, typer.Option(min=0, max=600)] = 10,
    farthest_m: Annotated[float, typer.Option(min=50, max=5000, help="Trip length.")] = 2500,
    orders: Annotated[
        int | None, typer.Option(min=1, help="Stop placing orders after this many.")
    ] = None,
    platform_callbacks: Annotated[
        str,
        typer.Option(
            help="Platforms (e.g. DADA,SF_INTRA_CITY) whose riders report through their own "
            "callbacks to the server (real ones, or their local protocol servers playing "
            "riders): their trips are followed, not played.",
        ),
    ] = "",
) -> None:
    """Development only: drive demo orders through place, pay, cook, dispatch, ride and
    deliver against a running server, so subscriptions move in GraphiQL."""
    import uuid
    from datetime import timedelta

    import httpx

    from dinegraph.db import identity as identity_db
    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.domain.identity import Scope
    from dinegraph.security import issue_member_token, issue_staff_token, new_api_key
    from dinegraph.simulate import Credentials, Pace, Simulation, SimulationError

    settings = load_settings()
    if settings.production:
        typer.echo("error: simulate is for development mode only", err=True)
        raise typer.Exit(2)
    known = {p.value for p in Provider if p is not Provider.OWN_RIDER}
    if unknown := {p.strip().upper() for p in platform_callbacks.split(",") if p.strip()} - known:
        typer.echo(f"error: --platform-callbacks names no platform: {', '.join(unknown)}", err=True)
        raise typer.Exit(2)

    async def run(settings: Settings) -> None:
        engine = open_engine(settings)
        try:
            staff = await identity_db.ensure_staff(
                engine, username="simulator", role=StaffRole.HQ_ADMIN, store_ids=[]
            )
            keys: dict[str, str] = {}
            for provider in Provider:
                key = new_api_key()
                await identity_db.insert_api_key(
                    engine,
                    name=f"simulated {provider.value}",
                    prefix=key.prefix,
                    key_hash=key.key_hash,
                    scopes=[Scope.DELIVERY_WRITE.value],
                    store_ids=None,
                    partner=provider.value,
                )
                keys[provider.value] = key.key

            async def new_member() -> str:
                async with SqlUnitOfWork(engine) as uow:
                    member = await uow.members.add(
                        phone=None, openid=f"sim-{uuid.uuid4().hex}", nickname="模拟顾客"
                    )
                    await uow.commit()
                return issue_member_token(settings, member.id)

            pace = Pace(
                orders_per_minute=orders_per_minute,
                duration=timedelta(minutes=minutes),
                speed_kmh=speed_kmh,
                report_every=report_every,
                cook_seconds=cook_seconds,
                farthest_m=farthest_m,
                grace=timedelta(seconds=grace_seconds),
                max_orders=orders,
                platform_callbacks=frozenset(
                    p.strip().upper() for p in platform_callbacks.split(",") if p.strip()
                ),
            )
            credentials = Credentials(new_member, issue_staff_token(settings, staff), keys)
            await Simulation(url, credentials, pace, typer.echo).run()
        finally:
            await engine.dispose()

    try:
        run_async(run)
    except (SimulationError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc} (is `make run` serving {url}?)", err=True)
        raise typer.Exit(1) from exc
