"""Input objects built by their plans equal the ones Strawberry's own walk builds."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    coerce_input_value,
)
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from dinegraph.schema import build_schema
from dinegraph.schema.inputs import InputPlan
from dinegraph.settings import Settings

SCHEMA = build_schema(Settings())
SCALARS: dict[str, Any] = {
    "String": "文字 text",
    "ID": "U2t1OjQy",
    "Int": 7,
    "Float": 1.5,
    "Boolean": True,
    "Date": "2026-12-03",
    "DateTime": "2026-12-03T12:00:00+08:00",
}
INPUTS = sorted(
    name
    for name, t in SCHEMA._schema.type_map.items()
    if isinstance(t, GraphQLInputObjectType) and not name.startswith("__")
)


def external(type_: GraphQLInputType, *, every_field: bool, depth: int = 0) -> Any:
    """A JSON value of ``type_``: every field given, or only the required ones."""
    if isinstance(type_, GraphQLNonNull):
        return external(type_.of_type, every_field=every_field, depth=depth)
    if isinstance(type_, GraphQLList):
        return [external(type_.of_type, every_field=every_field, depth=depth) for _ in range(2)]
    if isinstance(type_, GraphQLScalarType):
        return SCALARS[type_.name]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    assert isinstance(type_, GraphQLInputObjectType)
    value: dict[str, Any] = {}
    for n, (name, field) in enumerate(type_.fields.items()):
        required = isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        if required or (every_field and depth < 3):
            # Every third nullable field an explicit null, which the input must keep.
            null = not isinstance(field.type, GraphQLNonNull) and n % 3 == 2
            value[name] = (
                None if null else external(field.type, every_field=every_field, depth=depth + 1)
            )
    return value


def strawberrys(definition: StrawberryObjectDefinition, value: Any) -> Any:
    """What Strawberry's own walk builds, with every plan set aside meanwhile."""
    planned = {
        d: d.from_input
        for d in (SCHEMA.get_type_by_name(n) for n in INPUTS)
        if isinstance(d, StrawberryObjectDefinition)
    }
    try:
        for d in planned:
            d.from_input = None
        return convert_argument(
            value, definition.origin, SCHEMA.schema_converter.scalar_registry, SCHEMA.config
        )
    finally:
        for d, plan in planned.items():
            d.from_input = plan


@pytest.mark.parametrize("every_field", [True, False], ids=["every field", "required only"])
@pytest.mark.parametrize("name", INPUTS)
def test_a_planned_input_equals_strawberrys(name: str, every_field: bool) -> None:
    definition = SCHEMA.get_type_by_name(name)
    assert isinstance(definition, StrawberryObjectDefinition)
    plan = definition.from_input
    assert isinstance(plan, InputPlan), f"{name} has no plan"
    graphql_type = SCHEMA._schema.type_map[name]
    assert isinstance(graphql_type, GraphQLInputObjectType)
    value = coerce_input_value(external(graphql_type, every_field=every_field), graphql_type)
    assert isinstance(value, dict)
    context = InputContext(
        info=None,
        config=SCHEMA.config,
        scalar_registry=SCHEMA.schema_converter.scalar_registry,
        path=(),
    )
    built = plan(definition.origin, value, context)
    assert type(built) is definition.origin
    assert built == strawberrys(definition, value)
