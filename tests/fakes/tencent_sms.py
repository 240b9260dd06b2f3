"""FakeTencentSms: Tencent Cloud SMS API 3.0 ``SendSms``, checking requests as Tencent does.

Every request's TC3-HMAC-SHA256 signature is recomputed from what arrived (the signed
headers named by ``SignedHeaders``, the body's SHA-256, the credential scope): a wrong one
is ``AuthFailure.SignatureFailure``, an ``X-TC-Timestamp`` more than five minutes off is
``AuthFailure.SignatureExpire``, an unknown SecretId ``AuthFailure.SecretIdNotFound``.
Accepted messages are kept in ``messages``. ``fail`` queues what the next calls answer: an
``Error`` code, a ``SendStatusSet`` code, an HTTP status, or silence for a while.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_MAINLAND = re.compile(r"^\+861[3-9]\d{9}$")
MAX_SKEW_SECONDS = 300


@dataclass(frozen=True)
class SentSms:
    phone: str  # as Tencent received it: +8613812345678
    template_id: str
    params: list[str]
    sign_name: str


@dataclass
class _Failure:
    error: str | None = None  # Response.Error.Code
    status_code: str | None = None  # SendStatusSet[0].Code
    http_status: int | None = None
    hang: float | None = None


@dataclass
class FakeTencentSms:
    secret_id: str = "AKIDfakefakefakefakefakefakefakefake"
    secret_key: str = "fake-secret-key-fake-secret-key"
    sdk_app_id: str = "1400000001"
    sign_name: str = "味道集团"
    template_id: str = "1234567"
    region: str = "ap-guangzhou"
    messages: list[SentSms] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # the codes it answered with
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None

    def fail(
        self,
        *,
        error: str | None = None,
        status_code: str | None = None,
        http_status: int | None = None,
        hang: float | None = None,
    ) -> None:
        self._failures.append(_Failure(error, status_code, http_status, hang))

    def codes_sent_to(self, phone: str) -> list[str]:
        return [m.params[0] for m in self.messages if m.phone == f"+86{phone}"]

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return self._server.url

    def start(self) -> Self:
        self._server = BackgroundServer(
            Starlette(routes=[Route("/", self._endpoint, methods=["POST"])])
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _endpoint(self, request: Request) -> Response:
        payload = await request.body()
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None and failure.hang is not None:
            await asyncio.sleep(failure.hang)
        if failure is not None and failure.http_status is not None:
            return PlainTextResponse("bad gateway", status_code=failure.http_status)
        refused = self._authenticate(request, payload) or (
            failure.error if failure is not None else None
        )
        if refused:
            return self._error(refused)
        body, refused = _read_send_sms(request, payload)
        if refused or body is None:
            return self._error(refused or "InvalidParameter")
        if refused := self._check_account(body):
            return self._error(refused)
        statuses = []
        for phone in body.get("PhoneNumberSet", []):
            code, message = "Ok", "send success"
            if failure is not None and failure.status_code is not None:
                code, message = failure.status_code, "refused by the fake"
            elif not _MAINLAND.match(phone):
                code, message = "InvalidParameterValue.IncorrectPhoneNumber", "wrong number"
            if code == "Ok":
                with self._lock:
                    self.messages.append(
                        SentSms(
                            phone, body["TemplateId"], body["TemplateParamSet"], body["SignName"]
                        )
                    )
            else:
                self.refusals.append(code)
            statuses.append(
                {
                    "SerialNo": uuid.uuid4().hex,
                    "PhoneNumber": phone,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": "",
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN",
                }
            )
        return JSONResponse(
            {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
        )

    def _check_account(self, body: dict[str, Any]) -> str | None:
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return "InvalidParameterValue.SdkAppIdNotExist"
        if body.get("SignName") != self.sign_name:
            return "FailedOperation.SignatureIncorrectOrUnapproved"
        if body.get("TemplateId") != self.template_id:
            return "FailedOperation.TemplateIncorrectOrUnapproved"
        return None

    def _error(self, code: str) -> Response:
        self.refusals.append(code)
        return JSONResponse(
            {
                "Response": {
                    "Error": {"Code": code, "Message": f"refused by the fake: {code}"},
                    "RequestId": str(uuid.uuid4()),
                }
            }
        )

    def _authenticate(self, request: Request, payload: bytes) -> str | None:
        """Tencent's checks, computed from the request as it arrived."""
        found = _AUTHORIZATION.match(request.headers.get("authorization", ""))
        if found is None:
            return "AuthFailure.InvalidAuthorization"
        if found["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        try:
            timestamp = int(request.headers.get("x-tc-timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization"
        if abs(time.time() - timestamp) > MAX_SKEW_SECONDS:
            return "AuthFailure.SignatureExpire"
        day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if found["day"] != day or found["service"] != "sms":
            return "AuthFailure.SignatureFailure"
        signed = found["headers"].split(";")
        if "host" not in signed or "content-type" not in signed:
            return "AuthFailure.SignatureFailure"
        canonical_headers = "".join(
            f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed
        )
        canonical_request = "\n".join(
            [
                request.method,
                request.url.path,
                request.url.query,
                canonical_headers,
                found["headers"],
                hashlib.sha256(payload).hexdigest(),
            ]
        )
        scope = f"{day}/sms/tc3_request"
        string_to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n"
            + hashlib.sha256(canonical_request.encode()).hexdigest()
        )
        key = f"TC3{self.secret_key}".encode()
        for part in (day, "sms", "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, found["signature"]):
            return "AuthFailure.SignatureFailure"
        return None


def _read_send_sms(request: Request, payload: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if request.headers.get("x-tc-action") != "SendSms":
        return None, "InvalidAction"
    if request.headers.get("x-tc-version") != "2021-01-11":
        return None, "NoSuchVersion"
    try:
        body = json.loads(payload)
    except ValueError:
        return None, "InvalidParameter.JsonParseError"
    return (body, None) if isinstance(body, dict) else (None, "InvalidParameter")
