"""Limits checked before an operation runs: characters, nesting and the estimated cost.

All of them walk the document or the variables without recursion, or with recursion bounded
by the nesting limit, so no input can exhaust the stack or take time beyond its size.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_list_type,
    is_non_null_type,
    parse,
    visit,
)
from graphql.language import Visitor
from graphql.type import GraphQLNamedType, GraphQLOutputType
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

# Selection sets and fragment spreads nested along one path, fragments followed. Far above
# any real document (the depth limit counts fields only), far below the interpreter's stack.
MAX_NESTING = 64
# Selections of an operation with every fragment spread replaced by the fragment.
MAX_EXPANDED_SELECTIONS = 20_000

INVALID_CHARACTERS = "INVALID_CHARACTERS"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"

# A UTF-16 surrogate left alone (a pair decodes to one character) or a NUL: no database
# stores them as text, and no answer can be encoded as UTF-8 with one inside.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_invalid_characters(value: object) -> bool:
    """Whether a decoded JSON value holds a string, or a key, no database can store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def invalid_characters_error() -> GraphQLError:
    return GraphQLError(
        "The request holds a character that text cannot hold: a NUL or an unpaired "
        "UTF-16 surrogate.",
        extensions={"code": INVALID_CHARACTERS},
    )


def _selection_sets(selection_set: SelectionSetNode) -> Iterator[SelectionSetNode]:
    for selection in selection_set.selections:
        nested = getattr(selection, "selection_set", None)
        if nested is not None:
            yield nested


@dataclass
class _Shape:
    depth: int = 0  # selection sets and spreads along the deepest path
    size: int = 0  # selections, spreads expanded


def _shape(selection_set: SelectionSetNode, fragments: Mapping[str, _Shape]) -> _Shape:
    """The shape of one definition, given the shapes of the fragments it spreads."""
    shape = _Shape()
    stack = [(selection_set, 1)]
    while stack:
        current, depth = stack.pop()
        shape.depth = max(shape.depth, depth)
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                spread = fragments.get(selection.name.value, _Shape())
                shape.depth = max(shape.depth, depth + 1 + spread.depth)
                shape.size += spread.size
                continue
            shape.size += 1
            nested = getattr(selection, "selection_set", None)
            if nested is not None:
                stack.append((nested, depth + 1))
    return shape


def _spreads(selection_set: SelectionSetNode) -> set[str]:
    names: set[str] = set()
    stack = [selection_set]
    while stack:
        current = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
        stack.extend(_selection_sets(current))
    return names


def document_too_complex(document: DocumentNode) -> GraphQLError | None:
    """Refuses a document nesting too deeply or too large once its fragments are expanded.

    Fragments are measured in the order they depend on each other, each once; a spread
    closing a cycle counts as nothing here (validation refuses cycles).
    """
    definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    needs = {name: _spreads(d.selection_set) for name, d in definitions.items()}
    shapes: dict[str, _Shape] = {}
    for root in definitions:
        if root in shapes:
            continue
        path = [(root, iter(needs[root]))]
        on_path = {root}
        while path:
            name, pending = path[-1]
            for spread in pending:
                if spread in definitions and spread not in shapes and spread not in on_path:
                    path.append((spread, iter(needs[spread])))
                    on_path.add(spread)
                    break
            else:
                path.pop()
                on_path.discard(name)
                shapes[name] = _shape(definitions[name].selection_set, shapes)
    measured = list(shapes.values()) + [
        _shape(d.selection_set, shapes)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    if any(shape.depth > MAX_NESTING for shape in measured):
        return GraphQLError(
            f"The document nests selections and fragments more than {MAX_NESTING} levels deep.",
            extensions={"code": QUERY_TOO_COMPLEX},
        )
    if any(shape.size > MAX_EXPANDED_SELECTIONS for shape in measured):
        return GraphQLError(
            f"The document selects more than {MAX_EXPANDED_SELECTIONS} fields once its "
            "fragments are expanded.",
            extensions={"code": QUERY_TOO_COMPLEX},
        )
    return None


class _StringLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.invalid = False

    def enter_string_value(self, node: StringValueNode, *_args: object) -> object:
        if _UNSTORABLE.search(node.value):
            self.invalid = True
            return self.BREAK
        return None


def literals_invalid(document: DocumentNode) -> bool:
    """Whether a string literal holds a NUL or a lone surrogate (written as escapes)."""
    visitor = _StringLiterals()
    visit(document, visitor)
    return visitor.invalid


@dataclass(frozen=True)
class CostRules:
    list_size: int  # items a plain list is taken to hold
    default_page: int  # a connection's page when `first` is absent
    max_page: int  # `first` beyond it is refused, so never costs more


class _Cost:
    """An operation's estimated cost: each field counts 1, each list item its selection.

    A field taking `first` pages what it returns: the lists directly inside its selection
    (a connection's edges or nodes) hold `first` items, or the default page. A plain list
    holds `CostRules.list_size`. Introspection fields cost nothing here.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        rules: CostRules,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.rules = rules
        self.defaults: dict[str, int] = {}
        self.memo: dict[tuple[str, int | None], int] = {}
        self.visiting: set[str] = set()
        self.read: set[str] = set()  # the variables the cost depends on

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, page: int | None
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                if inner is not None:
                    total += self.selection_set(selection.selection_set, inner, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection.name.value, page)
        return total

    def spread(self, name: str, page: int | None) -> int:
        key = (name, page)
        if key in self.memo:
            return self.memo[key]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return 0
        condition = self.schema.get_type(fragment.type_condition.name.value)
        if condition is None:
            return 0
        self.visiting.add(name)
        try:
            cost = self.selection_set(fragment.selection_set, condition, page)
        finally:
            self.visiting.discard(name)
        self.memo[key] = cost
        return cost

    def field(self, node: FieldNode, parent: GraphQLNamedType, page: int | None) -> int:
        name = node.name.value
        fields = getattr(parent, "fields", None)
        if name.startswith("__") or not fields or name not in fields:
            return 0
        if node.selection_set is None:
            return 1
        definition = fields[name]
        listed = _is_list(definition.type)
        size, inner_page = 1, None
        if "first" in definition.args:  # a page: of this list, or of the lists inside
            size, inner_page = (self.first(node), None) if listed else (1, self.first(node))
        elif listed:
            size = self.rules.list_size if page is None else page
        children = self.selection_set(
            node.selection_set, get_named_type(definition.type), inner_page
        )
        return size * (1 + children)

    def first(self, node: FieldNode) -> int:
        value: object = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                self.read.add(name)
                value = self.variables.get(name, self.defaults.get(name))
        if not isinstance(value, int) or isinstance(value, bool):
            return self.rules.default_page
        return max(0, min(value, self.rules.max_page))


def _is_list(type_: GraphQLOutputType) -> bool:
    while is_non_null_type(type_) or is_list_type(type_):
        if is_list_type(type_):
            return True
        type_ = type_.of_type
    return False


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    rules: CostRules,
) -> int | None:
    """The cost of the operation a request runs, or None when it names none of the document's.

    Call it on a valid document only: one without fragment cycles or unknown fields.
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        operation = operations[0] if len(operations) == 1 else None
    else:
        operation = next((o for o in operations if o.name and o.name.value == operation_name), None)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    cost = _Cost(schema, fragments, variables if isinstance(variables, Mapping) else {}, rules)
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            cost.defaults[definition.variable.name.value] = int(definition.default_value.value)
    total = cost.selection_set(operation.selection_set, root, None)
    _COSTS.keep(schema, document, operation_name, rules, tuple(sorted(cost.read)), variables, total)
    return total


def cached_operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    rules: CostRules,
) -> int | None:
    """``operation_cost``, worked out once per document, operation and values of the
    variables the cost reads (the pages' ``first``), not on every request."""
    found = _COSTS.get(schema, document, operation_name, rules, variables)
    if found is not _UNKNOWN:
        return cast(int | None, found)
    return operation_cost(schema, document, operation_name, variables, rules)


_UNKNOWN = object()


class _CostCache:
    """Costs by (schema, document, operation, rules) and the values of the variables the
    cost read. Documents by identity, as ``_FIT_DOCUMENTS``: the parser cache hands the same
    document back for the same text. Bounded; the oldest documents go first."""

    def __init__(self, size: int = 1024, values_per_operation: int = 64) -> None:
        self.size = size
        self.values_per_operation = values_per_operation
        self._entries: OrderedDict[
            tuple[int, int, str | None, int],
            tuple[
                GraphQLSchema,
                DocumentNode,
                CostRules,
                tuple[str, ...],
                dict[tuple[object, ...], int],
            ],
        ] = OrderedDict()

    @staticmethod
    def _values(names: tuple[str, ...], variables: Mapping[str, Any] | None) -> tuple[object, ...]:
        given = variables if isinstance(variables, Mapping) else {}
        # A value that is not a plain int costs the default page: one key for all of them.
        return tuple(
            v if isinstance(v := given.get(n), int) and not isinstance(v, bool) else None
            for n in names
        )

    def get(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        rules: CostRules,
        variables: Mapping[str, Any] | None,
    ) -> object:
        entry = self._entries.get((id(schema), id(document), operation_name, id(rules)))
        if entry is None or not _same(entry, schema, document, rules):
            return _UNKNOWN
        return entry[4].get(self._values(entry[3], variables), _UNKNOWN)

    def keep(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        rules: CostRules,
        names: tuple[str, ...],
        variables: Mapping[str, Any] | None,
        cost: int,
    ) -> None:
        key = (id(schema), id(document), operation_name, id(rules))
        entry = self._entries.get(key)
        if entry is None or not _same(entry, schema, document, rules):
            entry = self._entries[key] = (schema, document, rules, names, {})
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        costs = entry[4]
        if len(costs) < self.values_per_operation:
            costs[self._values(names, variables)] = cost


def _same(entry: tuple[object, ...] | None, *objects: object) -> bool:
    """Whether a kept entry was made for these very objects (keys hold their ids only)."""
    return entry is not None and all(a is b for a, b in zip(entry, objects, strict=False))


_COSTS = _CostCache()


class _Validations:
    """Validation errors by schema, document and rules, documents by identity (the parser
    cache hands the same document back for the same text). Strawberry's ``ValidationCache``
    keys an lru_cache on the document itself, and a document's hash walks the whole of it:
    about 2 % of a cheap request. Bounded; the oldest go first."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[
            tuple[int, int, tuple[object, ...]],
            tuple[GraphQLSchema, DocumentNode, list[GraphQLError]],
        ] = OrderedDict()

    def validate(
        self, schema: GraphQLSchema, document: DocumentNode, rules: Iterable[object]
    ) -> list[GraphQLError]:
        ruled = tuple(rules)
        key = (id(schema), id(document), ruled)
        entry = self._entries.get(key)
        if entry is not None and _same(entry, schema, document):
            return entry[2]
        errors: list[GraphQLError] = validate_document(schema, document, ruled)  # type: ignore[arg-type]
        self._entries[key] = (schema, document, errors)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return errors


_VALIDATIONS = _Validations()


# Documents found fit (neither too complex nor holding unstorable literals), by identity:
# the parser cache hands the same document back for the same text, and both checks walk the
# whole document, on every request. Bounded like the parser cache; refusals are not kept.
_FIT_DOCUMENTS: OrderedDict[int, DocumentNode] = OrderedDict()
_FIT_DOCUMENTS_MAX = 1024


def unknown_fragment(document: DocumentNode) -> GraphQLError | None:
    """The first spread of a fragment the document does not define, as validation says it.

    Checked before validation runs: Strawberry's depth rule follows spreads without looking
    first, and a missing fragment would fail it as a server error instead of a refusal.
    """
    defined = {d.name.value for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            continue
        stack = [definition.selection_set]
        while stack:
            current = stack.pop()
            for selection in current.selections:
                if (
                    isinstance(selection, FragmentSpreadNode)
                    and selection.name.value not in defined
                ):
                    return GraphQLError(f"Unknown fragment '{selection.name.value}'.", selection)
            stack.extend(_selection_sets(current))
    return None


def _document_refusal(document: DocumentNode) -> GraphQLError | None:
    """Why the document is refused before validation (too complex, unstorable text, a
    fragment it spreads but does not define)."""
    if _FIT_DOCUMENTS.get(id(document)) is document:
        return None
    refused = document_too_complex(document) or unknown_fragment(document)
    if refused is None and literals_invalid(document):
        refused = invalid_characters_error()
    if refused is None:
        _FIT_DOCUMENTS[id(document)] = document
        if len(_FIT_DOCUMENTS) > _FIT_DOCUMENTS_MAX:
            _FIT_DOCUMENTS.popitem(last=False)
    return refused


# Parsed documents by text and parser options, shared by every request and schema: the same
# text gets the same document back, which the identity-keyed caches above rely on.
_parse = lru_cache(maxsize=1024)(parse)


class RequestLimits(SchemaExtension):
    """A request's limits, one extension: the parser's token limit and cache, the limit
    rules added to validation, validation (cached) behind the checks that keep it cheap,
    then the cost limit.

    One extension rather than Strawberry's MaxTokensLimiter, ParserCache, AddValidationRules
    and ValidationCache: Strawberry sets up every extension's hooks for each phase of each
    request, and four extensions cost about 5 % of a cheap request more than one.

    Graphql-core's and Strawberry's rules recurse through fragments; a document nesting too
    deeply is refused before any of them runs. The cost depends on the variables (`first`):
    it is worked out after the document is known to be valid, once for each document,
    operation and values of the variables it reads (``cached_operation_cost``).
    """

    def __init__(
        self,
        *,
        rules: CostRules,
        max_cost: int,
        report_cost: bool,
        max_tokens: int,
        limit_rules: tuple[type[ASTValidationRule], ...],
    ) -> None:
        super().__init__()
        self.rules = rules
        self.max_cost = max_cost
        self.report_cost = report_cost
        self.max_tokens = max_tokens
        self.limit_rules = limit_rules
        self.cost: int | None = None
        self._subscription = False

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = (*context.validation_rules, *self.limit_rules)
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = self._errors()
        yield

    def _errors(self) -> list[GraphQLError]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        refused = _document_refusal(document)
        if refused is not None:
            return [refused]
        try:
            errors = _VALIDATIONS.validate(
                context.schema._schema, document, context.validation_rules
            )
        except RecursionError:
            return [
                GraphQLError(
                    "The document is too complex to validate.",
                    extensions={"code": QUERY_TOO_COMPLEX},
                )
            ]
        if errors:
            return errors
        self._subscription = context.operation_type is OperationType.SUBSCRIPTION
        self.cost = cached_operation_cost(
            context.schema._schema, document, context.operation_name, context.variables, self.rules
        )
        if self.cost is None or self.cost <= self.max_cost:
            return []
        return [
            GraphQLError(
                f"The operation's estimated cost, {self.cost}, is above the maximum of "
                f"{self.max_cost}: ask for smaller pages or fewer fields.",
                extensions={
                    "code": QUERY_TOO_COSTLY,
                    "cost": {"requested": self.cost, "maximum": self.max_cost},
                },
            )
        ]

    def get_results(self) -> dict[str, Any]:
        # A subscription's events carry their data alone.
        if not self.report_cost or self.cost is None or self._subscription:
            return {}
        return {"cost": {"requested": self.cost, "maximum": self.max_cost}}
