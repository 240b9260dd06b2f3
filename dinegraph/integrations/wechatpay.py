"""WeChat Pay API v3 (微信支付 APIv3), JSAPI payments: the real adapter.

- Each request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,
  signature=...,timestamp=...,serial_no=...``: SHA256-with-RSA (PKCS#1 v1.5) by the merchant's
  API key (``apiclient_key.pem``) over ``"METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n"``.
- Each answer and notification is signed by WeChat Pay over ``"TIMESTAMP\\nNONCE\\nBODY\\n"``
  (headers ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``, ``-Serial``). It is checked
  against WeChat Pay's public key (微信支付公钥, id ``PUB_KEY_ID_...``); platform
  certificates' keys can be added under their serial numbers. An unknown serial is refused.
- Notification resources are AEAD_AES_256_GCM-encrypted with the APIv3 key.

Calls run on httpx's async client: nothing blocks the event loop. A timeout or a 5xx is
``ProviderUnavailable`` (try again); a 4xx is ``ProviderRefused`` with WeChat Pay's code.
"""

from __future__ import annotations

import base64
import logging
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dinegraph.domain.calls import CallRefused
from dinegraph.domain.orders import Order
from dinegraph.domain.payments import (
    NotificationRefused,
    PaymentNotice,
    PaymentRequest,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    RefundNotice,
    RefundOutcome,
    RefundState,
    Trade,
    TradeState,
    out_refund_no,
    out_trade_no,
)
from dinegraph.domain.ports import RefundProgress
from dinegraph.domain.refunds import RefundToSend

log = logging.getLogger("dinegraph.payments")

NAME = "wechatpay"
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
NOTIFICATION_TOLERANCE_SECONDS = 300
CHINA = timezone(timedelta(hours=8))
DESCRIPTION_MAX = 127  # characters of a trade's description
_NONCE_ALPHABET = string.ascii_uppercase + string.digits


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant API key must be an RSA private key (apiclient_key.pem)")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """WeChat Pay's public key (pub_key.pem), or a platform certificate's key."""
    if b"BEGIN CERTIFICATE" in pem:
        from cryptography import x509

        key: object = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay's public key must be an RSA public key")
    return key


def nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(
            base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_message(timestamp: str, nonce_str: str, body: bytes) -> bytes:
    """What WeChat Pay signs in an answer or a notification."""
    return timestamp.encode() + b"\n" + nonce_str.encode() + b"\n" + body + b"\n"


def decrypt_resource(
    apiv3_key: bytes, *, nonce_str: str, associated_data: str, ciphertext: str
) -> bytes:
    """AEAD_AES_256_GCM: the APIv3 key, the resource's nonce and associated data; the
    ciphertext ends with the 16-byte tag. ``InvalidTag`` when anything was altered."""
    data = base64.b64decode(ciphertext, validate=True)
    return AESGCM(apiv3_key).decrypt(nonce_str.encode(), data, associated_data.encode())


def rfc3339(moment: datetime) -> str:
    """``2026-12-02T18:30:00+08:00``, as WeChat Pay writes times."""
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class WechatPayConfig:
    mchid: str
    appid: str
    merchant_serial_no: str
    private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    # WeChat Pay's keys by id: its public key's PUB_KEY_ID_..., platform certificates' serials.
    platform_keys: Mapping[str, rsa.RSAPublicKey]
    notify_url: str
    refund_notify_url: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 5.0
    # The key id sent as Wechatpay-Serial (the public key's id in public-key mode).
    platform_serial: str = field(default="")

    def __post_init__(self) -> None:
        if len(self.apiv3_key) != 32:
            raise ValueError("the APIv3 key (APIv3 密钥) is 32 characters long")
        if not self.platform_keys:
            raise ValueError("WeChat Pay's public key (微信支付公钥) is needed to verify answers")


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def trade_of(data: Mapping[str, Any]) -> Trade:
    """A transaction resource (a query's answer or a decrypted notification) as a ``Trade``."""
    amount = data.get("amount") or {}
    total = amount.get("total") if isinstance(amount, Mapping) else None
    return Trade(
        out_trade_no=str(data["out_trade_no"]),
        state=TradeState(str(data["trade_state"])),
        transaction_id=str(data["transaction_id"]) if data.get("transaction_id") else None,
        amount_fen=total if isinstance(total, int) and not isinstance(total, bool) else None,
        paid_at=_time(data.get("success_time")),
    )


class WechatPayClient:
    """The merchant's API calls, signed, and WeChat Pay's answers, verified."""

    name = NAME

    def __init__(self, config: WechatPayConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(
            base_url=config.base_url, timeout=config.timeout_seconds
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- signing and verifying -------------------------------------------------------

    def authorization(
        self, method: str, url: str, body: str, *, timestamp: str, nonce_str: str
    ) -> str:
        c = self.config
        message = f"{method}\n{url}\n{timestamp}\n{nonce_str}\n{body}\n"
        signature = rsa_sign(c.private_key, message)
        return (
            f'{SCHEMA} mchid="{c.mchid}",nonce_str="{nonce_str}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{c.merchant_serial_no}"'
        )

    def verifies(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when WeChat Pay signed ``body`` with a key we know; else why not."""
        serial = headers.get("wechatpay-serial", "")
        key = self.config.platform_keys.get(serial)
        if key is None:
            return f"unknown Wechatpay-Serial {serial!r}"
        timestamp = headers.get("wechatpay-timestamp", "")
        nonce_str = headers.get("wechatpay-nonce", "")
        signature = headers.get("wechatpay-signature", "")
        if not (timestamp and nonce_str and signature):
            return "missing Wechatpay-* signature headers"
        if not rsa_verify(key, signed_message(timestamp, nonce_str, body), signature):
            return "wrong signature"
        return None

    def payment_request(self, prepay_id: str) -> PaymentRequest:
        """``wx.requestPayment``'s parameters: paySign is SHA256-with-RSA by the merchant key
        over ``"appId\\ntimeStamp\\nnonceStr\\npackage\\n"``."""
        app_id, time_stamp, nonce_str = self.config.appid, str(int(time.time())), nonce()
        package = f"prepay_id={prepay_id}"
        pay_sign = rsa_sign(
            self.config.private_key, f"{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n"
        )
        return PaymentRequest(
            app_id=app_id,
            time_stamp=time_stamp,
            nonce_str=nonce_str,
            package=package,
            sign_type="RSA",
            pay_sign=pay_sign,
        )

    async def _call(
        self, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One signed call: the status and the verified JSON answer ({} for 204)."""
        body = orjson.dumps(payload).decode() if payload is not None else ""
        headers = {
            "Authorization": self.authorization(
                method, path, body, timestamp=str(int(time.time())), nonce_str=nonce()
            ),
            "Accept": "application/json",
            "User-Agent": "dinegraph",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.config.platform_serial:
            headers["Wechatpay-Serial"] = self.config.platform_serial
        try:
            answer = await self._http.request(method, path, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"WeChat Pay {method} {path}: {exc!r}") from exc
        why = self.verifies(answer.headers, answer.content)
        if why is not None:
            # A forged or garbled answer is not believed; the call may be tried again.
            raise ProviderUnavailable(
                f"WeChat Pay {method} {path} answered {answer.status_code}, {why}"
            )
        data: dict[str, Any] = {}
        if answer.content:
            try:
                parsed = orjson.loads(answer.content)
            except orjson.JSONDecodeError as exc:
                raise ProviderUnavailable(f"WeChat Pay {method} {path}: not JSON") from exc
            if isinstance(parsed, dict):
                data = parsed
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ProviderUnavailable(
                f"WeChat Pay {method} {path}: {answer.status_code} {data.get('code')}"
            )
        if answer.status_code >= 400:
            raise ProviderRefused(
                str(data.get("code", answer.status_code)), str(data.get("message", ""))
            )
        return answer.status_code, data

    # --- the calls ---------------------------------------------------------------------

    async def prepay(self, order: Order, payer: str) -> str:
        c = self.config
        payload = {
            "appid": c.appid,
            "mchid": c.mchid,
            "description": f"订单 {out_trade_no(order.id)}"[:DESCRIPTION_MAX],
            "out_trade_no": out_trade_no(order.id),
            "time_expire": rfc3339(order.pay_by),
            "notify_url": c.notify_url,
            "amount": {"total": order.total_fen, "currency": "CNY"},
            "payer": {"openid": payer},
        }
        _, data = await self._call("POST", "/v3/pay/transactions/jsapi", payload)
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise ProviderUnavailable("WeChat Pay answered a prepay without prepay_id")
        return prepay_id

    async def query(self, trade_no: str) -> Trade | None:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(trade_no, safe='')}"
            f"?mchid={quote(self.config.mchid, safe='')}"
        )
        try:
            _, data = await self._call("GET", path)
        except ProviderRefused as refused:
            if refused.code == "ORDER_NOT_EXIST":
                return None
            raise
        try:
            return trade_of(data)
        except (KeyError, ValueError) as exc:
            raise ProviderUnavailable(f"WeChat Pay answered a trade query oddly: {exc}") from exc

    async def close(self, trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(trade_no, safe='')}/close"
        await self._call("POST", path, {"mchid": self.config.mchid})

    async def refund(
        self, *, trade_no: str, refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> str:
        payload: dict[str, Any] = {
            "out_trade_no": trade_no,
            "out_refund_no": refund_no,
            "notify_url": self.config.refund_notify_url,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        }
        if reason:
            payload["reason"] = reason[:80]
        try:
            _, data = await self._call("POST", "/v3/refund/domestic/refunds", payload)
        except ProviderRefused as refused:
            # The same out_refund_no sent again (a retry after a lost answer): it exists.
            return await self._existing_refund(refund_no, refused)
        refund_id = data.get("refund_id")
        if not isinstance(refund_id, str):
            raise ProviderUnavailable("WeChat Pay answered a refund without refund_id")
        return refund_id

    async def _existing_refund(self, refund_no: str, refused: ProviderRefused) -> str:
        try:
            found = await self.query_refund(refund_no)
        except ProviderRefused:
            raise refused from None
        # Found in any state (PROCESSING too): WeChat Pay has it, so it was sent.
        if found is None or found.provider_refund_id is None:
            raise refused
        return found.provider_refund_id

    async def query_refund(self, refund_no: str) -> ProviderRefund | None:
        """查询单笔退款（通过商户退款单号）: the refund as WeChat Pay has it, its answer
        verified; None when it has none of that number."""
        path = f"/v3/refund/domestic/refunds/{quote(refund_no, safe='')}"
        try:
            _, data = await self._call("GET", path)
        except ProviderRefused as refused:
            if refused.code in ("RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST"):
                return None
            raise
        try:
            return _provider_refund(data, default_status=RefundState.PROCESSING.value)
        except (KeyError, ValueError) as exc:
            raise ProviderUnavailable(f"WeChat Pay answered a refund query oddly: {exc}") from exc

    # --- notifications -------------------------------------------------------------------

    def read_notification(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> PaymentNotice | RefundNotice | None:
        """A notification checked (signature, freshness, our merchant and app) and decrypted.

        None for an event we do not act on (answered as received). ``NotificationRefused``
        when it is forged, altered, stale, or not for us.
        """
        why = self.verifies(headers, body)
        if why is not None:
            raise NotificationRefused("SIGN_ERROR", why)
        try:
            stamp = int(headers.get("wechatpay-timestamp", ""))
        except ValueError:
            raise NotificationRefused("SIGN_ERROR", "bad Wechatpay-Timestamp") from None
        if abs(now - stamp) > NOTIFICATION_TOLERANCE_SECONDS:
            raise NotificationRefused("SIGN_ERROR", "stale notification")
        notification_id, event, data = self._open(body)
        if not isinstance(data, dict) or data.get("mchid") != self.config.mchid:
            raise NotificationRefused("PARAM_ERROR", "not for our merchant id")
        if event.startswith("TRANSACTION."):
            if data.get("appid") != self.config.appid:
                raise NotificationRefused("PARAM_ERROR", "not for our app id")
            try:
                trade = trade_of(data)
            except (KeyError, ValueError) as exc:
                raise NotificationRefused("PARAM_ERROR", f"malformed trade: {exc}") from None
            if trade.state is not TradeState.SUCCESS:
                return None
            return PaymentNotice(notification_id, trade)
        if event.startswith("REFUND."):
            try:
                outcome = _refund_outcome(data, default_status=event.removeprefix("REFUND."))
            except (KeyError, ValueError) as exc:
                raise NotificationRefused("PARAM_ERROR", f"malformed refund: {exc}") from None
            return RefundNotice(notification_id, outcome) if outcome is not None else None
        return None

    def _open(self, body: bytes) -> tuple[str, str, Any]:
        """The notification's id, its event type and its decrypted resource."""
        try:
            envelope = orjson.loads(body)
            event = str(envelope["event_type"])
            resource = envelope["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("unknown algorithm")
            plain = decrypt_resource(
                self.config.apiv3_key,
                nonce_str=str(resource["nonce"]),
                associated_data=str(resource.get("associated_data") or ""),
                ciphertext=str(resource["ciphertext"]),
            )
            return str(envelope.get("id", "")), event, orjson.loads(plain)
        except InvalidTag:
            raise NotificationRefused("DECRYPT_ERROR", "the resource does not decrypt") from None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotificationRefused("PARAM_ERROR", f"malformed notification: {exc}") from None


def _provider_refund(data: Mapping[str, Any], *, default_status: str) -> ProviderRefund:
    """A refund resource: ``status`` in a query's answer, ``refund_status`` in a
    notification; ``success_time`` once it succeeded."""
    status = str(data.get("refund_status") or data.get("status") or default_status)
    try:
        state = RefundState(status)
    except ValueError:
        raise ValueError(f"unknown refund status {status}") from None
    return ProviderRefund(
        out_refund_no=str(data["out_refund_no"]),
        state=state,
        provider_refund_id=str(data["refund_id"]) if data.get("refund_id") else None,
        at=_time(data.get("success_time")),
    )


def _refund_outcome(data: Mapping[str, Any], *, default_status: str) -> RefundOutcome | None:
    """SUCCESS → succeeded; CLOSED or ABNORMAL → failed; PROCESSING → not over (None)."""
    return _provider_refund(data, default_status=default_status).outcome


class WechatPayRefunds:
    """The ``PaymentGateway`` through WeChat Pay: an APPROVED refund's call out
    (``payment.refund``, keyed by the refund's reference) asks the refund API with that
    reference as out_refund_no, so a retry, or a call WeChat Pay had before, refunds once.
    Its acceptance makes the refund SUBMITTED; the refund notification settles it."""

    name = NAME

    def __init__(self, client: WechatPayClient) -> None:
        self.client = client

    async def refund(self, refund: RefundToSend, progress: RefundProgress) -> None:
        try:
            refund_id = await self.client.refund(
                trade_no=refund.out_trade_no,
                refund_no=out_refund_no(refund.reference),
                refund_fen=refund.refund_fen,
                total_fen=refund.total_fen,
                reason=refund.reason,
            )
        except ProviderRefused as exc:  # for good; ProviderUnavailable: the relay retries
            raise CallRefused(f"WeChat Pay refused the refund: {exc.code}") from exc
        await progress.submitted(refund_id)
