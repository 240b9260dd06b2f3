"""Enum values are named by a lookup that answers as Strawberry's scan does."""

from __future__ import annotations

from enum import Enum

import pytest
from graphql import GraphQLError
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from dinegraph.domain.errors import ErrorCode
from dinegraph.schema import build_schema
from dinegraph.schema.enums import name_enums_directly
from dinegraph.settings import Settings


def test_every_member_of_every_enum_is_named_as_strawberry_names_it() -> None:
    schema = build_schema(Settings())
    enums = [t for t in schema._schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]
    assert len(enums) > 10
    scan = CustomGraphQLEnumType.coerce_output_value  # Strawberry's own, on the same type
    checked = 0
    for enum_type in enums:
        assert "coerce_output_value" in vars(enum_type)  # the lookup is in place
        members: list[Enum] = list(enum_type.wrapped_cls)
        for member in members:
            assert enum_type.serialize(member) == scan(enum_type, member)
            assert enum_type.coerce_output_value(member) == scan(enum_type, member)
            checked += 1
    assert checked > 100


def test_what_is_no_member_still_goes_to_strawberry() -> None:
    schema = build_schema(Settings())
    error_code = schema._schema.type_map["ErrorCode"]
    assert isinstance(error_code, CustomGraphQLEnumType)
    assert error_code.coerce_output_value(ErrorCode.SOLD_OUT) == "SOLD_OUT"
    assert error_code.coerce_output_value("SOLD_OUT") == "SOLD_OUT"  # a raw value

    class Other(Enum):
        SOLD_OUT = "SOLD_OUT"

    with pytest.raises((GraphQLError, ValueError, TypeError)):
        error_code.coerce_output_value(Other.SOLD_OUT)
    with pytest.raises((GraphQLError, ValueError, TypeError)):
        error_code.coerce_output_value(["unhashable"])
    assert name_enums_directly(schema) > 10  # made again: still one lookup each
    assert error_code.coerce_output_value(ErrorCode.SOLD_OUT) == "SOLD_OUT"
