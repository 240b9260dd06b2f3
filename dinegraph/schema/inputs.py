"""Input objects built from a plan made once, not worked out again for every request.

Strawberry turns each input value into its input class field by field, and for every field of
every request it converts the field's name to camel case and resolves the field's type
afresh (``convert_argument``). For ``buyFlashSale`` that walk was about a tenth of the
server's CPU (BENCHMARKS.md). Strawberry lets an input type build its own value
(``StrawberryObjectDefinition.from_input``); each plain input type here gets a plan made
when the schema is built: per field its GraphQL name, its Python name and how its value is
converted (kept as it is for scalars and enums, element by element for lists, by the nested
type's own plan for nested inputs), giving the same object Strawberry's walk gives. A field
of any other kind is converted by Strawberry as before (``InputContext.convert``), and a
type with a ``Maybe`` field keeps Strawberry's walk whole (its null check in validation
applies only to types without ``from_input``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

Convert = Callable[[Any, InputContext], Any]


def _keep(value: Any, ctx: InputContext) -> Any:
    return value


class InputPlan:
    """``from_input`` of one input type: its fields' names and converters, made once."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self.definition = definition
        self.fields: list[tuple[str, str, Convert]] = []  # (GraphQL name, Python name, how)
        self.defaults: dict[str, None] = {}

    def __call__(self, cls: type, value: Mapping[str, Any], ctx: InputContext) -> Any:
        kwargs: dict[str, Any] = dict(self.defaults)
        for graphql_name, python_name, convert in self.fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], ctx)
        return cls(**kwargs)

    def build(self, value: Any, ctx: InputContext) -> Any:
        if value is None or value is UNSET:
            return value
        return self(self.definition.origin, value, ctx)


class _Planner:
    def __init__(self, schema: strawberry.Schema) -> None:
        self.registry = schema.schema_converter.scalar_registry
        self.config = schema.config
        self.plans: dict[StrawberryObjectDefinition, InputPlan] = {}

    def plannable(self, definition: StrawberryObjectDefinition) -> bool:
        return (
            definition.is_input
            and definition.from_input is None
            and not definition.is_graphql_generic
            and not any(
                isinstance(f.resolve_type(type_definition=definition), StrawberryMaybe)
                for f in definition.fields
            )
        )

    def plan(self, definition: StrawberryObjectDefinition) -> InputPlan:
        found = self.plans.get(definition)
        if found is not None:
            return found
        plan = self.plans[definition] = InputPlan(definition)  # before the fields: recursion
        plan.defaults = {
            f.python_name: None
            for f in definition.fields
            if f.default_value is MISSING and f.default_factory is MISSING
        }
        for f in definition.fields:
            graphql_name = self.config.name_converter.from_field(f)
            field_type = f.resolve_type(type_definition=definition)
            convert = self.converter(field_type) or _by_strawberry(field_type, graphql_name)
            plan.fields.append((graphql_name, f.python_name, convert))
        return plan

    def converter(self, type_: StrawberryType | type) -> Convert | None:
        """How a value of ``type_`` converts, or None where Strawberry must do it."""
        if isinstance(type_, LazyType):
            return self.converter(type_.resolve_type())
        if isinstance(type_, StrawberryMaybe):
            return None
        if isinstance(type_, StrawberryOptional):
            return self.converter(type_.of_type)  # each converter passes None and UNSET
        if isinstance(type_, StrawberryList):
            item = self.converter(type_.of_type)
            if item is None:
                return None
            if item is _keep:
                # A copy: graphql-core gives every request that omits the value the same
                # default list, so changes to it would leak into the next requests.
                return lambda value, ctx: value if value is None or value is UNSET else list(value)
            return lambda value, ctx: (
                value if value is None or value is UNSET else [item(x, ctx) for x in value]
            )
        if type_ is strawberry.relay.GlobalID:
            return None  # parsed by Strawberry, with its own refusal
        if (
            is_scalar(type_, self.registry)
            or isinstance(type_, StrawberryEnumDefinition)
            or has_enum_definition(type_)
        ):
            return _keep
        definition = getattr(type_, "__strawberry_definition__", None)
        if isinstance(definition, StrawberryObjectDefinition) and self.plannable(definition):
            return self.plan(definition).build
        return None


def _by_strawberry(type_: StrawberryType | type, graphql_name: str) -> Convert:
    def convert(value: Any, ctx: InputContext) -> Any:
        return ctx.convert(value, type_, graphql_name)

    return convert


def plan_inputs(schema: strawberry.Schema) -> int:
    """Give every plain input type of ``schema`` its plan; how many got one."""
    planner = _Planner(schema)
    for name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLInputObjectType):
            continue
        definition = schema.get_type_by_name(name)
        if isinstance(definition, StrawberryObjectDefinition) and planner.plannable(definition):
            planner.plan(definition)
    for definition, plan in planner.plans.items():
        definition.from_input = plan
    return len(planner.plans)
