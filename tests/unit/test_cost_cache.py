"""An operation's validation and cost are worked out once per document (and page sizes)."""

from __future__ import annotations

from graphql import parse, specified_rules

from dinegraph.schema import build_schema
from dinegraph.schema.limits import (
    _COSTS,
    _UNKNOWN,
    CostRules,
    _Validations,
    cached_operation_cost,
    operation_cost,
)
from dinegraph.settings import Settings

SCHEMA = build_schema(Settings())._schema
RULES = CostRules(list_size=10, default_page=20, max_page=50)
TEXT = """
query Search($first: Int, $q: String!) {
  searchProducts(query: $q, storeId: "U3RvcmU6MQ==", channel: PICKUP, first: $first) {
    edges { node { id name } }
  }
}
"""


def test_the_cost_is_kept_per_page_size_and_equals_a_fresh_count() -> None:
    document = parse(TEXT)
    for first in (5, 50, None, "7", True, 5):
        variables = {"first": first, "q": f"query {first}"}  # other variables do not count
        cached = cached_operation_cost(SCHEMA, document, "Search", variables, RULES)
        assert cached == operation_cost(SCHEMA, parse(TEXT), "Search", variables, RULES)
    small = _COSTS.get(SCHEMA, document, "Search", RULES, {"first": 5, "q": "anything"})
    large = _COSTS.get(SCHEMA, document, "Search", RULES, {"first": 50})
    default = _COSTS.get(SCHEMA, document, "Search", RULES, {})
    assert small is not _UNKNOWN and large is not _UNKNOWN and default is not _UNKNOWN
    assert isinstance(small, int) and isinstance(large, int) and small < large
    # Not a plain int (a string, a boolean, absent): the default page, one entry for all.
    assert _COSTS.get(SCHEMA, document, "Search", RULES, {"first": True}) == default


def test_another_document_of_the_same_text_or_other_rules_are_not_served_the_kept_cost() -> None:
    document = parse(TEXT)
    cached_operation_cost(SCHEMA, document, "Search", {"first": 9}, RULES)
    assert _COSTS.get(SCHEMA, parse(TEXT), "Search", RULES, {"first": 9}) is _UNKNOWN
    other_rules = CostRules(list_size=10, default_page=20, max_page=5)
    assert _COSTS.get(SCHEMA, document, "Search", other_rules, {"first": 9}) is _UNKNOWN
    assert _COSTS.get(SCHEMA, document, None, RULES, {"first": 9}) is _UNKNOWN
    assert cached_operation_cost(SCHEMA, document, "Search", {"first": 9}, other_rules) == (
        operation_cost(SCHEMA, document, "Search", {"first": 9}, other_rules)
    )


def test_validation_is_kept_per_document_object_and_rules() -> None:
    validations = _Validations(size=2)
    rules = tuple(specified_rules)
    document = parse(TEXT)
    first = validations.validate(SCHEMA, document, rules)
    assert first == [] and validations.validate(SCHEMA, document, rules) is first
    wrong = parse("query { noSuchField }")
    errors = validations.validate(SCHEMA, wrong, rules)
    assert [e.message for e in errors] == ["Cannot query field 'noSuchField' on type 'Query'."]
    assert validations.validate(SCHEMA, wrong, rules) is errors  # refusals are kept as well
    # Another document of the same text, or other rules: validated afresh.
    assert validations.validate(SCHEMA, parse(TEXT), rules) is not first
    assert validations.validate(SCHEMA, document, rules[:-1]) is not first
    # Bounded: the oldest went.
    assert validations.validate(SCHEMA, wrong, rules) is not errors
