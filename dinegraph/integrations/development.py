"""Development adapters: what an SMS gateway, WeChat or a payment provider would do.

Selected in development mode only; production needs real adapters configured.
"""

from __future__ import annotations

import hashlib
import logging

from dinegraph.domain.delivery import CallOff, Courier, CourierContact, Provider
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import distance_m
from dinegraph.domain.ports import DeliveryQuote, DispatchRequest, RefundProgress, WechatIdentity
from dinegraph.domain.refunds import RefundToSend

log = logging.getLogger("dinegraph.sms")
log_payments = logging.getLogger("dinegraph.payments")
log_delivery = logging.getLogger("dinegraph.delivery")


class LoggingSmsSender:
    """Development adapter: writes the code to the server log instead of texting it."""

    async def send_login_code(self, phone: str, code: str) -> None:
        # Logs are kept and shipped where personal data must not go: the last four digits
        # are enough to tell test phones apart.
        log.warning("login code for %s: %s", masked_phone(phone), code)


def masked_phone(phone: str) -> str:
    """``13812345678`` → ``*******5678``: what a log line may show of a phone."""
    return "*" * max(len(phone) - 4, 3) + phone[-4:]


class DevelopmentWechatLogin:
    """Development adapter: maps a wx.login code to an openid deterministically, and a
    getPhoneNumber code to the number it ends with (``dev-13812345678``)."""

    async def identity_for(self, code: str) -> WechatIdentity:
        if not code:
            raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
        return WechatIdentity("dev-" + hashlib.sha256(code.encode()).hexdigest()[:24])

    async def phone_for(self, code: str) -> str:
        return code.rpartition("-")[2]


class DevelopmentPayments:
    """Development adapter of the payment provider: ``payOrder`` pays; a refund is logged,
    then accepted and settled at once (SUBMITTED, then REFUNDED).

    A real provider (WeChat Pay, Alipay) confirms payments through ``POST /payments/notify``,
    takes refunds through its API and says later when the money arrived.
    """

    name = "development"

    async def refund(self, refund: RefundToSend, progress: RefundProgress) -> None:
        log_payments.warning(
            "refund %s of order %s: %s fen", refund.reference, refund.order_id, refund.refund_fen
        )
        provider_id = f"dev-{refund.reference}"
        await progress.submitted(provider_id)
        await progress.settled(True, provider_id)


_COURIER_NAMES = ("张师傅", "李师傅", "王师傅", "刘师傅", "陈师傅", "杨师傅", "赵师傅", "黄师傅")


class DevelopmentCourierPlatform:
    """Development adapter of a delivery platform (达达, 顺丰同城, ...): it accepts every
    order and names a courier at once. Positions and statuses then come in through the
    partner mutations, as the real platform's callbacks would (see ``dinegraph simulate``)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        n = request.delivery_id
        name = _COURIER_NAMES[n % len(_COURIER_NAMES)]
        # The courier's name stays out of the log, as a real one's would.
        log_delivery.warning(
            "%s accepted delivery %s of order %s", self.provider.value, n, request.order_id
        )
        return Courier(name, f"139{n % 100_000_000:08d}")

    async def cancel(self, delivery_id: int, why: CallOff = CallOff.REFUNDED) -> None:
        log_delivery.warning(
            "%s called off delivery %s (%s)", self.provider.value, delivery_id, why.value
        )

    async def courier_contact(self, delivery_id: int) -> CourierContact | None:
        """A made-up privacy number (a 400 line and the delivery as extension): the
        mini-program shows and dials something; it reaches nobody."""
        return CourierContact("4000000000", f"{delivery_id % 10_000:04d}")

    async def quote(self, request: DispatchRequest) -> DeliveryQuote:
        """A made-up but steady quote: 5 yuan plus 1 per km, 3 minutes per km plus 10,
        a little dearer and quicker for each platform down the list."""
        metres = distance_m(request.pickup, request.dropoff)
        step = list(Provider).index(self.provider)
        fee = 500 + metres // 10 + 100 * step
        return DeliveryQuote(fee, 600 + metres * 180 // 1000 - 60 * step, metres)
