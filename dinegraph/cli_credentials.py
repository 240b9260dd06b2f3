"""Credential commands of `dinegraph`: staff-token, member-token, create-api-key,
revoke-api-key, disable-staff, create-staff.

Registered on the app by dinegraph/cli.py; like every cli module, this imports at module
level only typer, the standard library and the option enums (see dinegraph/cli.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dinegraph.cli_app import (
    StoreOption,
    announcing,
    load_settings,
    open_engine,
    parse_store_ids,
    run_async,
    staff_username,
)
from dinegraph.domain.identity import StaffRole
from dinegraph.domain.providers import Provider

if TYPE_CHECKING:
    from dinegraph.domain.audit import AuditEntry
    from dinegraph.settings import Settings


def _audit(command: str, arguments: dict[str, object]) -> AuditEntry:
    """The audit log's entry of a credential command: actor CLI, this machine's name."""
    import socket
    from datetime import UTC, datetime

    from dinegraph.domain.audit import cli_entry

    return cli_entry(command, arguments, at=datetime.now(UTC), host=socket.gethostname())


def staff_token(
    role: Annotated[StaffRole, typer.Option(help="The staff role.")],
    store: StoreOption = None,
    username: Annotated[
        str | None,
        typer.Option(help="Account name (default: from role and stores, e.g. hq-admin)."),
    ] = None,
) -> None:
    """Create or update a staff account and print a bearer token on the last line."""
    store_ids = parse_store_ids(store)
    if role is StaffRole.STORE_MANAGER and not store_ids:
        raise typer.BadParameter("a STORE_MANAGER needs at least one --store", param_hint="--store")
    name = username or staff_username(role, store_ids)
    from dinegraph.db import identity as identity_db
    from dinegraph.security import issue_staff_token

    async def run(settings: Settings) -> str:
        async with announcing(settings) as (engine, broker):
            try:
                viewer = await identity_db.ensure_staff(
                    engine,
                    username=name,
                    role=role,
                    store_ids=store_ids,
                    events=broker,
                    audit=_audit(
                        "staff-token",
                        {"username": name, "role": role.value, "stores": store_ids},
                    ),
                )
            except identity_db.UnknownStoreError as exc:
                raise typer.BadParameter(str(exc), param_hint="--store") from exc
        return issue_staff_token(settings, viewer)

    token = run_async(run)
    typer.echo(f"staff {name} ({role.value}); token:")
    typer.echo(token)


def member_token(
    phone: Annotated[str, typer.Option(help="The member's mobile number.")],
) -> None:
    """Development only: create the member if needed and print an access token last."""
    from dinegraph.domain.errors import DomainError
    from dinegraph.domain.members import check_phone, default_nickname

    settings = load_settings()
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
        engine = open_engine(settings)
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

    member_id = run_async(run)
    typer.echo(f"member {member_id} ({number}); access token:")
    typer.echo(issue_member_token(settings, member_id))


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
    store_ids = parse_store_ids(store) or None
    from dinegraph.db import identity as identity_db
    from dinegraph.security import new_api_key

    key = new_api_key()

    async def run(settings: Settings) -> int:
        engine = open_engine(settings)
        try:
            return await identity_db.insert_api_key(
                engine,
                name=name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                scopes=scope_list,
                store_ids=store_ids,
                partner=partner.value if partner else None,
                audit=_audit(
                    "create-api-key",
                    {
                        "name": name,
                        "scopes": scope_list,
                        "stores": store_ids,
                        "partner": partner.value if partner else None,
                    },
                ),
            )
        except identity_db.UnknownStoreError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from exc
        finally:
            await engine.dispose()

    key_id = run_async(run)
    where = "all stores" if store_ids is None else f"stores {store_ids}"
    carrier = f", for {partner.value} deliveries" if partner else ""
    typer.echo(f"API key {key_id} for {name}: scopes {','.join(scope_list)}, {where}{carrier}")
    typer.echo(key.key)


def revoke_api_key(
    prefix: Annotated[str, typer.Argument(help="The key's prefix: the part after dg_.")],
) -> None:
    """Revoke a partner API key: it stops working at once in every server that shares the
    broker (within DINEGRAPH_CREDENTIAL_CACHE_SECONDS in the others)."""
    from datetime import UTC, datetime

    from dinegraph.db import identity as identity_db

    async def run(settings: Settings) -> int | None:
        async with announcing(settings) as (engine, broker):
            return await identity_db.revoke_api_key(
                engine,
                prefix,
                at=datetime.now(UTC),
                events=broker,
                audit=_audit("revoke-api-key", {"prefix": prefix}),
            )

    key_id = run_async(run)
    if key_id is None:
        typer.echo(f"error: no unrevoked API key with prefix {prefix}", err=True)
        raise typer.Exit(1)
    typer.echo(f"API key {key_id} revoked")


def disable_staff(
    username: Annotated[str, typer.Argument(help="The staff account, e.g. store-manager-1.")],
) -> None:
    """Disable a staff account: its tokens stop working as a revoked API key does;
    `staff-token` enables it again."""
    from dinegraph.db import identity as identity_db

    async def run(settings: Settings) -> int | None:
        async with announcing(settings) as (engine, broker):
            return await identity_db.disable_staff(
                engine,
                username,
                events=broker,
                audit=_audit("disable-staff", {"username": username}),
            )

    staff_id = run_async(run)
    if staff_id is None:
        typer.echo(f"error: no active staff account {username}", err=True)
        raise typer.Exit(1)
    typer.echo(f"staff {username} ({staff_id}) disabled")


def create_staff(
    username: Annotated[str, typer.Option(help="The account's sign-in name, e.g. hq-li.")],
    role: Annotated[StaffRole, typer.Option(help="The staff role.")],
    store: StoreOption = None,
    display_name: Annotated[
        str | None, typer.Option(help="The name the console shows (default: the username).")
    ] = None,
) -> None:
    """Create a staff account that signs in with a password (staffLogin): how the first
    head-office account starts. The password is asked for twice, or read from
    DINEGRAPH_NEW_STAFF_PASSWORD for automation."""
    import os

    from dinegraph.domain.errors import DomainError
    from dinegraph.domain.staff import check_new_password, check_role_stores, check_username

    store_ids = parse_store_ids(store)
    try:
        name = check_username(username, ["username"])
        check_role_stores(role, store_ids, ["storeIds"])
    except DomainError as exc:
        hint = "--store" if exc.field == ["storeIds"] else "--username"
        message = (
            "a STORE_MANAGER needs at least one --store"
            if hint == "--store"
            else "3 to 60 of letters, digits, '.', '_' and '-'"
        )
        raise typer.BadParameter(message, param_hint=hint) from None
    password = os.environ.get("DINEGRAPH_NEW_STAFF_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        check_new_password(password, name, ["password"])
    except DomainError:
        typer.echo(
            "error: a password has at least 10 characters and differs from the username",
            err=True,
        )
        raise typer.Exit(2) from None
    from dinegraph.db import identity as identity_db
    from dinegraph.db import staff_accounts as staff_db
    from dinegraph.domain.audit import AuditDraft
    from dinegraph.passwords import Argon2Passwords

    password_hash = Argon2Passwords().hash_now(password)

    async def run(settings: Settings) -> int:
        engine = open_engine(settings)
        try:
            return await staff_db.create_account(
                engine,
                username=name,
                display_name=display_name,
                role=role,
                store_ids=store_ids,
                password_hash=password_hash,
                audit=AuditDraft(
                    _audit(
                        "create-staff",
                        {"username": name, "role": role.value, "stores": store_ids},
                    )
                ),
            )
        except identity_db.UnknownStoreError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from exc
        finally:
            await engine.dispose()

    try:
        staff_id = run_async(run)
    except staff_db.UsernameTaken:
        typer.echo(f"error: the username {name} is taken", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"staff {name} ({role.value}, id {staff_id}) created: sign in with staffLogin")
