"""Enum values named by a lookup, not a scan.

Strawberry's enum type names a returned Python enum member by walking every value of the
GraphQL enum and comparing (``CustomGraphQLEnumType.coerce_output_value``): a refusal's
``ErrorCode``, one of about a hundred codes, cost that many comparisons of ``Enum.value``,
about 3 % of a refused flash-sale buy. Each enum type of the schema gets a dict from member
to name instead, made once; anything else still goes to Strawberry's own method.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.schema.schema_converter import CustomGraphQLEnumType


def name_enums_directly(schema: strawberry.Schema) -> int:
    """Give every enum type of the schema the lookup; how many got one."""
    changed = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, CustomGraphQLEnumType):
            continue
        by_value = {value.value: name for name, value in graphql_type.values.items()}
        members: list[Enum] = list(graphql_type.wrapped_cls)
        names = {m: by_value[m.value] for m in members if m.value in by_value}
        graphql_type.coerce_output_value = _named(names, graphql_type.coerce_output_value)  # type: ignore[method-assign]
        graphql_type.serialize = graphql_type.coerce_output_value  # type: ignore[method-assign]
        changed += 1
    return changed


def _named(names: dict[Any, str], strawberrys: Any) -> Any:
    def coerce_output_value(output_value: Any) -> Any:
        try:
            return names[output_value]
        except (KeyError, TypeError):  # not a member (a raw value), or unhashable
            return strawberrys(output_value)

    return coerce_output_value
