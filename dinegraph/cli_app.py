"""The `dinegraph` typer app and what its commands share: the configuration, a database
engine, running a coroutine, and reading `--store` ids.

Starting fast: like every cli module, this imports at module level only typer, the standard
library and the domain's enums that options are typed with (see dinegraph/cli.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from dinegraph.domain.identity import StaffRole

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dinegraph.events.brokers import Broker
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


def load_settings() -> Settings:
    from dinegraph.settings import get_settings

    return get_settings()


def open_engine(settings: Settings) -> AsyncEngine:
    from dinegraph.db.engine import create_engine

    check_data_keys(settings)
    return create_engine(settings)


def check_data_keys(settings: Settings) -> None:
    """Exit with the fix when the personal data keys are missing or malformed (production)."""
    from dinegraph.settings import ConfigurationError

    try:
        _ = settings.personal_data_keys, settings.personal_index_key
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@asynccontextmanager
async def announcing(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, Broker | None]]:
    """An engine, and the broker the servers listen on, so that a command's change reaches
    them as a server's own would; None on the memory broker, which no other process hears."""
    engine = open_engine(settings)
    broker = None
    try:
        if not settings.broker_url.startswith("memory:"):
            from dinegraph.db.outbox import SqlOutbox
            from dinegraph.db.personal import event_sealer
            from dinegraph.events.brokers import create_broker

            broker = create_broker(settings.broker_url, SqlOutbox(engine), event_sealer(engine))
        yield engine, broker
    finally:
        if broker is not None:
            await broker.stop()
        await engine.dispose()


def run_async(make: Callable[[Settings], Awaitable[T]]) -> T:
    import asyncio

    settings = load_settings()

    async def main() -> T:
        return await make(settings)

    return asyncio.run(main())


def parse_store_ids(values: list[str] | None) -> list[int]:
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
