"""Going live, the whole way: a `dinegraph serve` process in production mode, its outside
systems the fakes on loopback ports (WeChat, Tencent SMS, WeChat Pay). A member signs in
with WeChat, pays through WeChat Pay, asks for a refund that the store approves and WeChat
Pay settles, and signs in again by SMS; all with the mini-program's own documents, the
member's page following `OrderUpdates` over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.databases import ON_POSTGRES, broker_url
from tests.e2e.conftest import PATIENCE_SECONDS, SERVER_LOGS, run_cli, running_server
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.wechat import FakeWechatServer
from tests.fakes.wechatpay_server import FakeWechatPay, merchant_env, new_merchant
from tests.integration.test_client_documents import operation_document
from tests.shop import new_shop, new_sku
from tests.wsclient import Session, session

NOTIFY_PATH = "/payments/wechatpay/notify"
REFUND_CALL = ("POST", "/v3/refund/domestic/refunds")
# Staff's console, not the mini-program: no document of the mini-program approves refunds.
APPROVE = """
mutation ApproveRefund($input: ApproveRefundInput!) {
  approveRefund(input: $input) { refund { id status } errors { code message } }
}
"""
# The order and its refund, as the member's order page sees them advance.
STEPS = [
    ("PENDING_PAYMENT", None),
    ("PAID", None),
    ("PAID", "REQUESTED"),
    ("PAID", "APPROVED"),
    ("REFUNDED", "APPROVED"),
    ("REFUNDED", "SUBMITTED"),
    ("REFUNDED", "REFUNDED"),
]


def _adapters_env(wechat: FakeWechatServer, sms: FakeTencentSms) -> dict[str, str]:
    return {
        "DINEGRAPH_MODE": "production",
        "DINEGRAPH_WECHAT_APPID": wechat.appid,
        "DINEGRAPH_WECHAT_SECRET": wechat.secret,
        "DINEGRAPH_WECHAT_API_BASE": wechat.url,
        "DINEGRAPH_TENCENT_SECRET_ID": sms.secret_id,
        "DINEGRAPH_TENCENT_SECRET_KEY": sms.secret_key,
        "DINEGRAPH_TENCENT_SMS_SDK_APP_ID": sms.sdk_app_id,
        "DINEGRAPH_TENCENT_SMS_SIGN_NAME": sms.sign_name,
        "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID": sms.template_id,
        "DINEGRAPH_TENCENT_SMS_REGION": sms.region,
        "DINEGRAPH_TENCENT_SMS_ENDPOINT": sms.url,
    }


async def _send(
    client: httpx.AsyncClient, name: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    """The mini-program's operation ``name``; its one root field's answer."""
    return await _post(client, operation_document(name), variables, token, name)


async def _post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    token: str | None = None,
    name: str | None = None,
) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "operationName": name, "variables": variables},
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def _step(order: dict[str, Any]) -> tuple[str, str | None]:
    refunds = order["refunds"]
    return order["status"], refunds[-1]["status"] if refunds else None


async def _until(
    feed: Session, seen: list[dict[str, Any]], reached: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Reads the order's updates until one has ``reached``; each newer than the last."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        update: dict[str, Any] = (
            await feed.next_data(within=max(deadline - time.monotonic(), 0.1))
        )["orderUpdates"]
        if seen:
            assert update["version"] > seen[-1]["version"], (update, seen[-1])
        seen.append(update)
        if reached(update):
            return update


def _signed_by(merchant_key: Any, params: dict[str, str]) -> None:
    """wx.requestPayment's paySign: the merchant's RSA signature over its four lines."""
    message = "".join(f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package"))
    merchant_key.public_key().verify(
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


async def _staff_token(settings: Settings, store_id: int) -> str:
    made = await asyncio.to_thread(
        run_cli,
        settings,
        "staff-token",
        "--role",
        "STORE_MANAGER",
        "--store",
        str(store_id),
        DINEGRAPH_MODE="production",
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


async def test_a_member_signs_in_pays_and_is_refunded_through_the_real_adapters(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    shop = await new_shop(engine)  # open around the clock: production runs on the real one
    sku = await new_sku(engine, price_fen=2800, tracked=False, name="上线牛肉面")
    staff = await _staff_token(settings, shop.store_ids[0])
    # The PostgreSQL leg runs with Redis as CI's does (several processes would share it).
    broker = {"DINEGRAPH_BROKER_URL": broker_url(settings, "redis")} if ON_POSTGRES else {}
    # The merchant is bound to the mini-program (its own AppID: its own access token row).
    appid = f"wx{uuid.uuid4().hex[:16]}"
    pay, merchant = new_merchant(tmp_path, appid=appid)  # notify URL https://…: as production
    wechat, sms = FakeWechatServer(appid=appid).start(), FakeTencentSms().start()
    phone = f"136{uuid.uuid4().int % 100_000_000:08d}"
    try:
        with (
            pay.running(),
            running_server(
                settings,
                port=None,
                **_adapters_env(wechat, sms),
                **merchant_env(pay, merchant),
                **broker,
            ) as url,
        ):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                verified = await _flow(client, url, pay, merchant.key, wechat, staff, shop, sku)
                await _sign_in_by_sms(client, sms, phone)
            log = SERVER_LOGS[url].read_text()
        # What a leaked log must not give away: the number, the codes, the secrets.
        texted = sms.codes_sent_to(phone)
        for secret in (phone, verified, *texted, wechat.secret, sms.secret_key):
            assert secret not in log, secret
        assert merchant.env["DINEGRAPH_WECHATPAY_APIV3_KEY"] not in log
    finally:
        wechat.stop()
        sms.stop()


async def _flow(
    client: httpx.AsyncClient,
    url: str,
    pay: FakeWechatPay,
    merchant_key: Any,
    wechat: FakeWechatServer,
    staff: str,
    shop: Any,
    sku: int,
) -> str:
    """Steps 1, 2, 3 and 5; the number WeChat verified for the member."""
    # 1. WeChat sign-in: wx.login's code and getPhoneNumber's code, checked with WeChat.
    openid, phone = f"o-{uuid.uuid4().hex}", f"137{uuid.uuid4().int % 100_000_000:08d}"
    wechat.add_login("wx-login-flow", openid)
    wechat.add_phone_code("wx-phone-flow", phone)
    signed = await _send(
        client, "LoginWithWechat", {"code": "wx-login-flow", "phoneCode": "wx-phone-flow"}
    )
    assert signed["errors"] == [], signed
    assert signed["member"]["phone"] == _masked(phone)  # the number WeChat verified
    token = signed["token"]
    assert wechat.calls_of("jscode2session") == 1

    # 2. Place and pay: WeChat Pay opens a trade; the order waits for its word.
    placed = await _send(
        client,
        "PlaceOrder",
        {
            "input": {
                "idempotencyKey": f"going-live-{uuid.uuid4().hex}",
                "channel": "PICKUP",
                "storeId": shop.store(),
                "lines": [{"skuId": encode_id("Sku", sku), "quantity": 2}],
            }
        },
        token,
    )
    assert placed["errors"] == [], placed
    order = placed["order"]
    assert order["status"] == "PENDING_PAYMENT" and order["total"]["fen"] > 0
    seen: list[dict[str, Any]] = []
    async with session(url, {"authorization": f"Bearer {token}"}) as feed:
        await feed.subscribe(operation_document("OrderUpdates"), {"orderId": order["id"]})
        await _until(feed, seen, lambda o: o["status"] == "PENDING_PAYMENT")

        paying = await _send(client, "PayOrder", {"orderId": order["id"]}, token)
        assert paying["errors"] == [], paying
        # Not the development adapter's path: no order paid at once, a prepay to hand over.
        assert paying["order"]["status"] == "PENDING_PAYMENT" and paying["order"]["paidAt"] is None
        params = paying["wechatPayment"]
        assert params is not None and params["signType"] == "RSA"
        assert params["appId"] == pay.appid
        _signed_by(merchant_key, params)
        [trade] = [
            t for t in pay.trades.values() if params["package"] == f"prepay_id={t.prepay_id}"
        ]
        assert (trade.total, trade.openid) == (order["total"]["fen"], openid)
        assert pay.refused == []

        # The member pays in WeChat; WeChat Pay tells the server, signed and sealed.
        pay.pay(trade.out_trade_no)
        told = await pay.send(pay.paid_notification(trade.out_trade_no), url + NOTIFY_PATH)
        assert told.status_code in (200, 204), told.text
        paid = await _until(feed, seen, lambda o: o["status"] == "PAID")
        assert paid["paidAt"] is not None and paid["pickupCode"]

        # 3. The member asks for the money back; the store approves; WeChat Pay refunds.
        asked = await _send(
            client,
            "RequestRefund",
            {"input": {"orderId": order["id"], "reason": "临时有事", "idempotencyKey": "ask"}},
            token,
        )
        assert asked["errors"] == [], asked
        refund = asked["refund"]
        assert refund["status"] == "REQUESTED"
        assert refund["amount"]["fen"] == order["total"]["fen"]
        await _until(feed, seen, lambda o: _step(o) == ("PAID", "REQUESTED"))

        approved = await _post(client, APPROVE, {"input": {"refundId": refund["id"]}}, staff)
        assert approved == {"refund": {"id": refund["id"], "status": "APPROVED"}, "errors": []}
        # The outbox's relay calls WeChat Pay's refund API; its acceptance is SUBMITTED.
        submitted = await _until(feed, seen, lambda o: _step(o)[1] == "SUBMITTED")
        assert submitted["status"] == "REFUNDED"
        assert pay.calls.count(REFUND_CALL) == 1
        [made] = pay.refunds.values()
        assert (made.out_trade_no, made.refund, made.total) == (
            trade.out_trade_no,
            order["total"]["fen"],
            order["total"]["fen"],
        )

        # WeChat Pay's refund notification settles it.
        told = await pay.send(pay.refund_notification(made.out_refund_no), url + NOTIFY_PATH)
        assert told.status_code in (200, 204), told.text
        settled = await _until(feed, seen, lambda o: _step(o)[1] == "REFUNDED")
    assert settled["status"] == "REFUNDED"
    assert settled["refunded"]["fen"] == order["total"]["fen"]
    # Each step came in its order (a slow reader may be given a later one at once).
    steps = [STEPS.index(_step(o)) for o in seen]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == len(STEPS) - 1, seen
    # The order page, read afresh, says the same; WeChat Pay was asked to refund once.
    detail = await _send(client, "OrderDetail", {"id": order["id"]}, token)
    assert _step(detail) == ("REFUNDED", "REFUNDED")
    assert pay.calls.count(REFUND_CALL) == 1

    # 5. The development payment callback is not served in production.
    development = await client.post("/payments/notify", json={"orderId": order["id"], "paid": True})
    assert development.status_code == 404
    return phone


async def _sign_in_by_sms(client: httpx.AsyncClient, sms: FakeTencentSms, phone: str) -> None:
    """4. The code is texted through Tencent SMS (the fake checks the TC3 signature and
    refuses otherwise) and signs the member in."""
    asked = await _send(client, "RequestLoginCode", {"phone": phone})
    assert asked["errors"] == [], asked
    assert sms.refusals == []
    [code] = sms.codes_sent_to(phone)
    by_sms = await _send(client, "LoginWithSmsCode", {"phone": phone, "code": code})
    assert by_sms["errors"] == [] and by_sms["token"], by_sms
    assert by_sms["member"]["phone"] == _masked(phone)
