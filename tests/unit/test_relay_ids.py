"""Relay ids printed without Strawberry's resolver call: the same strings, every node type."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from graphql import GraphQLObjectType
from strawberry import relay

from dinegraph.schema import build_schema
from dinegraph.schema.catalog import SkuNode
from dinegraph.schema.relay_ids import _direct, resolve_ids_directly
from dinegraph.settings import Settings


def test_every_plain_node_type_prints_what_strawberry_prints() -> None:
    schema = build_schema(Settings())
    assert resolve_ids_directly(schema) == 0  # already done by build_schema, and once
    direct = []
    for name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or "id" not in graphql_type.fields:
            continue
        resolve = graphql_type.fields["id"].resolve
        if getattr(resolve, "direct", False):
            direct.append(name)
    assert {"Store", "Category", "Product", "Sku", "Order"} <= set(direct), direct

    for name in direct:
        definition: Any = schema.get_type_by_name(name)
        origin = definition.origin
        attribute = origin.resolve_id_attr()
        root = origin.__new__(origin)  # only the id is read
        object.__setattr__(root, attribute, 4242)
        graphql_type = schema._schema.type_map[name]
        assert isinstance(graphql_type, GraphQLObjectType)
        resolve = graphql_type.fields["id"].resolve
        assert resolve is not None
        assert resolve(root, None) == str(relay.GlobalID(name, "4242")), name


def test_a_root_of_another_type_still_goes_to_strawberry() -> None:
    seen: list[Any] = []

    def strawberrys(root: Any, info: Any) -> str:
        seen.append(root)
        return "as Strawberry prints it"

    resolve = _direct("Sku", SkuNode, "id", strawberrys)
    lookalike = SimpleNamespace(id=7)  # e.g. a subclass's or another library's object
    assert resolve(lookalike, None) == "as Strawberry prints it" and seen == [lookalike]
    sku = SkuNode.__new__(SkuNode)
    object.__setattr__(sku, "id", 7)
    assert resolve(sku, None) == str(relay.GlobalID("Sku", "7")) and seen == [lookalike]
