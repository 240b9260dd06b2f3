"""`dinegraph`: serve, migrate, seed, export the schema, and issue credentials.

Starting fast: at module level this file imports only typer, the standard library and the
domain's enums that options are typed with. Each command imports what it needs inside its
body, so `dinegraph --help` or `staff-token` never load the server, the GraphQL schema or
the migrations. A new command follows the same pattern; `load_settings()` and
`open_engine()` (dinegraph/cli_app.py, which holds the typer `app`) give the configuration
and a database engine.

The server and database commands are here; the credential commands are in
dinegraph/cli_credentials.py and the maintenance and simulation ones in
dinegraph/cli_operations.py. Those modules define plain functions, and this one registers
them on `app`, so `dinegraph --help` lists every command in one order and nothing imports
this module back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dinegraph.cli_app import (
    app,
    check_data_keys,
    load_settings,
    open_engine,
    run_async,
    staff_username,
)
from dinegraph.cli_credentials import (
    create_api_key,
    create_staff,
    disable_staff,
    member_token,
    revoke_api_key,
    staff_token,
)
from dinegraph.cli_operations import (
    build_recommendations_command,
    expire_points_command,
    prune_positions_command,
    reconcile_payments_command,
    rotate_data_keys_command,
    simulate,
)
from dinegraph.domain.identity import StaffRole

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dinegraph.settings import Settings

__all__ = ["app", "main", "staff_username"]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve /graphql (HTTP and WebSocket), the staff console at /admin, and /health."""
    import logging

    import uvicorn

    from dinegraph.settings import ConfigurationError
    from dinegraph.wechatpay_wiring import wechatpay_config

    settings = load_settings()
    try:
        settings.check_servable(workers)
        wechatpay = wechatpay_config(settings)
        if settings.production:  # development warns of them as the server starts
            check_stores_before_serving(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if wechatpay is not None:
        typer.echo(f"payments: WeChat Pay, merchant {wechatpay.mchid}, app {wechatpay.appid}")
    elif settings.pays_in_development:
        typer.echo("payments: the development adapter (payOrder marks orders paid at once)")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bind_host, bind_port = host or settings.host, port or settings.port
    if not settings.production:
        typer.echo(f"GraphiQL: http://{bind_host}:{bind_port}/graphql")
    from dinegraph.admin_console import announcement

    typer.echo(announcement(settings, f"http://{bind_host}:{bind_port}"))
    uvicorn.run(
        "dinegraph.app:serve_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers or settings.workers,
        log_level="info",
        access_log=not settings.production,  # one line a request costs CPU on a busy node
        proxy_headers=True,
        ws_max_size=settings.max_ws_message_bytes,  # larger messages are refused unread
        # The sans-I/O protocol (uvicorn's automatic choice today, named so that an upgrade
        # cannot change it) keeps no tasks of its own per socket; uvicorn's older
        # "websockets" protocol costs an idle subscriber about 1.8 times the memory.
        ws="websockets-sansio",
    )


def check_stores_before_serving(settings: Settings) -> None:
    """The stores' carriers against the settings, before any worker starts: a refusal is
    one line and status 2, like the settings' own (each worker checks again as it starts)."""
    import asyncio

    from dinegraph.app import check_store_platforms

    async def check() -> None:
        engine = open_engine(settings)
        try:
            await check_store_platforms(settings, engine)
        finally:
            await engine.dispose()

    asyncio.run(check())


@app.command()
def migrate() -> None:
    """Bring the database schema up to date and say what was applied."""
    from dinegraph.db.migrate import upgrade_reporting

    settings = load_settings()
    check_data_keys(settings)
    typer.echo(upgrade_reporting(settings).describe())


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
        engine = open_engine(settings)
        try:
            try:
                # Laid out around the server's clock: DINEGRAPH_CLOCK_START when set, else now.
                counts = await seed_demo(engine, now=settings.clock_start)
            except AlreadySeeded as exc:
                typer.echo(f"{exc}")
            else:
                typer.echo("demo chain loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            await _demo_staff(settings, engine)
            name = staff_username(StaffRole.HQ_ADMIN, [])
            staff = await identity_db.ensure_staff(
                engine, username=name, role=StaffRole.HQ_ADMIN, store_ids=[]
            )
            typer.echo(f"staff token (HQ_ADMIN {name}), for the Authorization: Bearer header:")
            typer.echo(issue_staff_token(settings, staff))
        finally:
            await engine.dispose()

    run_async(run)


async def _demo_staff(settings: Settings, engine: AsyncEngine) -> None:
    """Development only: staff accounts that sign in with printed demo passwords."""
    if settings.production:
        typer.echo("production: no demo staff accounts (create one with create-staff)")
        return
    from dinegraph.db.staff_accounts import ensure_demo_staff
    from dinegraph.passwords import Argon2Passwords

    accounts = await ensure_demo_staff(engine, Argon2Passwords().hash_now)
    typer.echo("demo staff accounts for staffLogin (development only):")
    for username, role, password in accounts:
        typer.echo(f"  {username} / {password} ({role})")


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
    schema = build_schema(load_settings())._schema
    for sha, document in documents.items():
        problems = validate(schema, parse(document))
        if problems:
            raise typer.BadParameter(f"{sha}: {problems[0].message}", param_hint="FILES")

    async def run(settings: Settings) -> int:
        engine = open_engine(settings)
        try:
            store = SqlDocumentStore(engine, max_automatic=settings.persisted_queries_max)
            return await store.trust(documents)
        finally:
            await engine.dispose()

    added = run_async(run)
    if manifest is not None:
        text = json.dumps(documents, ensure_ascii=False, indent=2, sort_keys=True)
        manifest.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"{len(documents)} trusted documents, {added} new")


# Credential and maintenance commands live in cli_credentials and cli_operations; they are
# registered here, in the order `dinegraph --help` lists them.
app.command("staff-token")(staff_token)
app.command("member-token")(member_token)
app.command("expire-points")(expire_points_command)
app.command("create-api-key")(create_api_key)
app.command("revoke-api-key")(revoke_api_key)
app.command("disable-staff")(disable_staff)
app.command("create-staff")(create_staff)
app.command("prune-positions")(prune_positions_command)
app.command("rotate-data-keys")(rotate_data_keys_command)
app.command("reconcile-payments")(reconcile_payments_command)
app.command("build-recommendations")(build_recommendations_command)
app.command()(simulate)


def main() -> None:  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
