"""WeChat Pay's wiring: the client made from the settings, its notification routes, one
reconciliation round of payments and one of refunds (for the server's schedule and
``dinegraph reconcile-payments``) and its outbound-call handlers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from dinegraph.context import Services
from dinegraph.db.prepays import SqlPrepays
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.payments import CLOSE_TRADE_CALL, RefundOutcome
from dinegraph.domain.services.checkout_payments import (
    CheckoutPayments,
    Reconciled,
    reconcile_payments,
)
from dinegraph.domain.services.refund_progress import (
    RefundSettled,
    RefundsReconciled,
    reconcile_refunds,
    refund_settled,
)
from dinegraph.events.brokers import Broker
from dinegraph.integrations.wechatpay import (
    DEFAULT_BASE_URL,
    WechatPayClient,
    WechatPayConfig,
    load_private_key,
    load_public_key,
)
from dinegraph.integrations.wechatpay_calls import close_order_handler
from dinegraph.settings import ConfigurationError, Settings
from dinegraph.wechatpay_notify import wechatpay_notify

log = logging.getLogger("dinegraph.payments")

NOTIFY_PATH = "/payments/wechatpay/notify"
REFUND_NOTIFY_PATH = "/payments/wechatpay/refund-notify"


def _read(path: object, setting: str) -> bytes:
    if path is None:
        raise ConfigurationError(f"WeChat Pay needs DINEGRAPH_WECHATPAY_{setting}")
    try:
        with open(str(path), "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigurationError(
            f"DINEGRAPH_WECHATPAY_{setting}: cannot read {path}: {exc}"
        ) from exc


def wechatpay_client(settings: Settings) -> WechatPayClient | None:
    """The client when DINEGRAPH_WECHATPAY_MCHID is set."""
    config = wechatpay_config(settings)
    return WechatPayClient(config) if config is not None else None


def wechatpay_config(settings: Settings) -> WechatPayConfig | None:
    """WeChat Pay's settings, keys read, when DINEGRAPH_WECHATPAY_MCHID is set; a
    ``ConfigurationError`` naming each missing or unreadable piece."""
    if not settings.wechatpay_enabled:
        return None
    s = settings
    missing = [
        name
        for name, value in (
            ("APPID", s.wechatpay_appid),
            ("MERCHANT_SERIAL_NO", s.wechatpay_merchant_serial_no),
            ("APIV3_KEY", s.wechatpay_apiv3_key),
            ("PUBLIC_KEY_ID", s.wechatpay_public_key_id),
            ("NOTIFY_URL", s.wechatpay_notify_url),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            "WeChat Pay (DINEGRAPH_WECHATPAY_MCHID is set) also needs "
            + ", ".join(f"DINEGRAPH_WECHATPAY_{m}" for m in missing)
        )
    assert s.wechatpay_mchid and s.wechatpay_appid and s.wechatpay_merchant_serial_no
    assert s.wechatpay_apiv3_key and s.wechatpay_public_key_id and s.wechatpay_notify_url
    try:
        private_key = load_private_key(_read(s.wechatpay_private_key_path, "PRIVATE_KEY_PATH"))
        public_key = load_public_key(_read(s.wechatpay_public_key_path, "PUBLIC_KEY_PATH"))
        config = WechatPayConfig(
            mchid=s.wechatpay_mchid,
            appid=s.wechatpay_appid,
            merchant_serial_no=s.wechatpay_merchant_serial_no,
            private_key=private_key,
            apiv3_key=s.wechatpay_apiv3_key.get_secret_value().encode(),
            platform_keys={s.wechatpay_public_key_id: public_key},
            platform_serial=s.wechatpay_public_key_id,
            notify_url=s.wechatpay_notify_url,
            refund_notify_url=s.wechatpay_notify_url,
            base_url=s.wechatpay_base_url or DEFAULT_BASE_URL,
            timeout_seconds=s.wechatpay_timeout_seconds,
        )
    except ValueError as exc:
        raise ConfigurationError(f"WeChat Pay settings: {exc}") from exc
    if settings.production and not s.wechatpay_notify_url.startswith("https://"):
        raise ConfigurationError("DINEGRAPH_WECHATPAY_NOTIFY_URL must be a public https:// URL")
    return config


def checkout_payments(engine: AsyncEngine, services: Services) -> CheckoutPayments | None:
    if services.wechatpay is None:
        return None
    return CheckoutPayments(services.wechatpay, SqlPrepays(engine))


def wechatpay_routes(
    engine: AsyncEngine,
    broker: Broker | None,
    services: Services,
) -> list[Route]:
    client = services.wechatpay
    if client is None:
        return []

    def new_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(
            engine, events=broker, board=services.board.unit(), calls=services.calls
        )

    async def settled(outcome: RefundOutcome, at: datetime) -> None:
        # Our references are valid out_refund_no as they are (``refund_reference``).
        event = RefundSettled(
            reference=outcome.out_refund_no,
            succeeded=outcome.succeeded,
            provider_refund_id=outcome.provider_refund_id,
            at=outcome.at or at,
            reason=outcome.reason,
        )
        await refund_settled(event, uow=new_uow())

    endpoint = wechatpay_notify(
        provider=client.name,
        reader=client,
        new_uow=new_uow,
        prepays=SqlPrepays(engine),
        clock=services.clock,
        refund_settled=settled,
    )
    return [
        Route(NOTIFY_PATH, endpoint, methods=["POST"]),
        Route(REFUND_NOTIFY_PATH, endpoint, methods=["POST"]),
    ]


async def reconcile_once(
    engine: AsyncEngine, broker: Broker | None, services: Services, quiet_for: timedelta
) -> Reconciled:
    """One round: WeChat Pay asked about quiet prepays, cancelled orders' trades closed."""
    payments = checkout_payments(engine, services)
    if payments is None:
        return Reconciled()
    return await reconcile_payments(
        services.clock(),
        payments=payments,
        new_uow=lambda: SqlUnitOfWork(
            engine, events=broker, board=services.board.unit(), calls=services.calls
        ),
        quiet_for=quiet_for,
    )


async def reconcile_refunds_once(
    engine: AsyncEngine,
    broker: Broker | None,
    services: Services,
    quiet_for: timedelta,
    *,
    after_id: int = 0,
) -> RefundsReconciled:
    """One round: WeChat Pay asked about refunds SUBMITTED and quiet for ``quiet_for``
    (their notification lost), those it has ended settled as the notification would."""
    if services.wechatpay is None:
        return RefundsReconciled()
    return await reconcile_refunds(
        services.clock(),
        provider=services.wechatpay,
        new_uow=lambda: SqlUnitOfWork(
            engine, events=broker, board=services.board.unit(), calls=services.calls
        ),
        quiet_for=quiet_for,
        after_id=after_id,
    )


def wire_payment_calls(services: Services) -> None:
    """The payment provider's calls out: WeChat Pay closes the trades of orders cancelled
    unpaid; without it (development) no trade was opened, so there is nothing to close.

    ``payment.refund`` is the refunds' own handler (``app.wire_refund_calls``), through the
    ``PaymentGateway`` (``WechatPayRefunds``).
    """
    if services.wechatpay is not None:
        services.calls.register(CLOSE_TRADE_CALL, close_order_handler(services.wechatpay))
    else:
        services.calls.register(CLOSE_TRADE_CALL, _nothing_to_close)


async def _nothing_to_close(call: OutboundCall) -> None:
    log.debug("development payments: no trade %s to close", call.key)
