"""Development adapters: what a real SMS gateway or WeChat would do, without either.

Selected in development mode only; production needs real adapters configured.
"""

from __future__ import annotations

import hashlib
import logging

log = logging.getLogger("dinegraph.sms")


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
