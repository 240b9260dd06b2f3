"""The mini-program's documents (clients/miniprogram/*.graphql) hold against schema.graphql:
they are valid, their operations are named uniquely, and they cover every page."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    OperationType,
    Source,
    build_schema,
    parse,
    validate,
    visit,
)
from graphql.language import Visitor

ROOT = Path(__file__).resolve().parent.parent.parent
DOCUMENTS = ROOT / "clients" / "miniprogram"


@cache
def schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))


def document_files() -> list[Path]:
    return sorted(DOCUMENTS.glob("*.graphql"))


def parsed() -> dict[Path, DocumentNode]:
    return {
        path: parse(Source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))))
        for path in document_files()
    }


def _definitions() -> Iterator[tuple[Path, OperationDefinitionNode | FragmentDefinitionNode]]:
    for path, document in parsed().items():
        for definition in document.definitions:
            assert isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode)
            yield path, definition


def _spreads(node: Node) -> set[str]:
    found: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: object) -> None:
            found.add(spread.name.value)

    visit(node, Spreads())
    return found


def _text(node: Node) -> str:
    assert node.loc is not None
    return node.loc.source.body[node.loc.start : node.loc.end]


def operation_document(name: str) -> str:
    """The named operation as the mini-program sends it: its text and the fragments it uses."""
    operations = {
        d.name.value: d
        for _, d in _definitions()
        if isinstance(d, OperationDefinitionNode) and d.name
    }
    fragments = {
        d.name.value: d for _, d in _definitions() if isinstance(d, FragmentDefinitionNode)
    }
    operation = operations[name]
    needed: list[str] = []
    pending = sorted(_spreads(operation))
    while pending:
        fragment = pending.pop()
        if fragment not in needed:
            needed.append(fragment)
            pending += sorted(_spreads(fragments[fragment]))
    return "\n\n".join([_text(operation), *(_text(fragments[f]) for f in sorted(needed))])


def test_every_document_is_valid_against_the_schema() -> None:
    files = document_files()
    assert files, f"no documents in {DOCUMENTS}"
    # Fragments are shared between files, so the files are validated as one document.
    whole = parse("\n".join(path.read_text(encoding="utf-8") for path in files))
    errors = validate(schema(), whole)
    assert errors == [], "\n".join(str(e) for e in errors)


def test_operations_are_named_and_unique_across_files() -> None:
    seen: dict[tuple[str, str], Path] = {}
    for path, definition in _definitions():
        assert definition.name is not None, f"an anonymous operation in {path.name}"
        kind = "fragment" if isinstance(definition, FragmentDefinitionNode) else "operation"
        key = (kind, definition.name.value)
        assert key not in seen, f"{kind} {key[1]} in both {seen[key].name} and {path.name}"
        seen[key] = path


def test_each_operation_stands_alone_with_its_fragments() -> None:
    names = [
        d.name.value for _, d in _definitions() if isinstance(d, OperationDefinitionNode) and d.name
    ]
    for name in names:
        errors = validate(schema(), parse(operation_document(name)))
        assert errors == [], f"{name}: {errors}"


def test_the_documents_cover_every_page_of_the_mini_program() -> None:
    used: dict[OperationType, set[str]] = {kind: set() for kind in OperationType}
    for _, definition in _definitions():
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                assert isinstance(selection, FieldNode)
                used[definition.operation].add(selection.name.value)
    assert used[OperationType.QUERY] >= {
        "stores",
        "menu",
        "viewer",
        "claimableCoupons",
        "quoteOrder",
        "order",
        "campaigns",
        "shareInvite",
    }
    assert used[OperationType.MUTATION] >= {
        "requestLoginCode",
        "login",
        "loginWithWechat",
        "refreshToken",
        "logout",
        "claimCoupon",
        "placeOrder",
        "payOrder",
        "startGroupBuy",
        "joinGroupBuy",
        "startBargain",
        "helpBargain",
        "buyFlashSale",
        "checkIn",
    }
    assert used[OperationType.SUBSCRIPTION] >= {"stockChanged", "orderUpdates", "courierUpdates"}


def test_the_menu_asks_for_stock_and_the_wallet_for_points_tier_and_coupons() -> None:
    menu = operation_document("StoreMenu")
    assert "stock {" in menu and "available" in menu and "soldOut" in menu
    wallet = operation_document("Wallet")
    for field in ("points", "tier", "coupons("):
        assert field in wallet
