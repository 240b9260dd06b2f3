"""``FakeWechatPay``: WeChat Pay API v3 on a loopback port, for tests.

A Starlette app under uvicorn in a background thread, with a platform key pair of its own
(its "微信支付公钥", known by a ``PUB_KEY_ID_...``). Like WeChat Pay it:

- refuses a request whose ``Authorization`` is not the merchant's signature over
  ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (401 ``SIGN_ERROR``);
- signs every answer (``Wechatpay-Timestamp``/``-Nonce``/``-Signature``/``-Serial``);
- keeps trades (JSAPI prepay, query, close) and refunds (create, query by
  ``out_refund_no``; the same ``out_refund_no`` twice is one refund), which stay
  PROCESSING until the test ends them (``end_refund``, ``refund_notification``);
- sends notifications signed and AEAD_AES_256_GCM-encrypted with the APIv3 key.

It can be told to fail (``fail_with``), to hang (``hanging``) or to sign its answers with a
key not its own (``answer_signing_key``), and it was written from
WeChat Pay's documentation, not from the adapter: the two share no code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CHINA = timezone(timedelta(hours=8))


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _wechat_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


@dataclass
class FakeTrade:
    appid: str
    mchid: str
    out_trade_no: str
    description: str
    time_expire: str
    notify_url: str
    total: int
    openid: str
    prepay_id: str
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None

    def resource(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.state,
            "trade_state_desc": self.state,
            "payer": {"openid": self.openid},
            "amount": {"total": self.total, "currency": "CNY"},
        }
        if self.transaction_id is not None:
            data |= {
                "transaction_id": self.transaction_id,
                "bank_type": "OTHERS",
                "attach": "",
                "success_time": self.success_time,
                "amount": {
                    "total": self.total,
                    "payer_total": self.total,
                    "currency": "CNY",
                    "payer_currency": "CNY",
                },
            }
        return data


@dataclass
class FakeRefund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    refund: int
    total: int
    reason: str
    notify_url: str
    status: str = "PROCESSING"
    success_time: str | None = None


@dataclass
class Notification:
    """A notification as WeChat Pay sends it: the body and its headers."""

    body: bytes
    headers: dict[str, str]


@dataclass
class FakeWechatPay:
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_public_key: rsa.RSAPublicKey
    apiv3_key: bytes
    public_key_id: str = field(default_factory=lambda: f"PUB_KEY_ID_{secrets.token_hex(8)}")
    platform_key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)
    trades: dict[str, FakeTrade] = field(default_factory=dict)
    refunds: dict[str, FakeRefund] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path) accepted
    refused: list[tuple[str, str]] = field(default_factory=list)  # refused for the signature
    # Answer every call with (status, code) instead; or hold it until the client gives up.
    fail_with: tuple[int, str] | None = None
    hanging: bool = False
    # Sign answers with this key instead of the platform key (a forged or garbled answer).
    answer_signing_key: rsa.RSAPrivateKey | None = None
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    # --- running -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def platform_public_pem(self) -> bytes:
        return public_pem(self.platform_key.public_key())

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-wechatpay", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("FakeWechatPay did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.hanging = False
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeWechatPay]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # --- what a test makes happen ------------------------------------------------------------

    def pay(self, out_trade_no: str) -> FakeTrade:
        """The customer pays in WeChat: the trade succeeds."""
        trade = self.trades[out_trade_no]
        assert trade.state == "NOTPAY", trade.state
        trade.state = "SUCCESS"
        trade.transaction_id = f"42000{secrets.randbelow(10**23):023d}"
        trade.success_time = _wechat_time(datetime.now(UTC))
        return trade

    def notification(
        self,
        resource: dict[str, Any],
        *,
        event_type: str = "TRANSACTION.SUCCESS",
        timestamp: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
        apiv3_key: bytes | None = None,
    ) -> Notification:
        """A notification of ``resource``, signed and encrypted as WeChat Pay does; each
        keyword makes it wrong in one way."""
        nonce = secrets.token_urlsafe(9)[:12]
        associated = "transaction" if event_type.startswith("TRANSACTION") else "refund"
        sealed = AESGCM(apiv3_key or self.apiv3_key).encrypt(
            nonce.encode(), orjson.dumps(resource), associated.encode()
        )
        body = orjson.dumps(
            {
                "id": str(uuid.uuid4()),
                "create_time": _wechat_time(datetime.now(UTC)),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "支付成功" if associated == "transaction" else "退款状态变更",
                "resource": {
                    "original_type": associated,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode(),
                    "associated_data": associated,
                    "nonce": nonce,
                },
            }
        )
        return Notification(body, self._signed_headers(body, timestamp, signing_key, serial))

    def paid_notification(self, out_trade_no: str, **wrong: Any) -> Notification:
        return self.notification(self.trades[out_trade_no].resource(), **wrong)

    def end_refund(self, out_refund_no: str, status: str = "SUCCESS") -> FakeRefund:
        """WeChat Pay finishes a refund (SUCCESS, CLOSED or ABNORMAL); no notification is
        sent (see ``refund_notification``)."""
        refund = self.refunds[out_refund_no]
        assert refund.status == "PROCESSING", refund.status
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = _wechat_time(datetime.now(UTC))
        return refund

    def refund_notification(self, out_refund_no: str, status: str = "SUCCESS") -> Notification:
        refund = self.refunds[out_refund_no]
        if refund.status == "PROCESSING":
            self.end_refund(out_refund_no, status)
        resource = {
            "mchid": self.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": self.trades[refund.out_trade_no].transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": status,
            "success_time": refund.success_time or _wechat_time(datetime.now(UTC)),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        return self.notification(resource, event_type=f"REFUND.{status}")

    async def send(self, notification: Notification, url: str) -> httpx.Response:
        """POST a notification to our server, as WeChat Pay does."""
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(
                url,
                content=notification.body,
                headers={"content-type": "application/json", **notification.headers},
            )

    # --- the protocol ------------------------------------------------------------------------

    def _signed_headers(
        self,
        body: bytes,
        timestamp: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        message = stamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sign(signing_key or self.platform_key, message),
            "Wechatpay-Serial": serial or self.public_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Request-ID": str(uuid.uuid4()),
        }

    def _answer(self, status: int, data: dict[str, Any] | None = None) -> Response:
        body = orjson.dumps(data) if data is not None else b""
        headers = self._signed_headers(body, signing_key=self.answer_signing_key)
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return Response(body, status_code=status, headers=headers)

    def _error(self, status: int, code: str, message: str = "") -> Response:
        return self._answer(status, {"code": code, "message": message or code})

    def _signed_by_merchant(self, request: Request, body: bytes) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, params = header.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return False
        fields: dict[str, str] = {}
        for part in params.split(","):
            key, _, value = part.partition("=")
            fields[key.strip()] = value.strip().strip('"')
        if fields.get("mchid") != self.mchid or fields.get("serial_no") != self.merchant_serial_no:
            return False
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        message = (
            (
                f"{request.method}\n{url}\n{fields.get('timestamp', '')}\n"
                f"{fields.get('nonce_str', '')}\n"
            ).encode()
            + body
            + b"\n"
        )
        try:
            fresh = abs(time.time() - int(fields.get("timestamp", "0"))) <= 300
        except ValueError:
            return False
        return fresh and verify(self.merchant_public_key, message, fields.get("signature", ""))

    def _app(self) -> Starlette:
        def route(path: str, method: str, handler: Callable[..., Any]) -> Route:
            async def endpoint(request: Request) -> Response:
                body = await request.body()
                if not self._signed_by_merchant(request, body):
                    self.refused.append((request.method, request.url.path))
                    return self._error(401, "SIGN_ERROR", "签名错误")
                # The flag is set from the test's thread, not on this server's loop.
                while self.hanging:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                if self.fail_with is not None:
                    return self._error(*self.fail_with)
                self.calls.append((request.method, request.url.path))
                data = orjson.loads(body) if body else {}
                answer: Response = handler(request, data)
                return answer

            return Route(path, endpoint, methods=[method])

        return Starlette(
            routes=[
                route("/v3/pay/transactions/jsapi", "POST", self._jsapi),
                route("/v3/pay/transactions/out-trade-no/{no}", "GET", self._query),
                route("/v3/pay/transactions/out-trade-no/{no}/close", "POST", self._close),
                route("/v3/refund/domestic/refunds", "POST", self._refund),
                route("/v3/refund/domestic/refunds/{no}", "GET", self._query_refund),
            ]
        )

    def _jsapi(self, request: Request, data: dict[str, Any]) -> Response:
        try:
            no, total = str(data["out_trade_no"]), int(data["amount"]["total"])
            openid = str(data["payer"]["openid"])
            required = (data["appid"], data["description"], data["notify_url"])
        except (KeyError, TypeError, ValueError):
            return self._error(400, "PARAM_ERROR", "缺少参数")
        if data.get("mchid") != self.mchid or data["appid"] != self.appid:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not (6 <= len(no) <= 32) or not all(required):
            return self._error(400, "PARAM_ERROR", "参数错误")
        existing = self.trades.get(no)
        if existing is not None:
            if existing.state == "SUCCESS":
                return self._error(400, "ORDERPAID", "该订单已支付")
            if existing.state == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            if (existing.total, existing.openid) != (total, openid):
                return self._error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            return self._answer(200, {"prepay_id": existing.prepay_id})
        trade = FakeTrade(
            appid=str(data["appid"]),
            mchid=self.mchid,
            out_trade_no=no,
            description=str(data["description"]),
            time_expire=str(data.get("time_expire", "")),
            notify_url=str(data["notify_url"]),
            total=total,
            openid=openid,
            prepay_id=f"wx{secrets.token_hex(15)}",
        )
        self.trades[no] = trade
        return self._answer(200, {"prepay_id": trade.prepay_id})

    def _query(self, request: Request, data: dict[str, Any]) -> Response:
        if request.query_params.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid")
        trade = self.trades.get(request.path_params["no"])
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._answer(200, trade.resource())

    def _close(self, request: Request, data: dict[str, Any]) -> Response:
        if data.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid")
        trade = self.trades.get(request.path_params["no"])
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.state == "SUCCESS":
            return self._error(400, "ORDERPAID", "订单已支付")
        trade.state = "CLOSED"
        return self._answer(204)

    def _refund(self, request: Request, data: dict[str, Any]) -> Response:
        try:
            no, trade_no = str(data["out_refund_no"]), str(data["out_trade_no"])
            amount = data["amount"]
            refund, total = int(amount["refund"]), int(amount["total"])
        except (KeyError, TypeError, ValueError):
            return self._error(400, "PARAM_ERROR", "缺少参数")
        trade = self.trades.get(trade_no)
        if trade is None or trade.state not in ("SUCCESS", "REFUND"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = self.refunds.get(no)
        if existing is not None:
            # WeChat Pay answers a repeated out_refund_no with the refund it has.
            return self._answer(200, self._refund_resource(existing))
        refunded = sum(r.refund for r in self.refunds.values() if r.out_trade_no == trade_no)
        if total != trade.total or refund <= 0 or refunded + refund > trade.total:
            return self._error(400, "INVALID_REQUEST", "退款金额不合法")
        made = FakeRefund(
            out_refund_no=no,
            out_trade_no=trade_no,
            refund_id=f"50300{secrets.randbelow(10**23):023d}",
            refund=refund,
            total=total,
            reason=str(data.get("reason", "")),
            notify_url=str(data.get("notify_url", "")),
        )
        self.refunds[no] = made
        trade.state = "REFUND"
        return self._answer(200, self._refund_resource(made))

    def _query_refund(self, request: Request, data: dict[str, Any]) -> Response:
        refund = self.refunds.get(request.path_params["no"])
        if refund is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self._answer(200, self._refund_resource(refund))

    def _refund_resource(self, refund: FakeRefund) -> dict[str, Any]:
        # 查询单笔退款's answer: ``status``, and ``success_time`` once it is SUCCESS.
        resource: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": self.trades[refund.out_trade_no].transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _wechat_time(datetime.now(UTC)),
            "status": refund.status,
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "currency": "CNY",
            },
        }
        if refund.success_time is not None:
            resource["success_time"] = refund.success_time
        return resource


@dataclass(frozen=True)
class Merchant:
    """A merchant account made for one test: its key files and the settings naming them."""

    key: rsa.RSAPrivateKey
    env: dict[str, str]  # DINEGRAPH_WECHATPAY_* for a server process

    @property
    def overrides(self) -> dict[str, Any]:
        """The same as Settings fields (typed), for an in-process app."""
        from dinegraph.settings import Settings

        names = {k.removeprefix("DINEGRAPH_").lower(): v for k, v in self.env.items()}
        typed = Settings.model_validate(names)
        return {name: getattr(typed, name) for name in names}


def new_merchant(
    directory: Any,
    *,
    notify_url: str = "https://shop.example.com/payments/wechatpay/notify",
    appid: str = "wxd678efh567hg6787",
) -> tuple[FakeWechatPay, Merchant]:
    """A fresh merchant key pair and APIv3 key, a ``FakeWechatPay`` that knows them (not yet
    started), and the settings pointing the adapter at it once it runs (``base_url`` is
    filled in by ``merchant_env``). ``appid``: the mini-program the merchant is bound to."""
    key = new_rsa_key()
    apiv3_key = secrets.token_hex(16)
    fake = FakeWechatPay(
        mchid="1900000109",
        appid=appid,
        merchant_serial_no=secrets.token_hex(20).upper(),
        merchant_public_key=key.public_key(),
        apiv3_key=apiv3_key.encode(),
    )
    private_path = directory / "apiclient_key.pem"
    private_path.write_bytes(private_pem(key))
    public_path = directory / "pub_key.pem"
    public_path.write_bytes(fake.platform_public_pem())
    env = {
        "DINEGRAPH_WECHATPAY_MCHID": fake.mchid,
        "DINEGRAPH_WECHATPAY_APPID": fake.appid,
        "DINEGRAPH_WECHATPAY_MERCHANT_SERIAL_NO": fake.merchant_serial_no,
        "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH": str(private_path),
        "DINEGRAPH_WECHATPAY_APIV3_KEY": apiv3_key,
        "DINEGRAPH_WECHATPAY_PUBLIC_KEY_PATH": str(public_path),
        "DINEGRAPH_WECHATPAY_PUBLIC_KEY_ID": fake.public_key_id,
        "DINEGRAPH_WECHATPAY_NOTIFY_URL": notify_url,
        "DINEGRAPH_WECHATPAY_TIMEOUT_SECONDS": "2",
    }
    return fake, Merchant(key, env)


def merchant_env(fake: FakeWechatPay, merchant: Merchant) -> dict[str, str]:
    """The merchant's settings, pointed at the running fake."""
    return {**merchant.env, "DINEGRAPH_WECHATPAY_BASE_URL": fake.url}


def merchant_overrides(fake: FakeWechatPay, merchant: Merchant) -> dict[str, Any]:
    return {**merchant.overrides, "wechatpay_base_url": fake.url}
