"""An account with a temporary password may only read who it is, change it and sign out.

Head office hands out a temporary password (a new account, a reset) for its holder to
replace at once; until they do, a token of theirs is refused everything else with
``PASSWORD_CHANGE_REQUIRED``: mutations in their payload's ``errors`` (``attempt``),
subscriptions before their first value (``live``), query operations before they run
(``PasswordChangeFirst``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.staff import ALLOWED_BEFORE_PASSWORD_CHANGE, must_change_password
from dinegraph.i18n import message_for
from dinegraph.schema.errors import QueryError

if TYPE_CHECKING:
    from graphql import DocumentNode

    from dinegraph.context import Context


class PasswordChangeFirst(SchemaExtension):
    """Refuses a query operation of a temporary password that asks for more than its viewer.

    Mutations and subscriptions are refused field by field, where their answers are made."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        ctx: Context | None = execution.context
        if (
            ctx is not None
            and must_change_password(ctx.viewer)
            and _asks_beyond_password_change(execution.graphql_document, execution.operation_name)
        ):
            error = DomainError(ErrorCode.PASSWORD_CHANGE_REQUIRED)
            refusal = QueryError(
                message_for(error, ctx.locale), extensions={"code": error.code.value}
            )
            execution.result = ExecutionResult(data=None, errors=[refusal])
        yield


def _asks_beyond_password_change(document: DocumentNode | None, name: str | None) -> bool:
    operation = _operation(document, name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    return any(
        field not in ALLOWED_BEFORE_PASSWORD_CHANGE and not field.startswith("__")
        for field in _root_fields(document, operation.selection_set)
    )


def _operation(document: DocumentNode | None, name: str | None) -> OperationDefinitionNode | None:
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if name is None or (operation.name is not None and operation.name.value == name):
            return operation
    return None


def _root_fields(
    document: DocumentNode | None, selection: SelectionSetNode, seen: frozenset[str] = frozenset()
) -> set[str]:
    """The names of the fields asked for at the root, through fragments too."""
    names: set[str] = set()
    fragments = {
        d.name.value: d
        for d in (document.definitions if document else ())
        if isinstance(d, FragmentDefinitionNode)
    }
    for node in selection.selections:
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            names |= _root_fields(document, node.selection_set, seen)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                names |= _root_fields(document, fragment.selection_set, seen | {node.name.value})
    return names
