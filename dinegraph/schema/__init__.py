"""Assembles the one Schema, with the abuse limits and error masking of its mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as create_alias_validator
from strawberry.extensions.query_depth_limiter import (
    create_validator as create_depth_validator,
)
from strawberry.relay import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from dinegraph.domain.errors import DomainError
from dinegraph.resolvers.pagination import DEFAULT_PAGE_SIZE
from dinegraph.schema.calls import CallsOutMutation
from dinegraph.schema.campaign_mutations import CampaignMutation
from dinegraph.schema.catalog_mutations import CatalogMutation
from dinegraph.schema.coupon_mutations import CouponMutation, CouponSegmentMutation
from dinegraph.schema.delivery_mutations import DeliveryMutation, DeliverySettingsMutation
from dinegraph.schema.enums import name_enums_directly
from dinegraph.schema.errors import QueryError
from dinegraph.schema.inputs import plan_inputs
from dinegraph.schema.kitchen import KitchenMutation
from dinegraph.schema.limits import CostRules, RequestLimits
from dinegraph.schema.member_mutations import MemberMutation
from dinegraph.schema.order_mutations import OrderMutation
from dinegraph.schema.partner_orders import PartnerOrderMutation
from dinegraph.schema.password_change import PasswordChangeFirst
from dinegraph.schema.query import Query
from dinegraph.schema.recommendations import RecommendationMutation
from dinegraph.schema.refund_mutations import RefundMutation
from dinegraph.schema.relay_ids import resolve_ids_directly
from dinegraph.schema.search import SearchMutation
from dinegraph.schema.staff import StaffMutation
from dinegraph.schema.staff_admin import StaffAdminMutation
from dinegraph.schema.stock import StockMutation
from dinegraph.schema.subscriptions import Subscription
from dinegraph.settings import Settings

log = logging.getLogger("dinegraph.errors")

# graphql-core wraps what a resolver raises in a located error whose original_error is the
# raised one: a QueryError is how query fields and subscriptions refuse with a code.
_EXPECTED = (DomainError, GlobalIDValueError, QueryError)


def _unexpected(error: GraphQLError) -> bool:
    """An exception nobody planned for, as opposed to a validation or a domain failure."""
    original = error.original_error
    if isinstance(original, GraphQLError) and not error.path:
        # A variable value that does not coerce (an Int beyond 32 bits, NaN, a scalar's own
        # refusal): graphql-core reports it wrapping the scalar's error. A request error.
        return False
    return original is not None and not isinstance(original, _EXPECTED)


def _request_id(execution_context: ExecutionContext | None) -> str:
    context = execution_context.context if execution_context else None
    return str(getattr(context, "request_id", "-"))


class _MaskUnexpectedErrors(MaskErrors):
    """Production answers an unexpected error with a request id and nothing more."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected)

    def _process_result(self, result: object) -> None:
        # As Strawberry's, without its runtime Protocol check: an isinstance against a
        # Protocol walks the class's attributes, about 1 % of a request's CPU.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = _request_id(self.execution_context)
        return GraphQLError(
            message=f"Internal server error (request id {request_id})",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


class SubscriptionExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with a subscription's memory bounded by its selection.

    graphql-core 3.3 runs each subscription event on a shallow copy of the subscription's
    executor, sharing its memo of collected subfields. The memo is keyed by the identity
    of field lists made afresh for every event, so it gains entries with every push and
    keeps them as long as the subscription lives (about 2.6 KB per push in
    bench/courier_fanout.py). Each event gets a memo of its own here, which is what the
    memo is for: the lists of one execution.
    """

    def build_per_event_executor(self, payload: Any) -> SubscriptionExecutor:
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, SubscriptionExecutor)
        executor._relevant_sub_fields = {}
        return executor


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        request_id = _request_id(execution_context)
        for error in errors:
            if _unexpected(error):
                log.error(
                    "unexpected error in request %s at %s",
                    request_id,
                    error.path,
                    exc_info=error.original_error,
                )
            else:
                log.debug("request %s: %s", request_id, error.message)


@strawberry.type
class Mutation(
    CatalogMutation,
    StockMutation,
    MemberMutation,
    CouponMutation,
    CouponSegmentMutation,
    OrderMutation,
    PartnerOrderMutation,
    DeliveryMutation,
    DeliverySettingsMutation,
    CampaignMutation,
    CallsOutMutation,
    StaffMutation,
    StaffAdminMutation,
    KitchenMutation,
    RefundMutation,
    SearchMutation,
    RecommendationMutation,
):
    pass


def build_schema(settings: Settings) -> strawberry.Schema:
    # The limit rules are made once per schema, so the validation cache can key on them;
    # extensions are factories so every operation gets instances of its own.
    limits = (
        create_depth_validator(settings.max_query_depth, should_ignore=None),
        create_alias_validator(settings.max_aliases),
    )
    cost_rules = CostRules(
        list_size=settings.query_cost_list_size,
        default_page=DEFAULT_PAGE_SIZE,
        max_page=settings.max_page_size,
    )
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: RequestLimits(
            rules=cost_rules,
            max_cost=settings.max_query_cost,
            report_cost=not settings.production,
            max_tokens=settings.max_tokens,
            limit_rules=limits,
        ),
        PasswordChangeFirst,
    ]
    if settings.production:
        extensions += [DisableIntrospection, _MaskUnexpectedErrors]
    config: Any = StrawberryConfig(disable_field_suggestions=settings.production)
    schema = _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=config,
        execution_context_class=SubscriptionExecutor,
    )
    resolve_ids_directly(schema)
    name_enums_directly(schema)
    plan_inputs(schema)
    return schema


def export_sdl() -> str:
    """The schema as clients see it, independent of mode."""
    return build_schema(Settings()).as_str() + "\n"
