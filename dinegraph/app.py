"""The Starlette application: /graphql over HTTP and WebSocket, /health.

The wiring: the adapters and policies the app runs on, its routes, middleware and the
schedules it keeps for its lifetime. The GraphQL view is in ``view``, the request limits
in ``request_limits``, the schedules in ``schedules``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dinegraph import graphiql
from dinegraph.context import Clock, Services
from dinegraph.credential_cache import CachedCredentials
from dinegraph.db.calls import SqlCallStore
from dinegraph.db.engine import counting, create_engine
from dinegraph.db.health import check_database
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.staff_accounts import mark_keys_used
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.delivery import Provider, parse_speeds
from dinegraph.domain.fees import FeeRules, parse_bands
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.ports import DeliveryPlatform, PaymentGateway
from dinegraph.domain.refunds import REFUND_CALL
from dinegraph.domain.routing import RoutingWeights
from dinegraph.domain.services.auth import LOGIN_CODE_CALL, AuthConfig, send_login_code
from dinegraph.domain.services.dispatch import (
    CANCEL_CALL,
    DISPATCH_CALL,
    DeliveryPolicy,
    call_courier_off,
    call_platform,
)
from dinegraph.domain.services.orders import OrderPolicy
from dinegraph.domain.services.refund_progress import make_refund, refund_refused
from dinegraph.domain.services.staff_auth import StaffAuth
from dinegraph.domain.staff import LoginPolicy
from dinegraph.events.brokers import Broker, create_broker
from dinegraph.events.codec import CREDENTIALS_TOPIC, SUPPLIES_TOPIC
from dinegraph.events.exhaustion import Board
from dinegraph.integrations.dada import DadaPlatform
from dinegraph.integrations.development import (
    DevelopmentCourierPlatform,
    DevelopmentPayments,
    DevelopmentWechatLogin,
    LoggingSmsSender,
)
from dinegraph.outbound import CallRefused, CallRelay, RelayPolicy, provider_refusals
from dinegraph.passwords import Argon2Passwords, PyotpCodes
from dinegraph.payments import payment_notify
from dinegraph.request_limits import SizeLimitMiddleware
from dinegraph.schedules import (
    prune_old_positions,
    sweep_calls,
    sweep_campaigns,
    sweep_unpaid_orders,
)
from dinegraph.security import (
    MemberAccessTokens,
    SignedShareCodes,
    StaffAccessTokens,
    derived_key,
)
from dinegraph.settings import Settings, get_settings
from dinegraph.view import DinegraphGraphQL


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


def courier_platforms(settings: Settings) -> dict[Provider, DeliveryPlatform]:
    """The platforms' adapters: 达达 when configured, else the development one."""
    platforms: dict[Provider, DeliveryPlatform] = {
        p: DevelopmentCourierPlatform(p) for p in Provider if p is not Provider.OWN_RIDER
    }
    if settings.dada_app_key and settings.dada_app_secret and settings.dada_source_id:
        platforms[Provider.DADA] = DadaPlatform(
            base_url=settings.dada_base_url,
            app_key=settings.dada_app_key,
            app_secret=settings.dada_app_secret.get_secret_value(),
            source_id=settings.dada_source_id,
            city_code=settings.dada_city_code,
            callback_url=settings.dada_callback_url,
            timeout_seconds=settings.dada_timeout_seconds,
        )
    return platforms


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
            platforms=courier_platforms(settings),
        ),
    )


def relay_policy(settings: Settings) -> RelayPolicy:
    return RelayPolicy(
        backoff_seconds=settings.calls_backoff_seconds,
        backoff_max_seconds=settings.calls_backoff_max_seconds,
        max_attempts=settings.calls_max_attempts,
        timeout_seconds=settings.calls_timeout_seconds,
    )


def wire_calls(services: Services, engine: AsyncEngine, broker: Broker) -> None:
    """The relay of calls out on this database, and the handlers of each kind: the text
    of a login code, a courier asked for or called off (``dinegraph.outbound``)."""
    relay = services.calls
    relay.bind(SqlCallStore(engine), services.clock)
    delivery = services.orders.delivery

    def unit() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, events=broker, board=services.board.unit(), calls=relay)

    async def text_login_code(call: OutboundCall) -> None:
        async with provider_refusals():
            if not await send_login_code(call, sms=services.sms, now=services.clock()):
                raise CallRefused("EXPIRED: the code expired before it could be sent")

    async def dispatch(call: OutboundCall) -> None:
        async with provider_refusals():
            await call_platform(call, uow=unit(), policy=delivery, now=services.clock())

    async def call_off(call: OutboundCall) -> None:
        async with provider_refusals():
            await call_courier_off(call, policy=delivery)

    relay.register(LOGIN_CODE_CALL, text_login_code)
    relay.register(DISPATCH_CALL, dispatch)
    relay.register(CANCEL_CALL, call_off)
    wire_refund_calls(services, unit)


def wire_refund_calls(services: Services, unit: Callable[[], SqlUnitOfWork]) -> None:
    """An approved refund's call out goes to the payment gateway (the development one
    accepts and settles at once); a refusal for good makes the refund FAILED."""
    payments = services.orders.payments

    async def refund(call: OutboundCall) -> None:
        async with provider_refusals():
            await make_refund(call, payments=payments, uow=unit(), now=services.clock())

    async def refused(call: OutboundCall, reason: str) -> None:
        await refund_refused(call, uow=unit(), now=services.clock())

    services.calls.register(REFUND_CALL, refund, on_refused=refused)


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
        board=Board(trust_seconds=settings.exhaustion_board_seconds),
        staff=staff_auth(settings),
        clock=Clock(settings.clock_start),
        calls=CallRelay(relay_policy(settings)),
    )


def staff_auth(settings: Settings) -> StaffAuth:
    window = timedelta(minutes=settings.staff_login_failure_window_minutes)
    return StaffAuth(
        passwords=Argon2Passwords(),
        totp=PyotpCodes(),
        tokens=StaffAccessTokens(settings),
        policy=LoginPolicy(
            access_ttl=timedelta(minutes=settings.staff_access_token_minutes),
            refresh_ttl=timedelta(days=settings.staff_refresh_token_days),
            max_failures=settings.staff_login_max_failures,
            failure_window=window,
            lock_for=timedelta(minutes=settings.staff_login_lock_minutes),
            failures_per_address=settings.staff_login_failures_per_address,
        ),
    )


async def follow_process_news(broker: Broker, board: Board, credentials: CachedCredentials) -> None:
    """What every process must hear for as long as it runs: supplies gone or given back,
    credentials revoked; and when the broker may have missed some, to start afresh."""
    await broker.hub.follow(SUPPLIES_TOPIC, board.hear)
    await broker.hub.follow(CREDENTIALS_TOPIC, credentials.hear)
    broker.hub.when_lost(board.lost)
    broker.hub.when_lost(credentials.forget)


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
    wire_calls(services, engine, broker)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        await follow_process_news(broker, services.board, graphql.credentials)
        await graphql.start_read_cache()
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
            asyncio.create_task(
                sweep_calls(services, settings.calls_sweep_seconds), name="dinegraph-calls-out"
            ),
            asyncio.create_task(
                graphql.key_use.write_forever(
                    partial(mark_keys_used, engine),
                    services.clock,
                    settings.api_key_last_used_write_seconds,
                ),
                name="dinegraph-api-key-use",
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
            graphql.stop_read_cache()
            await broker.stop()
            await engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            Route(
                "/payments/notify",
                payment_notify(lambda: SqlUnitOfWork(engine, events=broker, calls=services.calls)),
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
    app.state.read_cache = graphql.read_cache
    app.state.settings = settings
    app.state.services = services
    return app
