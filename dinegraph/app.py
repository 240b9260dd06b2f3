"""The Starlette application: /graphql over HTTP and WebSocket, /health.

The wiring: the adapters and policies the app runs on, its routes, middleware and the
schedules it keeps for its lifetime. The GraphQL view is in ``view``, the request limits
in ``request_limits``, the schedules in ``schedules``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dinegraph import admin_console, graphiql
from dinegraph.carrier_callbacks import dada_callback, sf_callback
from dinegraph.collector import return_freed_memory, tune_collector
from dinegraph.context import Clock, Services
from dinegraph.credential_cache import CachedCredentials
from dinegraph.db.calls import SqlCallStore
from dinegraph.db.delivery import stores_by_platform
from dinegraph.db.engine import counting, create_engine
from dinegraph.db.health import check_database
from dinegraph.db.outbox import SqlOutbox
from dinegraph.db.personal import event_sealer
from dinegraph.db.staff_accounts import mark_keys_used
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.db.wechat_tokens import SqlWechatTokens
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.delivery import Provider, parse_speeds
from dinegraph.domain.fees import FeeRules, parse_bands
from dinegraph.domain.orders import OrderStatus
from dinegraph.domain.ports import DeliveryPlatform, PaymentGateway, SmsSender, WechatLogin
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
from dinegraph.domain.services.position_batch import PositionBatcher
from dinegraph.domain.services.refund_progress import make_refund, refund_refused
from dinegraph.domain.services.staff_auth import StaffAuth
from dinegraph.domain.staff import LoginPolicy
from dinegraph.events.brokers import Broker, create_broker
from dinegraph.events.codec import CREDENTIALS_TOPIC, READS_TOPIC, SUPPLIES_TOPIC
from dinegraph.events.exhaustion import Board
from dinegraph.integrations.dada import DadaPlatform
from dinegraph.integrations.development import (
    DevelopmentCourierPlatform,
    DevelopmentPayments,
    DevelopmentWechatLogin,
    LoggingSmsSender,
)
from dinegraph.integrations.outside import ProviderRefused
from dinegraph.integrations.sf_intra_city import SfIntraCityPlatform
from dinegraph.integrations.tencent_sms import TencentSms, TencentSmsConfig
from dinegraph.integrations.wechat import WechatConfig, WechatMiniProgram
from dinegraph.integrations.wechatpay import WechatPayRefunds
from dinegraph.outbound import CallRefused, CallRelay, RelayPolicy, provider_refusals
from dinegraph.passwords import Argon2Passwords, PyotpCodes
from dinegraph.payments import payment_notify
from dinegraph.request_limits import SizeLimitMiddleware
from dinegraph.schedules import (
    prune_old_positions,
    rebuild_recommendations,
    reconcile_wechatpay,
    resume_coupon_issues,
    sweep_calls,
    sweep_campaigns,
    sweep_unaccepted,
    sweep_unpaid_orders,
)
from dinegraph.search_index import SearchIndexes
from dinegraph.security import (
    MemberAccessTokens,
    SignedShareCodes,
    StaffAccessTokens,
    derived_key,
)
from dinegraph.settings import ConfigurationError, Settings, get_settings
from dinegraph.view import DinegraphGraphQL
from dinegraph.wechatpay_wiring import wechatpay_client, wechatpay_routes, wire_payment_calls

log = logging.getLogger("dinegraph")


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


def dada_callback_key(settings: Settings) -> bytes:
    """The key of the tokens in 达达's callback URLs (``integrations.dada.callback_token``)."""
    return derived_key(settings, b"dada-callbacks")


def courier_platforms(settings: Settings) -> dict[Provider, DeliveryPlatform]:
    """The platforms' adapters: 达达 when configured, else the development one."""
    # Production serves only the platforms stores may use, each by its real adapter (the
    # settings refuse to start otherwise); development has every one, at least pretended.
    in_use = set(settings.platforms_in_use())
    platforms: dict[Provider, DeliveryPlatform] = {
        p: DevelopmentCourierPlatform(p)
        for p in Provider
        if p is not Provider.OWN_RIDER and (not settings.production or p.value in in_use)
    }
    if settings.dada_app_key and settings.dada_app_secret and settings.dada_source_id:
        platforms[Provider.DADA] = DadaPlatform(
            base_url=settings.dada_base_url,
            app_key=settings.dada_app_key,
            app_secret=settings.dada_app_secret.get_secret_value(),
            source_id=settings.dada_source_id,
            city_code=settings.dada_city_code,
            callback_url=settings.dada_callback_url,
            callback_key=dada_callback_key(settings),
            timeout_seconds=settings.dada_timeout_seconds,
            privacy_numbers=settings.dada_privacy_numbers,
            contact_timeout_seconds=settings.courier_contact_timeout_seconds,
        )
    if settings.sf_dev_id and settings.sf_dev_key and settings.sf_shop_id:
        platforms[Provider.SF_INTRA_CITY] = SfIntraCityPlatform(
            base_url=settings.sf_base_url,
            dev_id=settings.sf_dev_id,
            dev_key=settings.sf_dev_key.get_secret_value(),
            shop_id=settings.sf_shop_id,
            timeout_seconds=settings.sf_timeout_seconds,
            privacy_numbers=settings.sf_privacy_numbers,
            contact_timeout_seconds=settings.courier_contact_timeout_seconds,
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


def sms_sender(settings: Settings) -> SmsSender:
    """Tencent Cloud SMS when configured, else the log (development only)."""
    s = settings
    if not (s.tencent_secret_id and s.tencent_secret_key and s.tencent_sms_sdk_app_id):
        return LoggingSmsSender()
    return TencentSms(
        TencentSmsConfig(
            secret_id=s.tencent_secret_id,
            secret_key=s.tencent_secret_key.get_secret_value(),
            sdk_app_id=s.tencent_sms_sdk_app_id,
            sign_name=s.tencent_sms_sign_name or "",
            template_id=s.tencent_sms_template_id or "",
            region=s.tencent_sms_region,
            endpoint=s.tencent_sms_endpoint,
            timeout_seconds=s.tencent_sms_timeout_seconds,
        )
    )


def wechat_login(settings: Settings, engine: AsyncEngine | None) -> WechatLogin:
    """The mini-program's WeChat API when configured, else the development adapter."""
    if not (settings.wechat_appid and settings.wechat_secret):
        return DevelopmentWechatLogin()
    config = WechatConfig(
        appid=settings.wechat_appid,
        secret=settings.wechat_secret.get_secret_value(),
        base_url=settings.wechat_api_base,
        timeout_seconds=settings.wechat_timeout_seconds,
    )
    return WechatMiniProgram(config, SqlWechatTokens(engine or create_engine(settings)))


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
            try:
                sent = await send_login_code(call, sms=services.sms, now=services.clock())
            except ProviderRefused as refused:  # the gateway said no for good (a wrong
                # number, its own per-number limit, our credentials): no retry helps
                raise CallRefused(f"{refused.code.value}: {refused.reason}") from refused
            if not sent:
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
    wire_payment_calls(services)


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


def carrier_routes(
    settings: Settings, engine: AsyncEngine, broker: Broker, services: Services
) -> list[Route]:
    """The delivery platforms' pushes (``carrier_callbacks``): 达达's status callback, and
    顺丰同城's once its developer key is set (its pushes are signed with it)."""

    def unit() -> SqlUnitOfWork:
        return SqlUnitOfWork(
            engine, events=broker, board=services.board.unit(), calls=services.calls
        )

    policy, clock = services.orders.delivery, services.clock
    routes = [
        Route(
            "/delivery/dada/callback",
            dada_callback(
                key=dada_callback_key(settings), new_uow=unit, policy=policy, clock=clock
            ),
            methods=["POST"],
        )
    ]
    if settings.sf_dev_id and settings.sf_dev_key:
        sf = sf_callback(
            dev_id=settings.sf_dev_id,
            dev_key=settings.sf_dev_key.get_secret_value(),
            new_uow=unit,
            policy=policy,
            clock=clock,
        )
        routes.append(Route("/delivery/sf/callback", sf, methods=["POST"]))
    return routes


def default_services(settings: Settings, engine: AsyncEngine | None = None) -> Services:
    notify = settings.payment_notify_secret
    wechatpay = wechatpay_client(settings)  # the real payment adapter once MCHID is set
    payments: PaymentGateway = (
        WechatPayRefunds(wechatpay) if wechatpay is not None else DevelopmentPayments()
    )
    return Services(
        sms=sms_sender(settings),
        wechat=wechat_login(settings, engine),
        auth=AuthConfig(
            code_key=derived_key(settings, b"login-codes"),
            access_tokens=MemberAccessTokens(settings),
            refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
            codes_per_ip_per_hour=settings.login_codes_per_ip_per_hour,
        ),
        share_key=derived_key(settings, b"coupon-share-codes"),
        orders=order_policy(settings, payments),
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
        wechatpay=wechatpay,
        search=SearchIndexes(max_age=settings.read_cache_max_age_seconds),
        positions=PositionBatcher(settings.position_batch_ms / 1000, settings.position_batch_max),
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


async def follow_process_news(
    broker: Broker, board: Board, credentials: CachedCredentials, search: SearchIndexes
) -> None:
    """What every process must hear for as long as it runs: supplies gone or given back,
    credentials revoked; and when the broker may have missed some, to start afresh."""
    await broker.hub.follow(SUPPLIES_TOPIC, board.hear)
    await broker.hub.follow(CREDENTIALS_TOPIC, credentials.hear)
    broker.hub.when_lost(board.lost)
    broker.hub.when_lost(credentials.forget)
    await broker.hub.follow(READS_TOPIC, search.heard)
    broker.hub.when_lost(search.forget)
    search.following = True


async def _warm_search(services: Services) -> None:
    """Build search's dictionaries now, then hand back what building them freed."""
    await services.search.warm()
    return_freed_memory()


async def check_store_platforms(settings: Settings, engine: AsyncEngine) -> None:
    """Stores set to a platform these settings do not configure: production refuses to
    start (their deliveries could not be ordered), development says so and pretends it."""
    try:
        found = await stores_by_platform(engine)
    except SQLAlchemyError as exc:
        why = (
            f"the stores' carriers could not be read ({type(exc).__name__}): "
            "is the database migrated? (dinegraph migrate)"
        )
        if settings.production:
            raise ConfigurationError(f"production refuses to start: {why}") from exc
        log.warning("%s", why)
        return
    problem = settings.store_platforms_problem(found)
    if problem is None:
        return
    if settings.production:
        raise ConfigurationError(f"production refuses to start: {problem}")
    log.warning("development couriers carry for these stores: %s", problem)


def serve_app() -> Starlette:
    """The app of a ``dinegraph serve`` process, each worker's: :func:`create_app` on the
    environment's settings, then the collector set for a long-lived server (what start-up
    made frozen, the young generation collected less often)."""
    settings = get_settings()
    app = create_app(settings)
    tune_collector(settings.gc_young_threshold)
    return app


def create_app(
    settings: Settings | None = None,
    engine: AsyncEngine | None = None,
    services: Services | None = None,
) -> Starlette:
    settings = settings or get_settings()
    settings.check_servable()
    engine = engine or create_engine(settings)
    broker = create_broker(settings.broker_url, SqlOutbox(engine), event_sealer(engine))
    services = services or default_services(settings, engine)
    graphql = DinegraphGraphQL(settings, engine, broker, services)
    wire_calls(services, engine, broker)
    if development := settings.development_adapters():
        log.warning(
            "development adapters in use (production refuses them): %s",
            "; ".join(f"{s} (set {', '.join(names)})" for s, names in development.items()),
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await check_store_platforms(settings, engine)
        await broker.start()
        await follow_process_news(broker, services.board, graphql.credentials, services.search)
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
                sweep_unaccepted(engine, broker, services, settings),
                name="dinegraph-unaccepted-delivery-sweep",
            ),
            asyncio.create_task(
                prune_old_positions(engine, services, settings),
                name="dinegraph-position-pruning",
            ),
            asyncio.create_task(
                sweep_calls(services, settings.calls_sweep_seconds), name="dinegraph-calls-out"
            ),
            asyncio.create_task(
                resume_coupon_issues(engine, broker, services), name="dinegraph-coupon-issues"
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
        if settings.production:  # the first search after a start need not load them
            schedules.append(
                asyncio.create_task(_warm_search(services), name="dinegraph-search-warm-up")
            )
        if settings.recommendations_rebuild_minutes > 0:
            schedules.append(
                asyncio.create_task(
                    rebuild_recommendations(engine, services, settings),
                    name="dinegraph-recommendation-build",
                )
            )
        if services.wechatpay is not None:
            schedules.append(
                asyncio.create_task(
                    reconcile_wechatpay(engine, broker, services, settings),
                    name="dinegraph-wechatpay-reconciliation",
                )
            )
        try:
            yield
        finally:
            for task in schedules:
                task.cancel()
            for task in schedules:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.background.cancel()
            for adapter in (services.sms, services.wechat):
                if isinstance(adapter, TencentSms | WechatMiniProgram):
                    await adapter.aclose()
            if services.wechatpay is not None:
                await services.wechatpay.aclose()
            graphql.stop_read_cache()
            await broker.stop()
            await engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            # The HMAC callback of development and tests; production takes WeChat Pay's.
            *(
                []
                if settings.production
                else [
                    Route(
                        "/payments/notify",
                        payment_notify(
                            lambda: SqlUnitOfWork(engine, events=broker, calls=services.calls)
                        ),
                        methods=["POST"],
                    )
                ]
            ),
            *wechatpay_routes(engine, broker, services),
            *carrier_routes(settings, engine, broker, services),
            *graphiql.routes(settings),
            *admin_console.routes(settings),
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
