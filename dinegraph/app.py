"""The Starlette application: /graphql over HTTP and WebSocket, /health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

import orjson
from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from dinegraph import graphiql
from dinegraph.context import Clock, Context, Services
from dinegraph.db.documents import SqlDocumentStore
from dinegraph.db.engine import counting, create_engine
from dinegraph.db.health import check_database
from dinegraph.db.identity import SqlCredentials
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.queries import ReadQueries
from dinegraph.db.uow import SqlReader, SqlUnitOfWork
from dinegraph.domain.delivery import Provider, parse_speeds
from dinegraph.domain.fees import FeeRules, parse_bands
from dinegraph.domain.identity import ANONYMOUS, Viewer
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.ports import PaymentGateway
from dinegraph.domain.routing import RoutingWeights
from dinegraph.domain.services.auth import AuthConfig
from dinegraph.domain.services.campaigns import SWEEP_BATCH as CAMPAIGN_SWEEP_BATCH
from dinegraph.domain.services.campaigns import close_campaigns, fail_expired_groups
from dinegraph.domain.services.delivery import prune_positions
from dinegraph.domain.services.dispatch import DeliveryPolicy
from dinegraph.domain.services.orders import SWEEP_BATCH, OrderPolicy, cancel_expired
from dinegraph.events.brokers import Broker, create_broker
from dinegraph.i18n import locale_from_header
from dinegraph.integrations.development import (
    DevelopmentCourierPlatform,
    DevelopmentPayments,
    DevelopmentWechatLogin,
    LoggingSmsSender,
)
from dinegraph.payments import payment_notify
from dinegraph.persisted import PersistedQueries, PersistedQueryError
from dinegraph.schema import build_schema
from dinegraph.schema.limits import has_invalid_characters, invalid_characters_error
from dinegraph.security import (
    InvalidCredentials,
    MemberAccessTokens,
    SignedShareCodes,
    derived_key,
    viewer_from_headers,
)
from dinegraph.settings import Settings, get_settings

log = logging.getLogger("dinegraph")

GRAPHQL_RESPONSE = "application/graphql-response+json"

# Arrays and objects nested in one JSON body or message. Inputs nest a few levels; the
# decoder recurses per level, so a body of brackets alone must stop well before the stack.
MAX_JSON_DEPTH = 64


_OBJECT_OR_LIST = re.compile(rb"[ \t\r\n]*[{\[]")


class _JsonTooDeep(json.JSONDecodeError):
    def __init__(self) -> None:
        super().__init__(f"nested more than {MAX_JSON_DEPTH} levels deep", "", 0)


def decode_json(data: str | bytes) -> object:
    """JSON as Python's decoder reads it (NaN too: variables refuse it with a GraphQL
    error), nested at most MAX_JSON_DEPTH levels; anything else it cannot decode is a
    JSONDecodeError (bytes that are not UTF-8, integers of thousands of digits)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise _JsonTooDeep() from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from None
    if _nested_deeper_than(value, MAX_JSON_DEPTH):
        raise _JsonTooDeep()
    return value


def _nested_deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with protocol-level keep-alive: a `ping` every interval.

    Strawberry answers pings but sends none on this protocol; proxies and mobile networks
    drop idle sockets, and a client needs the ping to notice a dead connection.
    """

    keep_alive_interval: float = 15

    async def handle(self) -> None:
        pinger = asyncio.create_task(self._ping())
        try:
            await super().handle()
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """A subscribe may name its document by hash (persisted queries), as HTTP can."""
        view = cast("DinegraphGraphQL", self.view)
        payload = message.get("payload") or {}
        if has_invalid_characters(payload):
            # Refused here, before the id or anything else of it is sent back in an answer.
            if self.connection_acknowledged and not has_invalid_characters(message["id"]):
                error = invalid_characters_error().formatted
                await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
            else:
                await self.websocket.close(code=4400, reason="Invalid characters")
            return
        try:
            query = await view.persisted.document_for(
                payload.get("query"), payload.get("extensions")
            )
        except PersistedQueryError as refused:
            if self.connection_acknowledged:
                error = refused.as_graphql_error().formatted
                await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
            else:
                await self.websocket.close(code=4401, reason="Unauthorized")
            return
        if query is not None and query is not payload.get("query"):
            message = {**message, "payload": {**message["payload"], "query": query}}
        await super().handle_subscribe(message)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_interval)
            if self.connection_acknowledged:
                try:
                    await self.send_message({"type": "ping"})
                except Exception:  # the socket is gone; the handler is shutting down
                    return


class DinegraphGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with our context, orjson and the GraphQL-over-HTTP media type."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, broker: Broker, services: Services
    ) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide=None if settings.production else "graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.services = services
        self.credentials = SqlCredentials(engine)
        self.persisted = PersistedQueries(
            SqlDocumentStore(engine, max_automatic=settings.persisted_queries_max),
            trusted_only=settings.trusted_documents_only,
        )
        self.graphql_transport_ws_handler_class = type(
            "TransportWSHandler",
            (_TransportWSHandler,),
            {"keep_alive_interval": settings.ws_keepalive_seconds},
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        viewer: Viewer = ANONYMOUS
        if isinstance(request, Request):
            try:
                viewer = await viewer_from_headers(
                    self.settings,
                    self.credentials,
                    authorization=request.headers.get("authorization"),
                    api_key=request.headers.get("x-api-key"),
                )
            except InvalidCredentials as exc:
                raise HTTPException(401, f"Invalid credentials: {exc}") from exc
        if isinstance(response, Response) and GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            response.media_type = GRAPHQL_RESPONSE
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            settings=self.settings,
            engine=self.engine,
            viewer=viewer,
            locale=locale_from_header(request.headers.get("accept-language")),
            broker=self.broker,
            services=self.services,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """WebSocket credentials ride in connection_init: authorization or apiKey."""
        params = context.connection_params or {}
        if has_invalid_characters(params):
            raise ConnectionRejectionError({"reason": "invalid characters"})
        authorization, api_key = params.get("authorization"), params.get("apiKey")
        try:
            context.viewer = await viewer_from_headers(
                self.settings,
                self.credentials,
                authorization=authorization if isinstance(authorization, str) else None,
                api_key=api_key if isinstance(api_key, str) else None,
            )
        except InvalidCredentials as exc:
            raise ConnectionRejectionError({"reason": "invalid credentials"}) from exc
        context.refresh_loaders()
        return cast(UnsetType, UNSET)

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own GraphiQL page, its files served by this server: works offline, no CDN.
        return graphiql.render_page(self.settings)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming its document by hash alone is an operation, not a visit to the IDE.
        params = request.query_params
        return params.get("extensions") is None and super().should_render_graphql_ide(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Runs the document the request names, by its text or its persisted hash."""
        if has_invalid_characters(
            [
                request_data.query,
                request_data.variables,
                request_data.operation_name,
                request_data.extensions,
            ]
        ):
            log.debug("request %s: invalid characters", context.request_id)
            return ExecutionResult(data=None, errors=[invalid_characters_error()])
        try:
            query = await self.persisted.document_for(request_data.query, request_data.extensions)
        except PersistedQueryError as refused:
            log.debug("request %s: %s", context.request_id, refused.message)
            return ExecutionResult(data=None, errors=[refused.as_graphql_error()])
        # Queries (GET or POST) and mutations (POST) only: subscriptions live on the
        # WebSocket, and Strawberry would otherwise run one over plain HTTP to a null.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as refused:
            reason = refused.as_http_error_reason(request_adapter.method)
            raise HTTPException(400, reason) from refused
        except CannotGetOperationTypeError as refused:
            raise HTTPException(400, refused.as_http_error_reason()) from refused
        except MissingQueryError as refused:
            raise HTTPException(400, "No GraphQL query found in the request") from refused

    async def parse_http_body(self, request: Any) -> Any:
        # A JSON body that is no object (`0`, `"x"`, `null`) names no operation; a list is a
        # batch, which Strawberry refuses itself.
        if (
            request.method == "POST"
            and "application/json" in (request.content_type or "")
            and not _OBJECT_OR_LIST.match(await request.get_body())
        ):
            raise HTTPException(400, "The request body must be a JSON object")
        return await super().parse_http_body(request)

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return decode_json(data)
        except _JsonTooDeep as exc:
            raise HTTPException(400, f"The JSON is {exc.msg}") from None
        except json.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None

    def encode_json(self, data: object) -> str:
        # A str, not bytes: Strawberry sends bytes as binary WebSocket frames, and
        # graphql-transport-ws clients (graphql-ws, gql, browsers) read text frames only.
        return orjson.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        if sub_response.media_type == GRAPHQL_RESPONSE and _is_request_error(response_data):
            # GraphQL over HTTP: a document that does not parse or validate, or variables
            # that do not coerce, is a request error: 400 and no `data` entry.
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            sub_response.status_code = 400
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type:
            response.headers["content-type"] = sub_response.media_type
        return response


def _is_request_error(response_data: object) -> bool:
    """Nothing was executed: no data and only errors outside any field (those have paths)."""
    if not isinstance(response_data, dict) or response_data.get("data") is not None:
        return False
    errors = response_data.get("errors") or []
    return bool(errors) and all(not error.get("path") for error in errors)


class _BodyTooLarge(Exception):
    pass


class SizeLimitMiddleware:
    """Bounds an HTTP request's body and a WebSocket message, before either is decoded.

    A body whose Content-Length is too large is refused unread; one without (chunked) is
    counted as it arrives and refused as soon as it passes the limit, so it is never held
    whole. A WebSocket message too large closes the socket with 1009 (message too big);
    `dinegraph serve` also tells uvicorn the limit, which then refuses it unbuffered.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_ws_message_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_ws_message_bytes = max_ws_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._too_large(send)
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": f"The request body is larger than {self.max_body_bytes} bytes.",
                        "extensions": {"code": "REQUEST_TOO_LARGE"},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and not closed:
                text, data = message.get("text"), message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > self.max_ws_message_bytes:
                    closed = True
                    await send({"type": "websocket.close", "code": 1009, "reason": "Too big"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


class ServerTimingMiddleware:
    """Reports the SQL statements each HTTP request ran, for N+1 hunting and benchmarks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counter = counting()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("server-timing", f'db;desc="{counter.count} statements"')
            await send(message)

        await self.app(scope, receive, send_with_timing)


async def health(request: Request) -> Response:
    await check_database(request.app.state.engine)
    return JSONResponse({"status": "ok"})


async def sweep_unpaid_orders(
    engine: AsyncEngine, broker: Broker, services: Services, every_seconds: float
) -> None:
    """The scheduler inside the server: cancel unpaid orders once their time is up.

    A plain read looks first, so an idle round takes no write lock.
    """
    reads = ReadQueries(engine)
    while True:
        await asyncio.sleep(every_seconds)
        try:
            while await reads.unpaid_expired(services.clock()):
                cancelled = await cancel_expired(
                    services.clock(), uow=SqlUnitOfWork(engine, events=broker)
                )
                if cancelled:
                    log.info("cancelled %d unpaid orders", len(cancelled))
                if len(cancelled) < SWEEP_BATCH:
                    break
        except Exception:
            log.exception("unpaid-order sweep failed; trying again next round")


async def sweep_campaigns(
    engine: AsyncEngine, broker: Broker, services: Services, every_seconds: float
) -> None:
    """The scheduler inside the server: fail groups not filled in time (refunding their
    members) and give ended campaigns' quotas back to the shelves.

    A plain read looks first, so an idle round takes no write lock.
    """
    while True:
        await asyncio.sleep(every_seconds)
        try:
            now = services.clock()
            async with SqlReader(engine) as reads:
                groups_due = bool(await reads.campaigns.expired_groups(now, 1))
                campaigns_due = bool(await reads.campaigns.to_close(now, 1))
            while groups_due:
                failed = await fail_expired_groups(
                    now, services.orders, uow=SqlUnitOfWork(engine, events=broker)
                )
                if failed.groups:
                    log.info("failed %d expired groups", len(failed.groups))
                groups_due = len(failed.groups) == CAMPAIGN_SWEEP_BATCH
            if campaigns_due:
                closed = await close_campaigns(now, uow=SqlUnitOfWork(engine, events=broker))
                if closed:
                    log.info("closed %d ended campaigns", closed)
        except Exception:
            log.exception("campaign sweep failed; trying again next round")


async def prune_old_positions(engine: AsyncEngine, services: Services, settings: Settings) -> None:
    """Courier positions are kept for DINEGRAPH_POSITION_RETENTION_DAYS, then forgotten."""
    retention = timedelta(days=settings.position_retention_days)
    while True:
        await asyncio.sleep(settings.position_prune_every_seconds)
        try:
            gone = await prune_positions(services.clock(), retention, uow=SqlUnitOfWork(engine))
            if gone:
                log.info("pruned %d courier positions", gone)
        except Exception:
            log.exception("position pruning failed; trying again next round")


def order_policy(settings: Settings, payments: PaymentGateway) -> OrderPolicy:
    return OrderPolicy(
        fees=FeeRules(
            bands=parse_bands(settings.delivery_fee_bands),
            free_delivery_from_fen=settings.free_delivery_from_fen,
            packaging_fen_per_unit=settings.packaging_fee_fen,
            packaging_cap_fen=settings.packaging_fee_cap_fen,
        ),
        weights=RoutingWeights(
            per_metre=settings.routing_per_metre,
            per_pending_order=settings.routing_per_pending_order,
        ),
        nearby_m=settings.routing_nearby_m,
        payment_timeout=timedelta(minutes=settings.payment_timeout_minutes),
        time_zone=settings.timezone,
        tier_thresholds=settings.tier_thresholds,
        points_expiry_days=settings.points_expiry_days,
        payments=payments,
        delivery=DeliveryPolicy(
            dispatch_on=OrderStatus(settings.dispatch_on),
            speeds=parse_speeds(settings.courier_speeds),
            max_speed_kmh=settings.courier_max_speed_kmh,
            min_report_interval=timedelta(seconds=settings.courier_report_min_interval_seconds),
            platforms={
                p: DevelopmentCourierPlatform(p) for p in Provider if p is not Provider.OWN_RIDER
            },
        ),
    )


def default_services(settings: Settings) -> Services:
    notify = settings.payment_notify_secret
    return Services(
        sms=LoggingSmsSender(),
        wechat=DevelopmentWechatLogin(),
        auth=AuthConfig(
            code_key=derived_key(settings, b"login-codes"),
            access_tokens=MemberAccessTokens(settings),
            refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
            codes_per_ip_per_hour=settings.login_codes_per_ip_per_hour,
        ),
        share_key=derived_key(settings, b"coupon-share-codes"),
        orders=order_policy(settings, DevelopmentPayments()),
        payment_notify_key=(
            notify.get_secret_value().encode()
            if notify is not None
            else derived_key(settings, b"payment-notify")
        ),
        share_codes=SignedShareCodes(derived_key(settings, b"campaign-share-codes")),
        clock=Clock(settings.clock_start),
    )


def create_app(
    settings: Settings | None = None,
    engine: AsyncEngine | None = None,
    services: Services | None = None,
) -> Starlette:
    settings = settings or get_settings()
    settings.check_servable()
    engine = engine or create_engine(settings)
    broker = create_broker(settings.broker_url, SqlOutbox(engine))
    services = services or default_services(settings)
    graphql = DinegraphGraphQL(settings, engine, broker, services)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        schedules = [
            asyncio.create_task(
                sweep_unpaid_orders(engine, broker, services, settings.order_sweep_seconds),
                name="dinegraph-unpaid-order-sweep",
            ),
            asyncio.create_task(
                sweep_campaigns(engine, broker, services, settings.order_sweep_seconds),
                name="dinegraph-campaign-sweep",
            ),
            asyncio.create_task(
                prune_old_positions(engine, services, settings),
                name="dinegraph-position-pruning",
            ),
        ]
        try:
            yield
        finally:
            for task in schedules:
                task.cancel()
            for task in schedules:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.background.cancel()
            await broker.stop()
            await engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            Route(
                "/payments/notify",
                payment_notify(lambda: SqlUnitOfWork(engine, events=broker)),
                methods=["POST"],
            ),
            *graphiql.routes(settings),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(
                SizeLimitMiddleware,
                max_body_bytes=settings.max_body_bytes,
                max_ws_message_bytes=settings.max_ws_message_bytes,
            ),
            *([Middleware(ServerTimingMiddleware)] if settings.sends_server_timing else []),
        ],
    )
    app.state.engine = engine
    app.state.broker = broker
    app.state.settings = settings
    app.state.services = services
    return app
