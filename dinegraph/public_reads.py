"""Which queries are public reads, and the stamps their answers depend on.

A query is a public read when every field it selects shows anyone but staff the same thing
(``read_cache.reads_class``) and depends only on data that moves a stamp when it changes
(``domain.stamps``) and on the clock, which its resolvers report (``Context.changes_at``).
That is the product centre, the stores, a store's menu with its prices and stock, and the
campaigns on sale. Anything else (the viewer, orders, a store's kitchen queue, groups,
coupons, introspection) makes the whole query private: it always executes.

The stamps follow from the document and its variables alone, so they are read before the
query executes: ``menu(storeId: S)`` depends on the catalogue, the stores, and S's prices
and stock; a ``Campaign`` on the campaigns; its ``quotaLeft(storeId: S)`` on S's quotas.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    get_named_type,
    parse,
    value_from_ast_untyped,
)

from dinegraph.domain.errors import DomainError
from dinegraph.domain.stamps import (
    CAMPAIGNS,
    CATALOG,
    STORES,
    price_stamp,
    quota_stamp,
    stock_stamp,
)
from dinegraph.resolvers.ids import decode_any_id

# The object types a public read may select, with the stamps reading one depends on.
_TYPE_STAMPS: dict[str, frozenset[str]] = {
    "Query": frozenset(),
    "Node": frozenset(),
    "Menu": frozenset(),
    "StoreConnection": frozenset(),
    "StoreEdge": frozenset(),
    "PageInfo": frozenset(),
    "Money": frozenset(),
    "GeoPoint": frozenset(),
    "OpeningHours": frozenset(),
    "StockLevel": frozenset(),  # only ever in a menu, whose store's stock stamp it has
    "Store": frozenset({STORES}),
    "Category": frozenset({CATALOG}),
    "Product": frozenset({CATALOG}),
    "Sku": frozenset({CATALOG}),
    "SpecOption": frozenset({CATALOG}),
    "ComboComponent": frozenset({CATALOG}),
    "Campaign": frozenset({CAMPAIGNS}),
    "CampaignItem": frozenset({CAMPAIGNS}),
}
# Fields of those types that are not public: the kitchen queue moves with every order.
_PRIVATE_FIELDS = frozenset({("Store", "pendingOrders")})
# What a global ID's object depends on, for node(id:) and nodes(ids:).
_NODE_STAMPS: dict[str, frozenset[str]] = {
    "Store": frozenset({STORES}),
    "Category": frozenset({CATALOG}),
    "Product": frozenset({CATALOG}),
    "Sku": frozenset({CATALOG}),
    "Campaign": frozenset({CAMPAIGNS}),
}

Arguments = Mapping[str, object]
_Stamper = Callable[[Arguments], frozenset[str] | None]


def _store(arguments: Arguments, name: str) -> int | None:
    value = arguments.get(name)
    if not isinstance(value, str):
        return None
    try:
        kind, store_id = decode_any_id(value, [name])
    except DomainError:
        return None  # the field refuses it: an answer with errors, never kept
    return store_id if kind == "Store" else None


def _menu(arguments: Arguments) -> frozenset[str] | None:
    store = _store(arguments, "storeId")
    if store is None:
        return None
    return frozenset({CATALOG, STORES, price_stamp(store), stock_stamp(store)})


def _node_stamps(global_ids: Sequence[object]) -> frozenset[str] | None:
    found: set[str] = set()
    for global_id in global_ids:
        if not isinstance(global_id, str):
            return None
        try:
            kind, _ = decode_any_id(global_id, ["id"])
        except DomainError:
            return None
        stamps = _NODE_STAMPS.get(kind)
        if stamps is None:
            return None  # orders, deliveries, groups...: never public
        found |= stamps
    return frozenset(found)


def _nodes(arguments: Arguments) -> frozenset[str] | None:
    ids = arguments.get("ids")
    return _node_stamps(ids) if isinstance(ids, list) else None


def _quota_left(arguments: Arguments) -> frozenset[str] | None:
    store = _store(arguments, "storeId")
    return None if store is None else frozenset({quota_stamp(store)})


def _always(*stamps: str) -> _Stamper:
    fixed = frozenset(stamps)
    return lambda _: fixed


# The root fields a public read may select, and the stamps each depends on by its arguments.
_ROOTS: dict[str, _Stamper] = {
    "menu": _menu,
    "stores": _always(STORES),
    "store": _always(STORES),
    "categories": _always(CATALOG),
    "campaigns": _always(CAMPAIGNS),
    "node": lambda arguments: _node_stamps([arguments.get("id")]),
    "nodes": _nodes,
}
# Fields below the root whose stamps depend on their arguments.
_BY_ARGUMENTS: dict[tuple[str, str], _Stamper] = {("Campaign", "quotaLeft"): _quota_left}


@dataclass(frozen=True, slots=True)
class _Dependency:
    """A field whose stamps its arguments name (a store's menu, a quota at a store)."""

    stamper: _Stamper
    arguments: tuple[tuple[str, ValueNode], ...]


@dataclass(frozen=True, slots=True)
class PublicRead:
    """A query operation every field of which is public."""

    stamps: frozenset[str]  # of the types it selects
    dependencies: tuple[_Dependency, ...]
    defaults: tuple[tuple[str, ValueNode], ...]  # the operation's variable defaults

    def stamps_for(self, variables: Mapping[str, object] | None) -> frozenset[str] | None:
        """Every stamp the answer depends on, for these variables; None when they name
        something no public read can show (a malformed ID, an order's ID)."""
        values = {name: value_from_ast_untyped(node) for name, node in self.defaults}
        values.update(variables or {})
        found = set(self.stamps)
        for dependency in self.dependencies:
            arguments = {
                name: value_from_ast_untyped(node, values) for name, node in dependency.arguments
            }
            stamps = dependency.stamper(arguments)
            if stamps is None:
                return None
            found |= stamps
        return frozenset(found)


class PublicReads:
    """Tells, once per document and operation, whether it is a public read."""

    def __init__(self, schema: GraphQLSchema, *, max_tokens: int, size: int = 1024) -> None:
        self._schema = schema
        self._max_tokens = max_tokens
        self._size = size
        self._known: OrderedDict[tuple[bytes, str | None], PublicRead | None] = OrderedDict()

    def of(self, document: str, operation_name: str | None) -> PublicRead | None:
        # By digest: a document may be long (comments), and a thousand are remembered.
        key = (hashlib.blake2b(document.encode(), digest_size=16).digest(), operation_name)
        if key in self._known:
            self._known.move_to_end(key)
            return self._known[key]
        try:
            parsed = parse(document, max_tokens=self._max_tokens, no_location=True)
        except GraphQLError:
            found = None  # execution answers it with the parse error
        else:
            found = _public_read(self._schema, parsed, operation_name)
        self._known[key] = found
        if len(self._known) > self._size:
            self._known.popitem(last=False)
        return found


def _public_read(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> PublicRead | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None  # mutations and subscriptions are never cached
    operation = operations[0]
    walk = _Walk(schema, document)
    if schema.query_type is None or not walk.selections(operation.selection_set, schema.query_type):
        return None
    defaults = tuple(
        (d.variable.name.value, d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    )
    return PublicRead(frozenset(walk.stamps), tuple(walk.dependencies), defaults)


class _Walk:
    """Every field of an operation, through its fragments, against the allowed types."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self._schema = schema
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._inside: set[str] = set()  # fragments being walked (a cycle never validates)
        self.stamps: set[str] = set()
        self.dependencies: list[_Dependency] = []

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLObjectType | GraphQLInterfaceType
    ) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                public = self._field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self._type(condition.name.value) if condition else parent
                public = target is not None and self.selections(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                public = self._spread(selection)
            else:
                public = False
            if not public:
                return False
        return True

    def _spread(self, spread: FragmentSpreadNode) -> bool:
        name = spread.name.value
        fragment = self._fragments.get(name)
        if fragment is None:
            return False
        if name in self._inside:
            return True
        target = self._type(fragment.type_condition.name.value)
        self._inside.add(name)
        try:
            return target is not None and self.selections(fragment.selection_set, target)
        finally:
            self._inside.discard(name)

    def _field(self, node: FieldNode, parent: GraphQLObjectType | GraphQLInterfaceType) -> bool:
        name = node.name.value
        if name == "__typename":
            return True
        where = (parent.name, name)
        at_root = parent is self._schema.query_type
        stamper = _ROOTS.get(name) if at_root else _BY_ARGUMENTS.get(where)
        if (at_root and stamper is None) or where in _PRIVATE_FIELDS or name not in parent.fields:
            return False
        if stamper is not None:
            arguments = tuple((a.name.value, a.value) for a in node.arguments or ())
            self.dependencies.append(_Dependency(stamper, arguments))
        named = get_named_type(parent.fields[name].type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return True  # a scalar or an enum
        target = self._type(named.name)
        return (
            target is not None
            and node.selection_set is not None
            and self.selections(node.selection_set, target)
        )

    def _type(self, name: str) -> GraphQLObjectType | GraphQLInterfaceType | None:
        """An allowed object type by name, its stamps noted; None for any other."""
        found = self._schema.get_type(name)
        stamps = _TYPE_STAMPS.get(name)
        if stamps is None or not isinstance(found, GraphQLObjectType | GraphQLInterfaceType):
            return None
        self.stamps |= stamps
        return found
