"""Login codes by text message through Tencent Cloud SMS (API 3.0 ``SendSms``).

Every request is signed with TC3-HMAC-SHA256 (SecretId/SecretKey); the template gets the
code and its minutes of validity (``TemplateParamSet: [code, minutes]``).

Tencent's answers become UserErrors (``integrations.outside``): ``Response.Error`` or a
``SendStatusSet[].Code`` other than ``Ok`` is a refusal (for good: the number is wrong,
a limit is reached, a credential or the template is wrong) except ``InternalError.*`` and
``RequestLimitExceeded``, which, as a 5xx, a transport error or a timeout, mean "try again
later". The log shows the masked number and Tencent's serial number, never the code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from dinegraph.domain.errors import ErrorCode
from dinegraph.domain.members import CODE_TTL, mask_phone
from dinegraph.integrations.outside import ProviderRefused, ProviderUnavailable

log = logging.getLogger("dinegraph.sms")

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"

_RETRYABLE = ("InternalError", "RequestLimitExceeded")
_LIMITS = {  # Tencent's per-number limits and how long they last
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600,
    "LimitExceeded.PhoneNumberDailyLimit": 86400,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 86400,
    "LimitExceeded.PhoneNumberCountLimit": 86400,
    "LimitExceeded.DailyLimit": 86400,
}
_WRONG_NUMBER = (
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "UnsupportedOperation.UnsupportedRegion",
)


@dataclass(frozen=True, slots=True)
class TencentSmsConfig:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    endpoint: str = DEFAULT_ENDPOINT
    timeout_seconds: float = 5.0


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    payload: bytes,
    timestamp: int,
    action: str = ACTION,
    service: str = SERVICE,
) -> str:
    """The ``Authorization`` header of a POST of ``payload`` (TC3-HMAC-SHA256)."""
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host.lower()}\nx-tc-action:{action.lower()}\n",
            SIGNED_HEADERS,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


class TencentSms:
    """The SmsSender port against Tencent Cloud SMS."""

    def __init__(self, config: TencentSmsConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._host = urlsplit(config.endpoint).netloc
        self._http = httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_login_code(self, phone: str, code: str) -> None:
        minutes = int(CODE_TTL.total_seconds() // 60)
        await self.send(phone, [code, str(minutes)])

    async def send(self, phone: str, params: list[str]) -> str:
        """Text the template filled with ``params`` to a mainland number; Tencent's serial."""
        cfg = self.config
        payload = json.dumps(
            {
                "PhoneNumberSet": [f"+86{phone}"],
                "SmsSdkAppId": cfg.sdk_app_id,
                "SignName": cfg.sign_name,
                "TemplateId": cfg.template_id,
                "TemplateParamSet": params,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = int(self._clock())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=cfg.secret_id,
                secret_key=cfg.secret_key,
                host=self._host,
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": ACTION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": VERSION,
            "X-TC-Region": cfg.region,
        }
        masked = mask_phone(phone)
        try:
            response = await self._http.post(cfg.endpoint, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            log.warning("SMS to %s: Tencent did not answer in time", masked)
            raise ProviderUnavailable(["phone"], reason="SendSms timed out") from exc
        except httpx.HTTPError as exc:
            log.warning("SMS to %s: %s", masked, type(exc).__name__)
            raise ProviderUnavailable(["phone"], reason=type(exc).__name__) from exc
        if response.status_code != 200:
            log.warning("SMS to %s: Tencent answered HTTP %s", masked, response.status_code)
            raise ProviderUnavailable(["phone"], reason=f"HTTP {response.status_code}")
        try:
            answer: Any = response.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable(["phone"], reason="not a Tencent answer") from exc
        error = answer.get("Error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            _refuse(str(error.get("Code")), str(error.get("Message")), masked)
        statuses = answer.get("SendStatusSet") if isinstance(answer, dict) else None
        if (
            not isinstance(statuses, list)
            or len(statuses) != 1
            or not isinstance(statuses[0], dict)
        ):
            raise ProviderUnavailable(["phone"], reason="no SendStatusSet")
        status = statuses[0]
        if status.get("Code") != "Ok":
            _refuse(str(status.get("Code")), str(status.get("Message")), masked)
        serial = str(status.get("SerialNo", ""))
        log.info("SMS to %s sent: serial %s", masked, serial)
        return serial


def _refuse(code: str, message: str, masked: str | None) -> NoReturn:
    if code.startswith(_RETRYABLE):
        log.warning("SMS to %s: Tencent is busy (%s)", masked, code)
        raise ProviderUnavailable(["phone"], reason=code)
    if code in _LIMITS:
        log.info("SMS to %s refused: %s", masked, code)
        raise ProviderRefused(ErrorCode.RATE_LIMITED, ["phone"], reason=code, seconds=_LIMITS[code])
    if code in _WRONG_NUMBER:
        log.info("SMS to %s refused: %s", masked, code)
        raise ProviderRefused(ErrorCode.INVALID_PHONE, ["phone"], reason=code)
    # Credentials, signature, template, balance: the operator has to act.
    log.error("SMS to %s refused: %s %s", masked, code, message)
    raise ProviderRefused(ErrorCode.PROVIDER_UNAVAILABLE, ["phone"], reason=code)
