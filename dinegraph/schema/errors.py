"""Turning domain failures into GraphQL answers: payload errors, query errors, masking."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.types.nodes import convert_arguments

from dinegraph.context import FeedSlot
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.staff import require_password_changed
from dinegraph.domain.text import is_storable
from dinegraph.i18n import message_for
from dinegraph.resolvers import audit
from dinegraph.schema.common import UserError

if TYPE_CHECKING:
    from dinegraph.context import Context

T = TypeVar("T")
log = logging.getLogger("dinegraph.errors")


def _unstorable_text(value: object, path: list[str]) -> list[str] | None:
    """The path of the first string in ``value`` no database can store, if any."""
    if isinstance(value, str):
        return None if is_storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable_text(item, [*path, str(key)])
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = _unstorable_text(item, [*path, str(n)])
            if found is not None:
                return found
    return None


def refuse_unstorable_text(info: strawberry.Info[Context, None]) -> None:
    """Every string argument of the field, in literals and variables alike, at any depth, must
    be text the database can store (``domain.text``): else ``INVALID_CHARACTERS`` naming it.

    Paths are those of the payload's ``field``: inside the one ``input``, or from the
    argument's name (``["order", "note"]``, ``["shareCode"]``).
    """
    for name, value in _arguments(info).items():
        found = _unstorable_text(value, [] if name == "input" else [name])
        if found is not None:
            raise DomainError(ErrorCode.INVALID_CHARACTERS, field=found)


async def attempt(
    info: strawberry.Info[Context, None], action: Callable[[], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run a mutation's domain call; an expected failure becomes ``errors``.

    A staff or partner write is audited: its unit of work records the entry at commit, and
    a refusal for want of rights is recorded on its own (``resolvers.audit``)."""
    ctx = info.context
    ctx.audit = draft = audit.begin(ctx, info.field_name, lambda: _arguments(info))
    try:
        require_password_changed(ctx.viewer, info.field_name)
        refuse_unstorable_text(info)
        return await action(), []
    except DomainError as error:
        if draft is not None:
            await audit.record_refusal(ctx, draft, error)
        return None, [UserError.of(error, ctx.locale)]
    finally:
        ctx.audit = None


def _arguments(info: strawberry.Info[Context, None]) -> dict[str, object]:
    """The field's arguments as the client sent them, variables filled in.

    Only the field's own node is read: ``info.selected_fields`` would convert the whole
    selection below it, every field and directive, on every mutation."""
    raw = info._raw_info  # Strawberry's Info has no public field nodes
    return convert_arguments(raw, raw.field_nodes[0].arguments)


F = TypeVar("F")
R = TypeVar("R")


async def live(
    info: strawberry.Info[Context, None],
    open_feed: Callable[[], AsyncIterator[F]],
    wrap: Callable[[F], R],
    *,
    may_start_empty: bool = False,
    slot: Callable[[F], FeedSlot] = lambda _item: FeedSlot(),
) -> AsyncGenerator[R, None]:
    """A subscription's feed: refusals before its first value (a bad id, no access) become
    GraphQL errors with codes; then its current state, then every change, each wrapped.

    Each value's ``slot`` (default: the feed's one object, always current) is left on the
    context while the value is executed, for feeds shared by many subscribers."""
    with raise_for_query(info):
        require_password_changed(info.context.viewer, info.field_name)
        feed = open_feed()
        try:
            first = await anext(feed)
        except StopAsyncIteration:
            if not may_start_empty:
                raise
            return
    # The first value is sent whatever it is: None is a state too (no courier yet).
    info.context.feed_slot = slot(first)
    yield wrap(first)
    async for item in feed:
        info.context.feed_slot = slot(item)
        yield wrap(item)


class QueryError(GraphQLError):
    """An expected failure of a query field, with its stable code in ``extensions``."""


@contextmanager
def raise_for_query(info: strawberry.Info[Context, None]) -> Iterator[None]:
    """In a query field, an expected failure becomes a GraphQL error with a code."""
    try:
        refuse_unstorable_text(info)
        yield
    except DomainError as error:
        extensions: dict[str, object] = {"code": error.code.value}
        if error.field:
            extensions["field"] = error.field
        raise QueryError(message_for(error, info.context.locale), extensions=extensions) from error
