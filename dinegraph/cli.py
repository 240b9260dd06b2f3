"""`dinegraph`: serve, migrate, seed, export the schema, and issue credentials.

Starting fast: at module level this file imports only typer, the standard library and the
domain's enums that options are typed with. Each command imports what it needs inside its
body, so `dinegraph --help` or `staff-token` never load the server, the GraphQL schema or
the migrations. A new command follows the same pattern; `_settings()` and `_engine()` give
the configuration and a database engine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from dinegraph.domain.identity import StaffRole
from dinegraph.domain.providers import Provider

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dinegraph.settings import Settings

app = typer.Typer(
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and errors: laying them out with rich costs a second
    help="dinegraph: the GraphQL backend of a restaurant chain's mini-program mall.",
)
T = TypeVar("T")

StoreOption = Annotated[
    list[str] | None,
    typer.Option("--store", help="Store id (number or global ID); repeat for several."),
]


def _settings() -> Settings:
    from dinegraph.settings import get_settings

    return get_settings()


def _engine(settings: Settings) -> AsyncEngine:
    from dinegraph.db.engine import create_engine

    return create_engine(settings)


def _run(make: Callable[[Settings], Awaitable[T]]) -> T:
    import asyncio

    settings = _settings()

    async def main() -> T:
        return await make(settings)

    return asyncio.run(main())


def _store_ids(values: list[str] | None) -> list[int]:
    from dinegraph.domain.errors import DomainError
    from dinegraph.resolvers.ids import decode_id

    ids: list[int] = []
    for value in values or []:
        try:
            ids.append(int(value) if value.isdigit() else decode_id(value, "Store", ["store"]))
        except DomainError:
            raise typer.BadParameter(f"not a store id: {value}", param_hint="--store") from None
    return ids


def staff_username(role: StaffRole, store_ids: list[int]) -> str:
    """The account `staff-token` (and `seed`, for head office) uses when none is named:
    ``hq-admin``, ``operator``, ``store-manager-3-4``."""
    return "-".join([role.value.lower().replace("_", "-"), *map(str, store_ids)])


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve /graphql (HTTP and WebSocket) and /health."""
    import logging

    import uvicorn

    from dinegraph.settings import ConfigurationError

    settings = _settings()
    try:
        settings.check_servable(workers)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bind_host, bind_port = host or settings.host, port or settings.port
    if not settings.production:
        typer.echo(f"GraphiQL: http://{bind_host}:{bind_port}/graphql")
    uvicorn.run(
        "dinegraph.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers or settings.workers,
        log_level="info",
        access_log=not settings.production,  # one line a request costs CPU on a busy node
        proxy_headers=True,
        ws_max_size=settings.max_ws_message_bytes,  # larger messages are refused unread
    )


@app.command()
def migrate() -> None:
    """Bring the database schema up to date and say what was applied."""
    from dinegraph.db.migrate import upgrade_reporting

    typer.echo(upgrade_reporting(_settings()).describe())


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo chain.")] = False,
) -> None:
    """Load the demo chain (味知堂, Shenzhen) into an empty database."""
    if not demo:
        typer.echo("nothing to seed: pass --demo", err=True)
        raise typer.Exit(2)
    from dinegraph.db import identity as identity_db
    from dinegraph.db.seed import AlreadySeeded, seed_demo
    from dinegraph.security import issue_staff_token

    async def run(settings: Settings) -> None:
        engine = _engine(settings)
        try:
            try:
                # Laid out around the server's clock: DINEGRAPH_CLOCK_START when set, else now.
                counts = await seed_demo(engine, now=settings.clock_start)
            except AlreadySeeded as exc:
                typer.echo(f"{exc}")
            else:
                typer.echo("demo chain loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            name = staff_username(StaffRole.HQ_ADMIN, [])
            staff = await identity_db.ensure_staff(
                engine, username=name, role=StaffRole.HQ_ADMIN, store_ids=[]
            )
            typer.echo(f"staff token (HQ_ADMIN {name}), for the Authorization: Bearer header:")
            typer.echo(issue_staff_token(settings, staff))
        finally:
            await engine.dispose()

    _run(run)


@app.command("export-schema")
def export_schema(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print the GraphQL schema (SDL) that clients are written against."""
    from dinegraph.schema import export_sdl

    sdl = export_sdl()
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl, encoding="utf-8")


@app.command("trust-documents")
def trust_documents(
    files: Annotated[
        list[Path],
        typer.Argument(help=".graphql files (one document per operation) or JSON manifests."),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(help="Also write the hash → document manifest the client build ships."),
    ] = None,
) -> None:
    """Register the documents that may run when DINEGRAPH_TRUSTED_DOCUMENTS_ONLY is on; each
    is checked against the schema first."""
    import json

    from graphql import parse, validate

    from dinegraph.db.documents import SqlDocumentStore
    from dinegraph.persisted import documents_from_files
    from dinegraph.schema import build_schema

    try:
        documents = documents_from_files({str(f): f.read_text(encoding="utf-8") for f in files})
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="FILES") from None
    schema = build_schema(_settings())._schema
    for sha, document in documents.items():
        problems = validate(schema, parse(document))
        if problems:
            raise typer.BadParameter(f"{sha}: {problems[0].message}", param_hint="FILES")

    async def run(settings: Settings) -> int:
        engine = _engine(settings)
        try:
            store = SqlDocumentStore(engine, max_automatic=settings.persisted_queries_max)
            return await store.trust(documents)
        finally:
            await engine.dispose()

    added = _run(run)
    if manifest is not None:
        text = json.dumps(documents, ensure_ascii=False, indent=2, sort_keys=True)
        manifest.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"{len(documents)} trusted documents, {added} new")


@app.command("staff-token")
def staff_token(
    role: Annotated[StaffRole, typer.Option(help="The staff role.")],
    store: StoreOption = None,
    username: Annotated[
        str | None,
        typer.Option(help="Account name (default: from role and stores, e.g. hq-admin)."),
    ] = None,
) -> None:
    """Create or update a staff account and print a bearer token on the last line."""
    store_ids = _store_ids(store)
    if role is StaffRole.STORE_MANAGER and not store_ids:
        raise typer.BadParameter("a STORE_MANAGER needs at least one --store", param_hint="--store")
    name = username or staff_username(role, store_ids)
    from dinegraph.db import identity as identity_db
    from dinegraph.security import issue_staff_token

    async def run(settings: Settings) -> str:
        engine = _engine(settings)
        try:
            viewer = await identity_db.ensure_staff(
                engine, username=name, role=role, store_ids=store_ids
            )
        except identity_db.UnknownStoreError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from exc
        finally:
            await engine.dispose()
        return issue_staff_token(settings, viewer)

    token = _run(run)
    typer.echo(f"staff {name} ({role.value}); token:")
    typer.echo(token)


@app.command("member-token")
def member_token(
    phone: Annotated[str, typer.Option(help="The member's mobile number.")],
) -> None:
    """Development only: create the member if needed and print an access token last."""
    from dinegraph.domain.errors import DomainError
    from dinegraph.domain.members import check_phone, default_nickname

    settings = _settings()
    if settings.production:
        typer.echo("error: member-token is for development mode only", err=True)
        raise typer.Exit(2)
    try:
        number = check_phone(phone)
    except DomainError:
        raise typer.BadParameter(f"not a mobile number: {phone}", param_hint="--phone") from None
    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.security import issue_member_token

    async def run(settings: Settings) -> int:
        engine = _engine(settings)
        try:
            async with SqlUnitOfWork(engine) as uow:
                member = await uow.members.by_phone(number)
                if member is None:
                    member = await uow.members.add(
                        phone=number, openid=None, nickname=default_nickname(number)
                    )
                await uow.commit()
            return member.id
        finally:
            await engine.dispose()

    member_id = _run(run)
    typer.echo(f"member {member_id} ({number}); access token:")
    typer.echo(issue_member_token(settings, member_id))


@app.command("expire-points")
def expire_points_command() -> None:
    """Expire earned points past their date (run it daily, e.g. from cron)."""
    from datetime import UTC, datetime

    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.domain.services.points import expire_points

    async def run(settings: Settings) -> int:
        engine = _engine(settings)
        try:
            total = 0
            while True:
                seen, expired = await expire_points(datetime.now(UTC), uow=SqlUnitOfWork(engine))
                total += expired
                if seen == 0:
                    return total
        finally:
            await engine.dispose()

    typer.echo(f"expired {_run(run)} points")


@app.command("create-api-key")
def create_api_key(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. the POS vendor.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated, e.g. stock:write,stock:read.")],
    store: StoreOption = None,
    partner: Annotated[
        Provider | None,
        typer.Option(help="The delivery platform the key writes for (delivery:write)."),
    ] = None,
) -> None:
    """Create a partner API key (send it as X-Api-Key) and print it on the last line."""
    from dinegraph.domain.identity import Scope

    scope_list = sorted({s.strip() for s in scopes.split(",") if s.strip()})
    if not scope_list:
        raise typer.BadParameter("give at least one scope", param_hint="--scopes")
    if Scope.DELIVERY_WRITE.value in scope_list and partner is None:
        raise typer.BadParameter(
            "a delivery:write key writes for one platform: add --partner DADA (or another)",
            param_hint="--partner",
        )
    store_ids = _store_ids(store) or None
    from dinegraph.db import identity as identity_db
    from dinegraph.security import new_api_key

    key = new_api_key()

    async def run(settings: Settings) -> int:
        engine = _engine(settings)
        try:
            return await identity_db.insert_api_key(
                engine,
                name=name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                scopes=scope_list,
                store_ids=store_ids,
                partner=partner.value if partner else None,
            )
        except identity_db.UnknownStoreError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from exc
        finally:
            await engine.dispose()

    key_id = _run(run)
    where = "all stores" if store_ids is None else f"stores {store_ids}"
    carrier = f", for {partner.value} deliveries" if partner else ""
    typer.echo(f"API key {key_id} for {name}: scopes {','.join(scope_list)}, {where}{carrier}")
    typer.echo(key.key)


@app.command("prune-positions")
def prune_positions_command() -> None:
    """Forget courier positions older than DINEGRAPH_POSITION_RETENTION_DAYS (for cron; the
    server also does it hourly)."""
    from datetime import UTC, datetime, timedelta

    from dinegraph.db.uow import SqlUnitOfWork
    from dinegraph.domain.services.delivery import prune_positions

    async def run(settings: Settings) -> int:
        engine = _engine(settings)
        try:
            return await prune_positions(
                datetime.now(UTC),
                timedelta(days=settings.position_retention_days),
                uow=SqlUnitOfWork(engine),
            )
        finally:
            await engine.dispose()

    typer.echo(f"pruned {_run(run)} courier positions")


@app.command()
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

    settings = _settings()
    if settings.production:
        typer.echo("error: simulate is for development mode only", err=True)
        raise typer.Exit(2)

    async def run(settings: Settings) -> None:
        engine = _engine(settings)
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
            )
            credentials = Credentials(new_member, issue_staff_token(settings, staff), keys)
            await Simulation(url, credentials, pace, typer.echo).run()
        finally:
            await engine.dispose()

    try:
        _run(run)
    except (SimulationError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc} (is `make run` serving {url}?)", err=True)
        raise typer.Exit(1) from exc


def main() -> None:  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
