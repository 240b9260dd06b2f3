"""WeChat Pay end to end: a real `dinegraph serve` process talking to ``FakeWechatPay`` on
another loopback port, which notifies the server over HTTP as WeChat Pay would; and
`dinegraph reconcile-payments` as a process of its own."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.domain.payments import out_trade_no
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.settings import Settings
from tests.e2e.conftest import PATIENCE_SECONDS, free_port, run_cli, running_server
from tests.fakes.wechatpay_server import (
    FakeWechatPay,
    Merchant,
    merchant_env,
    merchant_overrides,
    new_merchant,
)
from tests.shop import new_member, next_noon, shop_client

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id total { fen } } errors { code message } }
}
"""
PAY = """
mutation Pay($orderId: ID!) {
  payOrder(orderId: $orderId) {
    wechatPayment { appId timeStamp nonceStr package signType paySign }
    errors { code message }
  }
}
"""
ORDER = "query($id: ID!) { order(id: $id) { status } }"
REFUNDS = "query($id: ID!) { order(id: $id) { refunds { status refusalReason } } }"
CANCEL = """
mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""
# Quiet this long, a prepay's trade is asked about by the server's reconciliation.
QUIET_SECONDS = 8


@pytest.fixture(scope="module")
def wechatpay_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, FakeWechatPay, Merchant]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fake, merchant = new_merchant(
        tmp_path_factory.mktemp("wechatpay-e2e"), notify_url=f"{url}/payments/wechatpay/notify"
    )
    with (
        fake.running(),
        running_server(
            settings,
            port=port,
            DINEGRAPH_CLOCK_START=next_noon().isoformat(),
            DINEGRAPH_WECHATPAY_RECONCILE_SECONDS="0.5",
            DINEGRAPH_WECHATPAY_RECONCILE_AFTER_SECONDS=str(QUIET_SECONDS),
            DINEGRAPH_REFUND_RECONCILE_AFTER_SECONDS=str(QUIET_SECONDS),
            **merchant_env(fake, merchant),
        ) as served,
    ):
        yield served, fake, merchant


async def _gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    body = (
        await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _pickup_order(client: httpx.AsyncClient, member: dict[str, str]) -> dict[str, Any]:
    """An order of a dish made to order at demo store 1 (no stock to run out)."""
    menu = await _gql(
        client,
        """query($s: ID!) { menu(storeId: $s, channel: PICKUP) {
            categories { products { skus { id stock { available soldOut } } } } } }""",
        {"s": encode_id("Store", 1)},
        {},
    )
    sku = next(
        sku["id"]
        for category in menu["menu"]["categories"]
        for product in category["products"]
        for sku in product["skus"]
        if sku["stock"]["available"] is None and not sku["stock"]["soldOut"]
    )
    values = {
        "idempotencyKey": f"wechatpay-{time.monotonic_ns()}",
        "channel": "PICKUP",
        "storeId": encode_id("Store", 1),
        "lines": [{"skuId": sku, "quantity": 1}],
    }
    placed = await _gql(client, PLACE, {"input": values}, member)
    assert placed["placeOrder"]["errors"] == [], placed
    order: dict[str, Any] = placed["placeOrder"]["order"]
    return order


async def _status_becomes(
    client: httpx.AsyncClient, order_id: str, member: dict[str, str], status: str
) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        found = await _gql(client, ORDER, {"id": order_id}, member)
        if found["order"]["status"] == status:
            return
        assert time.monotonic() < deadline, f"order still {found['order']['status']}"
        await asyncio.sleep(0.2)


def _trade_no(order_id: str) -> str:
    return out_trade_no(decode_id(order_id, "Order", ["id"]))


async def test_reconcile_payments_command_confirms_and_closes(
    settings: Settings, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # First in the module: once the server below runs, its own reconciliation (another
    # merchant, on the same database) would close this test's cancelled trade before us.
    fake, merchant = new_merchant(tmp_path_factory.mktemp("wechatpay-cli"))
    with fake.running():
        served = settings.model_copy(update=merchant_overrides(fake, merchant))
        async with shop_client(served, engine) as (gql, services):
            assert services.wechatpay is not None
            _, member = await new_member(settings, engine)
            paid = await _pickup_order(gql.http, member)
            cancelled = await _pickup_order(gql.http, member)
            for order in (paid, cancelled):
                body = await gql.execute(PAY, {"orderId": order["id"]}, member)
                assert body["data"]["payOrder"]["errors"] == []
            fake.pay(_trade_no(paid["id"]))
            body = await gql.execute(
                CANCEL, {"input": {"orderId": cancelled["id"], "status": "CANCELLED"}}, member
            )
            assert body["data"]["updateOrderStatus"]["errors"] == []
            await services.wechatpay.aclose()
        done = await asyncio.to_thread(
            run_cli,
            settings,
            "reconcile-payments",
            "--older-than-seconds",
            "0",
            # The shop's clock says noon (its stores are open); so does the command's.
            DINEGRAPH_CLOCK_START=(next_noon() + timedelta(minutes=5)).isoformat(),
            **merchant_env(fake, merchant),
        )
        assert done.returncode == 0, done.stderr
        # Cancelled orders other tests left on this database are closed too (WeChat Pay
        # here never heard of them): at least ours.
        said = re.fullmatch(r"confirmed 1 paid, closed (\d+), .*", done.stdout.strip())
        assert said is not None and int(said.group(1)) >= 1, done.stdout
        assert fake.trades[_trade_no(cancelled["id"])].state == "CLOSED"
        async with shop_client(served, engine) as (gql, services):
            found = await gql.execute(ORDER, {"id": paid["id"]}, member)
            assert services.wechatpay is not None
            await services.wechatpay.aclose()
        assert found["data"]["order"]["status"] == "PAID"


async def _cancelled_after_paying(
    client: httpx.AsyncClient, fake: FakeWechatPay, member: dict[str, str]
) -> str:
    """An order paid (WeChat Pay notifies the server), then cancelled by its member: its
    refund is SUBMITTED at WeChat Pay, which keeps it PROCESSING. Its out_refund_no."""
    order = await _pickup_order(client, member)
    assert (await _gql(client, PAY, {"orderId": order["id"]}, member))["payOrder"]["errors"] == []
    trade = fake.pay(_trade_no(order["id"]))
    answer = await fake.send(fake.paid_notification(trade.out_trade_no), trade.notify_url)
    assert answer.status_code == 204, answer.text
    cancelled = await _gql(
        client, CANCEL, {"input": {"orderId": order["id"], "status": "CANCELLED"}}, member
    )
    assert cancelled["updateOrderStatus"]["errors"] == []
    found = await _gql(client, REFUNDS, {"id": order["id"]}, member)
    assert [r["status"] for r in found["order"]["refunds"]] == ["SUBMITTED"]
    (refund,) = [r for r in fake.refunds.values() if r.out_trade_no == trade.out_trade_no]
    return refund.out_refund_no


async def test_reconcile_payments_command_settles_a_refund_whose_notification_was_lost(
    settings: Settings, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fake, merchant = new_merchant(tmp_path_factory.mktemp("wechatpay-cli-refund"))
    with fake.running():
        served = settings.model_copy(update=merchant_overrides(fake, merchant))
        async with shop_client(served, engine) as (gql, services):
            assert services.wechatpay is not None
            _, member = await new_member(settings, engine)
            order = await _pickup_order(gql.http, member)
            assert (await gql.execute(PAY, {"orderId": order["id"]}, member))["data"]["payOrder"][
                "errors"
            ] == []
            trade = fake.pay(_trade_no(order["id"]))
            note = fake.paid_notification(trade.out_trade_no)
            answer = await gql.http.post(
                "/payments/wechatpay/notify",
                content=note.body,
                headers={"content-type": "application/json", **note.headers},
            )
            assert answer.status_code == 204, answer.text
            body = await gql.execute(
                CANCEL, {"input": {"orderId": order["id"], "status": "CANCELLED"}}, member
            )
            assert body["data"]["updateOrderStatus"]["errors"] == []
            (refund,) = [r for r in fake.refunds.values() if r.out_trade_no == trade.out_trade_no]
            await services.wechatpay.aclose()
        fake.end_refund(refund.out_refund_no, "SUCCESS")  # its notification is lost
        done = await asyncio.to_thread(
            run_cli,
            settings,
            "reconcile-payments",
            "--refunds-older-than-seconds",
            "0",
            DINEGRAPH_CLOCK_START=(next_noon() + timedelta(minutes=5)).isoformat(),
            **merchant_env(fake, merchant),
        )
        assert done.returncode == 0, done.stderr
        # Refunds other tests left SUBMITTED are asked about too (this WeChat Pay knows none
        # of them, so they stay): at least ours is settled.
        said = re.search(r"refunds settled (\d+) \((\d+) refunded", done.stdout)
        assert said is not None and int(said.group(2)) >= 1, done.stdout
        async with shop_client(served, engine) as (gql, services):
            found = await gql.execute(REFUNDS, {"id": order["id"]}, member)
            assert services.wechatpay is not None
            await services.wechatpay.aclose()
        assert found["data"]["order"]["refunds"] == [{"status": "REFUNDED", "refusalReason": None}]


async def test_the_server_settles_a_refund_whose_notification_was_lost(
    wechatpay_server: tuple[str, FakeWechatPay, Merchant], settings: Settings, engine: AsyncEngine
) -> None:
    url, fake, _ = wechatpay_server
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        refund_no = await _cancelled_after_paying(client, fake, member)
        fake.end_refund(refund_no, "SUCCESS")  # and its refund notification never arrives
        order_id = encode_id("Order", int(fake.refunds[refund_no].out_trade_no))
        deadline = time.monotonic() + PATIENCE_SECONDS + QUIET_SECONDS
        while True:
            found = await _gql(client, REFUNDS, {"id": order_id}, member)
            (refund,) = found["order"]["refunds"]
            if refund["status"] != "SUBMITTED":
                break
            assert time.monotonic() < deadline, "the refund is still SUBMITTED"
            await asyncio.sleep(0.2)
    assert refund == {"status": "REFUNDED", "refusalReason": None}
    assert ("GET", f"/v3/refund/domestic/refunds/{refund_no}") in fake.calls


async def test_pay_in_wechat_and_the_notification_confirms_it_once(
    wechatpay_server: tuple[str, FakeWechatPay, Merchant], settings: Settings, engine: AsyncEngine
) -> None:
    url, fake, merchant = wechatpay_server
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        order = await _pickup_order(client, member)
        paying = await _gql(client, PAY, {"orderId": order["id"]}, member)
        assert paying["payOrder"]["errors"] == []
        params = paying["payOrder"]["wechatPayment"]
        message = "".join(
            f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package")
        ).encode()
        merchant.key.public_key().verify(
            base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
        trade = fake.pay(_trade_no(order["id"]))
        assert params["package"] == f"prepay_id={trade.prepay_id}"
        assert trade.total == order["total"]["fen"]

        note = fake.paid_notification(trade.out_trade_no)
        tampered = replace(note, body=note.body.replace(b"encrypt-resource", b"encrypt-resourcE"))
        refused = await fake.send(tampered, trade.notify_url)
        assert refused.status_code == 401
        assert (await _gql(client, ORDER, {"id": order["id"]}, member))["order"]["status"] == (
            "PENDING_PAYMENT"
        )
        for _ in range(3):  # WeChat Pay repeats notifications; once is applied
            answer = await fake.send(note, trade.notify_url)
            assert answer.status_code == 204, answer.text
        found = await _gql(client, ORDER, {"id": order["id"]}, member)
        assert found["order"]["status"] == "PAID"


async def test_the_server_confirms_a_payment_whose_notification_was_lost(
    wechatpay_server: tuple[str, FakeWechatPay, Merchant], settings: Settings, engine: AsyncEngine
) -> None:
    url, fake, _ = wechatpay_server
    _, member = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        order = await _pickup_order(client, member)
        assert (await _gql(client, PAY, {"orderId": order["id"]}, member))["payOrder"][
            "errors"
        ] == []
        fake.pay(_trade_no(order["id"]))  # and WeChat Pay's notification never arrives
        await _status_becomes(client, order["id"], member, "PAID")
    assert ("GET", f"/v3/pay/transactions/out-trade-no/{_trade_no(order['id'])}") in fake.calls


def test_the_command_says_when_wechat_pay_is_not_configured(settings: Settings) -> None:
    done = run_cli(settings, "reconcile-payments")
    assert done.returncode != 0
    assert "DINEGRAPH_WECHATPAY_MCHID" in done.stdout + done.stderr


def test_serve_names_the_wechat_pay_settings_it_lacks(settings: Settings, tmp_path: Path) -> None:
    done = run_cli(settings, "serve", DINEGRAPH_WECHATPAY_MCHID="1900000109")
    assert done.returncode == 2
    for name in ("APPID", "MERCHANT_SERIAL_NO", "APIV3_KEY", "PUBLIC_KEY_ID", "NOTIFY_URL"):
        assert f"DINEGRAPH_WECHATPAY_{name}" in done.stderr, done.stderr
    _, merchant = new_merchant(tmp_path)
    unreadable = {**merchant.env, "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH": str(tmp_path / "no.pem")}
    done = run_cli(settings, "serve", **unreadable)
    assert done.returncode == 2
    assert "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH" in done.stderr, done.stderr
