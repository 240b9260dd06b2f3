"""The GraphQL view: /graphql over HTTP (GET and POST) and the graphql-transport-ws
WebSocket, with our context, credentials, persisted queries and JSON limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import timedelta
from functools import partial
from typing import Any, cast

import orjson
from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType
from strawberry.utils.aio import aclosing

from dinegraph import graphiql
from dinegraph.context import Context, Services
from dinegraph.credential_cache import CachedCredentials
from dinegraph.db.documents import SqlDocumentStore
from dinegraph.db.identity import SqlCredentials
from dinegraph.domain.identity import ANONYMOUS, PartnerViewer, Viewer
from dinegraph.events.brokers import Broker
from dinegraph.events.codec import READS_TOPIC
from dinegraph.i18n import locale_from_header
from dinegraph.key_use import KeyUse
from dinegraph.persisted import PersistedQueries, PersistedQueryError
from dinegraph.public_reads import PublicReads
from dinegraph.read_cache import (
    Answer,
    ReadCache,
    ReadNote,
    StampCounts,
    answer_key,
    reads_class,
)
from dinegraph.request_limits import JsonTooDeep, decode_json
from dinegraph.schema import build_schema
from dinegraph.schema.limits import has_invalid_characters, invalid_characters_error
from dinegraph.security import InvalidCredentials, viewer_from_headers
from dinegraph.settings import Settings
from dinegraph.shared_feeds import Member, SharedFeeds, share_key

log = logging.getLogger("dinegraph")

GRAPHQL_RESPONSE = "application/graphql-response+json"

_OBJECT_OR_LIST = re.compile(rb"[ \t\r\n]*[{\[]")


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

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Each operation gets a context of its own (its own loaders); a subscription whose
        answer cannot differ from other subscribers' joins their shared feed."""
        view = cast("DinegraphGraphQL", self.view)
        key = share_key(
            operation.query, operation.operation_name, operation.variables, self.context
        )
        if key is None:
            await self._run_own(operation, self.context.for_operation())
            return
        # A feed's context (and its loaders) exists once per shared feed, not per subscriber.
        feeds = view.shared_feeds
        member = feeds.join(key, self.context.for_operation, partial(self._stream, operation))
        try:
            await self._send_shared(operation, member)
        finally:
            feeds.leave(member)

    async def _stream(self, operation: Operation[Context, None], context: Context) -> Any:
        return await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            operation_name=operation.operation_name,
        )

    async def _send_shared(self, operation: Operation[Context, None], member: Member) -> None:
        socket = cast(ASGIWebSocketAdapter, self.websocket).ws
        envelope = '{"id":' + orjson.dumps(operation.id).decode() + ',"type":"next","payload":'
        while True:
            payloads, end = await member.take()
            for payload in payloads:
                if operation.completed:
                    return
                try:
                    await socket.send_text(envelope + payload + "}")
                except (WebSocketDisconnect, OSError, RuntimeError):
                    return  # the socket is gone; the handler is shutting down
            if end is None:
                continue
            try:
                if end.errors:
                    await operation.send_initial_errors(end.errors)
                else:
                    await operation.send_operation_message(
                        CompleteMessage(id=operation.id, type="complete")
                    )
            except (WebSocketDisconnected, OSError, RuntimeError):
                pass
            return

    async def _run_own(self, operation: Operation[Context, None], context: Context) -> None:
        """Strawberry's own run, with the operation's context."""
        try:
            result_source = await self._stream(operation, context)
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_interval)
            if self.connection_acknowledged:
                try:
                    await self.send_message({"type": "ping"})
                except Exception:  # the socket is gone; the handler is shutting down
                    return


class _SubResponse(Response):
    """Strawberry's sub-response, with what the read cache notes between executing a public
    read and answering it."""

    method: str = "POST"
    read: ReadNote | None = None


class DinegraphGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with our context, orjson and the GraphQL-over-HTTP media type."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, broker: Broker, services: Services
    ) -> None:
        schema = build_schema(settings)
        super().__init__(
            schema,
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
        self.credentials = CachedCredentials(
            SqlCredentials(engine), seconds=settings.credential_cache_seconds
        )
        self.shared_feeds = SharedFeeds()
        self.key_use = KeyUse(every_seconds=settings.api_key_last_used_every_seconds)
        self.persisted = PersistedQueries(
            SqlDocumentStore(engine, max_automatic=settings.persisted_queries_max),
            trusted_only=settings.trusted_documents_only,
        )
        self.read_cache = ReadCache(
            entries=settings.read_cache_entries,
            max_bytes=int(settings.read_cache_megabytes * 1024 * 1024),
            max_age=settings.read_cache_max_age_seconds,
        )
        self.public_reads = PublicReads(schema._schema, max_tokens=settings.max_tokens)
        self.graphql_transport_ws_handler_class = type(
            "TransportWSHandler",
            (_TransportWSHandler,),
            {"keep_alive_interval": settings.ws_keepalive_seconds},
        )

    async def start_read_cache(self) -> None:
        """Serve public reads from the cache from now on: this process hears every stamp the
        broker carries (the broker has started)."""
        await self.broker.hub.follow(READS_TOPIC, self.read_cache.heard)
        self.read_cache.open = True

    def stop_read_cache(self) -> None:
        self.read_cache.open = False
        self.read_cache.forget()

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = _SubResponse()  # as Strawberry makes it, with room for the read cache
        sub_response.status_code = None  # type: ignore[assignment]
        del sub_response.headers["content-length"]
        if isinstance(request, Request):
            sub_response.method = request.method
        return sub_response

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
            if isinstance(viewer, PartnerViewer):
                self.key_use.used(viewer.api_key_id)
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
        if isinstance(context.viewer, PartnerViewer):
            self.key_use.used(context.viewer.api_key_id)
        context.refresh_loaders()
        return cast(UnsetType, UNSET)

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own GraphiQL page, its files served by this server: works offline, no CDN.
        return graphiql.render_page(self.settings)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming its document by hash alone is an operation, not a visit to the IDE.
        # A POST never is one: asked first, so that operations do not parse a query string.
        return (
            request.method == "GET"
            and request.query_params.get("extensions") is None
            and super().should_render_graphql_ide(request)
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Runs the document the request names, by its text or its persisted hash; a public
        read kept in the read cache is answered from there instead."""
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
        note = self._read_note(request, sub_response, context, request_data)
        if note is not None:
            note.answer = self.read_cache.get(note.key, context.now())
            if note.answer is not None:
                return ExecutionResult(data=None, errors=None)  # create_response sends it
        try:
            query = await self.persisted.document_for(request_data.query, request_data.extensions)
        except PersistedQueryError as refused:
            log.debug("request %s: %s", context.request_id, refused.message)
            return ExecutionResult(data=None, errors=[refused.as_graphql_error()])
        if note is not None and query is not None:
            # Read before executing: a commit racing the execution moves them, and the
            # answer is then never kept as fresh.
            note.stamps = self._stamps_of(query, request_data)
        # Queries (GET or POST) and mutations (POST) only: subscriptions live on the
        # WebSocket, and Strawberry would otherwise run one over plain HTTP to a null.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            result = await self.schema.execute(
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
        if note is not None:
            note.changes_at = context.answer_changes_at
        return result

    def _read_note(
        self,
        request: Request,
        sub_response: Response,
        context: Context,
        request_data: GraphQLRequestData,
    ) -> ReadNote | None:
        """The read cache's note of a request it may answer: by a viewer of the public class,
        while the cache serves."""
        if not self.read_cache.serving or not isinstance(sub_response, _SubResponse):
            return None
        viewer_class = reads_class(context.viewer)
        if viewer_class is None:
            return None
        key = answer_key(
            request_data.query,
            request_data.variables,
            request_data.operation_name,
            request_data.extensions,
            context.locale,
            viewer_class,
            sub_response.media_type,
        )
        if key is None:
            return None
        sub_response.read = ReadNote(
            key,
            authenticated=context.viewer is not ANONYMOUS,
            if_none_match=request.headers.get("if-none-match"),
        )
        return sub_response.read

    def _stamps_of(self, query: str, request_data: GraphQLRequestData) -> StampCounts | None:
        """The counts, now, of the stamps a public read depends on; None for another query."""
        operation_name = request_data.operation_name
        if not isinstance(operation_name, str | None):
            return None  # a request error, answered as ever
        read = self.public_reads.of(query, operation_name)
        names = read.stamps_for(request_data.variables) if read is not None else None
        return self.read_cache.stamps.read(names) if names is not None else None

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
        except JsonTooDeep as exc:
            raise HTTPException(400, f"The JSON is {exc.msg}") from None
        except json.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None

    def encode_json(self, data: object) -> str:
        # A str, not bytes: Strawberry sends bytes as binary WebSocket frames, and
        # graphql-transport-ws clients (graphql-ws, gql, browsers) read text frames only.
        return orjson.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        sub = sub_response if isinstance(sub_response, _SubResponse) else None
        note = sub.read if sub is not None else None
        if sub is not None and note is not None and note.answer is not None:
            media_type = sub.media_type or "application/json"
            return self._public(Response(note.answer.body, media_type=media_type), sub)
        if sub_response.media_type == GRAPHQL_RESPONSE and _is_request_error(response_data):
            # GraphQL over HTTP: a document that does not parse or validate, or variables
            # that do not coerce, is a request error: 400 and no `data` entry.
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            sub_response.status_code = 400
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type:
            response.headers["content-type"] = sub_response.media_type
        if note is not None and note.stamps is not None:
            note.answer = self._keep(note, response_data, response, sub_response)
        if sub is not None and note is not None and note.answer is not None:
            return self._public(response, sub)
        if sub is not None and sub.method == "GET":
            response.headers["cache-control"] = "no-store"
        return response

    def _keep(
        self, note: ReadNote, response_data: Any, response: Response, sub_response: Response
    ) -> Answer | None:
        """The answer to a public read, kept unless it has errors or the resolvers gave the
        response anything of their own (a status, a header, a background task)."""
        if (
            note.stamps is None
            or not isinstance(response_data, dict)
            or response_data.get("errors")
            or response_data.get("data") is None
            or response.status_code != 200
            or sub_response.status_code is not None
            or sub_response.headers.raw
            or sub_response.background is not None
        ):
            return None
        return self.read_cache.keep(
            note.key,
            response.body,
            stamps=note.stamps,
            changes_at=note.changes_at,
            now=self.services.clock(),
        )

    def _public(self, response: Response, sub: _SubResponse) -> Response:
        """A public answer over GET carries its ETag, and is 304 to a client that has it."""
        note = sub.read
        if sub.method != "GET" or note is None or note.answer is None:
            return response
        headers = note.http_headers()
        if note.not_modified():
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return response


def _is_request_error(response_data: object) -> bool:
    """Nothing was executed: no data and only errors outside any field (those have paths)."""
    if not isinstance(response_data, dict) or response_data.get("data") is not None:
        return False
    errors = response_data.get("errors") or []
    return bool(errors) and all(not error.get("path") for error in errors)
