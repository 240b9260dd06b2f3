"""Development adapters: what an SMS gateway, WeChat or a payment provider would do.

Selected in development mode only; production needs real adapters configured.
"""

from __future__ import annotations

import hashlib
import logging

from dinegraph.domain.orders import Order

log = logging.getLogger("dinegraph.sms")
log_payments = logging.getLogger("dinegraph.payments")


class LoggingSmsSender:
    """Development adapter: writes the code to the server log instead of texting it."""

    async def send_login_code(self, phone: str, code: str) -> None:
        log.warning("login code for %s: %s", phone, code)


class DevelopmentWechatLogin:
    """Development adapter: maps a wx.login code to an openid deterministically."""

    async def openid_for(self, code: str) -> str | None:
        if not code:
            return None
        return "dev-" + hashlib.sha256(code.encode()).hexdigest()[:24]


class DevelopmentPayments:
    """Development adapter of the payment provider: ``payOrder`` pays, refunds are logged.

    A real provider (WeChat Pay, Alipay) confirms payments through ``POST /payments/notify``
    and takes refunds through its API.
    """

    name = "development"

    async def refund(self, order: Order, amount_fen: int, reference: str) -> None:
        log_payments.warning("refund of order %s: %s fen (%s)", order.id, amount_fen, reference)
