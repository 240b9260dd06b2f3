"""Relay ids without a resolver call each.

Every node's ``id`` is Strawberry's ``Node._id``: a resolver that goes through Strawberry's
whole resolver wrapping (its ``Info``, its arguments, its extension chain) to build a
``GlobalID`` and print it as ``base64("<Type>:<id>")``. A menu has 222 of them; printed
directly, a menu costs 4-6 % less CPU (BENCHMARKS.md). For a node type that keeps
Strawberry's own ``resolve_id`` and ``resolve_typename``, the answer is known from the
object alone: its GraphQL type's name and its ``NodeID`` attribute. Such fields get a plain
graphql-core resolver that prints the same string; any other root (or type) keeps
Strawberry's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLObjectType
from strawberry import relay
from strawberry.types.base import StrawberryObjectDefinition


def resolve_ids_directly(schema: strawberry.Schema) -> int:
    """Give every plain Relay node type's ``id`` the direct resolver; how many got one."""
    changed = 0
    for name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or "id" not in graphql_type.fields:
            continue
        definition = schema.get_type_by_name(name)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        origin = definition.origin
        if not (isinstance(origin, type) and issubclass(origin, relay.Node)) or not _plain(origin):
            continue
        field = graphql_type.fields["id"]
        if field.resolve is None or getattr(field.resolve, "direct", False):
            continue
        field.resolve = _direct(name, origin, origin.resolve_id_attr(), field.resolve)
        changed += 1
    return changed


def _plain(origin: type[relay.Node]) -> bool:
    """Whether the type identifies its objects as ``relay.Node`` does."""
    return all(
        getattr(origin, name).__func__ is getattr(relay.Node, name).__func__
        for name in ("resolve_id", "resolve_typename", "_id")
    )


def _direct(
    type_name: str,
    origin: type,
    attribute: str,
    strawberrys: Callable[..., Any],
) -> Callable[..., Any]:
    prefix = f"{type_name}:"

    def resolve(root: Any, info: Any, **kwargs: Any) -> Any:
        if type(root) is origin:  # exactly what relay.Node._id would print
            return base64.b64encode(f"{prefix}{getattr(root, attribute)}".encode()).decode()
        return strawberrys(root, info, **kwargs)

    resolve.direct = True  # type: ignore[attr-defined]
    return resolve
