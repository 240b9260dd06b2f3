"""WeChat Pay (APIv3, JSAPI) against ``FakeWechatPay`` on a loopback port: the prepay and the
signed wx.requestPayment parameters, notifications (applied once; forged, altered, stale or
wrong ones refused), the provider failing or hanging, refunds, closing and reconciliation."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.tables import outbound_calls, payment_prepays, payments
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.calls import CallRefused
from dinegraph.domain.payments import close_trade_call, out_trade_no
from dinegraph.domain.refunds import RefundToSend
from dinegraph.integrations.wechatpay import WechatPayRefunds
from dinegraph.integrations.wechatpay_calls import close_order_handler
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Mode, Settings
from dinegraph.wechatpay_wiring import reconcile_once, wechatpay_routes
from tests.conftest import PRODUCTION_ADAPTER_VALUES, GraphQLClient
from tests.fakes.wechatpay_server import (
    FakeWechatPay,
    Merchant,
    merchant_overrides,
    new_merchant,
    new_rsa_key,
)
from tests.shop import line, new_member, new_shop, new_sku, next_noon, place_input

NOTIFY = "/payments/wechatpay/notify"
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id total { fen } payBy } errors { code message } }
}
"""
PAY = """
mutation Pay($orderId: ID!) {
  payOrder(orderId: $orderId) {
    order { id status }
    wechatPayment { appId timeStamp nonceStr package signType paySign }
    errors { code message field }
  }
}
"""
ORDER = "query($id: ID!) { order(id: $id) { id status paidAt pickupCode } }"
CANCEL = """
mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""


@dataclass
class Shop:
    gql: GraphQLClient
    http: httpx.AsyncClient
    services: Services
    fake: FakeWechatPay
    merchant: Merchant
    settings: Settings
    engine: AsyncEngine
    store: str
    sku: int

    async def order(self, member: dict[str, str]) -> dict[str, Any]:
        body = await self.gql.execute(
            PLACE,
            {"input": place_input(line(self.sku, 1), channel="PICKUP", store=self.store)},
            member,
        )
        payload = body["data"]["placeOrder"]
        assert payload["errors"] == [], payload
        order: dict[str, Any] = payload["order"]
        return order

    async def pay(self, order_id: str, member: dict[str, str]) -> dict[str, Any]:
        body = await self.gql.execute(PAY, {"orderId": order_id}, member)
        payload: dict[str, Any] = body["data"]["payOrder"]
        return payload

    async def status(self, order_id: str, member: dict[str, str]) -> str:
        body = await self.gql.execute(ORDER, {"id": order_id}, member)
        return str(body["data"]["order"]["status"])

    async def notify(self, notification: Any, path: str = NOTIFY) -> httpx.Response:
        return await self.http.post(
            path,
            content=notification.body,
            headers={"content-type": "application/json", **notification.headers},
        )


@pytest.fixture(scope="module")
def wechatpay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeWechatPay, Merchant]]:
    fake, merchant = new_merchant(tmp_path_factory.mktemp("wechatpay"))
    with fake.running():
        yield fake, merchant


@pytest.fixture
async def shop(
    settings: Settings, engine: AsyncEngine, wechatpay: tuple[FakeWechatPay, Merchant]
) -> AsyncIterator[Shop]:
    fake, merchant = wechatpay
    fake.fail_with, fake.hanging = None, False
    served = settings.model_copy(update=merchant_overrides(fake, merchant))
    services = replace(default_services(served), clock=Clock(next_noon()))
    assert services.wechatpay is not None
    app = create_app(served, engine, services=services)
    place = await new_shop(engine)
    sku = await new_sku(engine, price_fen=2300, stock={place.store_ids[0]: 50})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Shop(
            GraphQLClient(http), http, services, fake, merchant, served, engine, place.store(), sku
        )
    await services.wechatpay.aclose()


def _trade_no(order_id: str) -> str:
    return out_trade_no(decode_id(order_id, "Order", ["id"]))


async def _payments_of(engine: AsyncEngine, order_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(payments)
            .where(payments.c.order_id == decode_id(order_id, "Order", ["id"]))
        )
    return int(found or 0)


async def test_pay_order_returns_request_payment_parameters_signed_by_the_merchant(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    member_id, member = await new_member(settings, engine)
    order = await shop.order(member)
    payload = await shop.pay(order["id"], member)
    assert payload["errors"] == []
    assert payload["order"]["status"] == "PENDING_PAYMENT"
    params = payload["wechatPayment"]
    trade = shop.fake.trades[_trade_no(order["id"])]
    assert params["appId"] == shop.fake.appid
    assert params["package"] == f"prepay_id={trade.prepay_id}"
    assert params["signType"] == "RSA"
    assert abs(int(params["timeStamp"]) - time.time()) < 60
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    shop.merchant.key.public_key().verify(  # raises InvalidSignature when wrong
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    # What WeChat Pay was asked: the order's total, its member's openid, its deadline.
    assert trade.total == order["total"]["fen"] == 2400  # 23.00 and 1.00 packaging
    async with SqlUnitOfWork(engine) as uow:
        found = await uow.members.get(member_id)
    assert found is not None and trade.openid == found.wechat_openid
    assert trade.time_expire.endswith("+08:00")
    assert datetime.fromisoformat(trade.time_expire) == datetime.fromisoformat(
        order["payBy"]
    ).replace(microsecond=0)
    assert trade.notify_url == shop.merchant.env["DINEGRAPH_WECHATPAY_NOTIFY_URL"]

    # Asked again, the still-valid prepay is handed out again: WeChat Pay is not called.
    jsapi_calls = shop.fake.calls.count(("POST", "/v3/pay/transactions/jsapi"))
    again = await shop.pay(order["id"], member)
    assert again["errors"] == []
    assert again["wechatPayment"]["package"] == params["package"]
    assert shop.fake.calls.count(("POST", "/v3/pay/transactions/jsapi")) == jsapi_calls


async def test_a_notification_sent_three_times_confirms_the_payment_once(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    shop.fake.pay(_trade_no(order["id"]))
    notification = shop.fake.paid_notification(_trade_no(order["id"]))
    for _ in range(3):
        answer = await shop.notify(notification)
        assert answer.status_code == 204, answer.text
    assert await shop.status(order["id"], member) == "PAID"
    assert await _payments_of(engine, order["id"]) == 1
    # The prepay is done with: paying again is refused.
    again = await shop.pay(order["id"], member)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"


def _tampered(fake: FakeWechatPay, trade_no: str) -> Any:
    sent = fake.paid_notification(trade_no)
    return replace(sent, body=sent.body.replace(b'"summary":"', b'"summary":"x'))


def _wrong_amount(fake: FakeWechatPay, trade_no: str) -> Any:
    resource = fake.trades[trade_no].resource()
    resource["amount"]["total"] = 1
    return fake.notification(resource)


REFUSED = {
    "tampered body": (_tampered, 401),
    "wrong signature": (
        lambda fake, no: fake.paid_notification(no, signing_key=new_rsa_key()),
        401,
    ),
    "unknown serial": (
        lambda fake, no: fake.paid_notification(no, serial="PUB_KEY_ID_0000000000000000"),
        401,
    ),
    "stale timestamp": (
        lambda fake, no: fake.paid_notification(no, timestamp=int(time.time()) - 360),
        401,
    ),
    "another APIv3 key": (
        lambda fake, no: fake.paid_notification(no, apiv3_key=b"0" * 32),
        400,
    ),
    "another merchant": (
        lambda fake, no: fake.notification({**fake.trades[no].resource(), "mchid": "1900000999"}),
        400,
    ),
    "another app": (
        lambda fake, no: fake.notification({**fake.trades[no].resource(), "appid": "wx0000"}),
        400,
    ),
    "wrong amount": (_wrong_amount, 409),
}


@pytest.mark.parametrize("how", list(REFUSED))
async def test_a_wrong_notification_is_refused_and_changes_nothing(
    shop: Shop, settings: Settings, engine: AsyncEngine, how: str
) -> None:
    make, status = REFUSED[how]
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    shop.fake.pay(_trade_no(order["id"]))
    answer = await shop.notify(make(shop.fake, _trade_no(order["id"])))
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"code", "message"}
    assert await shop.status(order["id"], member) == "PENDING_PAYMENT"
    assert await _payments_of(engine, order["id"]) == 0


async def test_an_unpaid_trade_notification_changes_nothing(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    answer = await shop.notify(shop.fake.paid_notification(_trade_no(order["id"])))  # NOTPAY
    assert answer.status_code == 204
    assert await shop.status(order["id"], member) == "PENDING_PAYMENT"


@pytest.mark.parametrize("trouble", ["error", "hang"])
async def test_a_provider_error_or_timeout_is_a_user_error_and_changes_nothing(
    shop: Shop, settings: Settings, engine: AsyncEngine, trouble: str
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    if trouble == "error":
        shop.fake.fail_with = (500, "SYSTEM_ERROR")
    else:
        shop.fake.hanging = True
    started = time.monotonic()
    payload = await shop.pay(order["id"], member)
    shop.fake.fail_with, shop.fake.hanging = None, False
    assert [e["code"] for e in payload["errors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]
    assert payload["wechatPayment"] is None
    assert time.monotonic() - started < 30
    async with engine.connect() as conn:
        kept = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(payment_prepays)
            .where(payment_prepays.c.order_id == decode_id(order["id"], "Order", ["id"]))
        )
    assert kept == 0
    assert await shop.status(order["id"], member) == "PENDING_PAYMENT"
    # Once WeChat Pay answers again, the same order can be paid.
    assert (await shop.pay(order["id"], member))["errors"] == []


async def test_wechat_pay_refuses_a_request_not_signed_by_the_merchant(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    known = shop.fake.merchant_public_key
    shop.fake.merchant_public_key = new_rsa_key().public_key()  # not our key any more
    try:
        payload = await shop.pay(order["id"], member)
    finally:
        shop.fake.merchant_public_key = known
    assert [e["code"] for e in payload["errors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]
    assert ("POST", "/v3/pay/transactions/jsapi") in shop.fake.refused
    assert _trade_no(order["id"]) not in shop.fake.trades


async def test_a_member_without_wechat_cannot_pay_with_wechat_pay(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    member_id, member = await new_member(settings, engine)
    order = await shop.order(member)
    async with engine.begin() as conn:
        from dinegraph.db.tables import members

        await conn.execute(
            members.update().where(members.c.id == member_id).values(wechat_openid=None)
        )
    payload = await shop.pay(order["id"], member)
    assert [e["code"] for e in payload["errors"]] == ["WECHAT_REQUIRED"]
    assert _trade_no(order["id"]) not in shop.fake.trades


async def test_reconciliation_confirms_a_lost_notification_and_closes_a_cancelled_order(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    lost, cancelled = await shop.order(member), await shop.order(member)
    for order in (lost, cancelled):
        assert (await shop.pay(order["id"], member))["errors"] == []
    shop.fake.pay(_trade_no(lost["id"]))  # paid; the notification never comes
    body = await shop.gql.execute(
        CANCEL, {"input": {"orderId": cancelled["id"], "status": "CANCELLED"}}, member
    )
    assert body["data"]["updateOrderStatus"]["errors"] == []

    # Not quiet long enough yet: the paid order is left to its notification.
    early = await reconcile_once(engine, None, shop.services, timedelta(minutes=3))
    assert decode_id(lost["id"], "Order", ["id"]) not in early.confirmed
    shop.services.clock.advance(timedelta(minutes=4))
    done = await reconcile_once(engine, None, shop.services, timedelta(minutes=3))
    assert decode_id(lost["id"], "Order", ["id"]) in done.confirmed
    assert decode_id(cancelled["id"], "Order", ["id"]) in early.closed + done.closed
    assert await shop.status(lost["id"], member) == "PAID"
    assert shop.fake.trades[_trade_no(cancelled["id"])].state == "CLOSED"
    # The notification arriving late changes nothing more; a second round has nothing to do.
    late = await shop.notify(shop.fake.paid_notification(_trade_no(lost["id"])))
    assert late.status_code == 204
    assert await _payments_of(engine, lost["id"]) == 1
    again = await reconcile_once(engine, None, shop.services, timedelta(0))
    mine = {decode_id(o["id"], "Order", ["id"]) for o in (lost, cancelled)}
    assert mine.isdisjoint(again.confirmed + again.closed + again.refunded)


async def _paid_order(shop: Shop, member: dict[str, str]) -> dict[str, Any]:
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    shop.fake.pay(_trade_no(order["id"]))
    answer = await shop.notify(shop.fake.paid_notification(_trade_no(order["id"])))
    assert answer.status_code == 204
    return order


class _Progress:
    """What the gateway tells the refunds' domain, recorded."""

    def __init__(self) -> None:
        self.accepted: list[str] = []

    async def submitted(self, provider_refund_id: str) -> None:
        self.accepted.append(provider_refund_id)

    async def settled(self, succeeded: bool, provider_refund_id: str | None) -> None:
        raise AssertionError("WeChat Pay settles through its notification")


async def test_the_gateway_refunds_once_however_often_the_relay_runs_it(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await _paid_order(shop, member)
    trade_no = _trade_no(order["id"])
    order_id = decode_id(order["id"], "Order", ["id"])
    assert shop.services.wechatpay is not None
    gateway = WechatPayRefunds(shop.services.wechatpay)
    progress = _Progress()
    refund = RefundToSend(
        refund_id=1,
        order_id=order_id,
        reference=f"R{order_id}-first",
        out_trade_no=trade_no,
        refund_fen=1000,
        total_fen=2400,
        reason="少送了一份",
    )
    await gateway.refund(refund, progress)
    await gateway.refund(refund, progress)  # the relay ran it again: WeChat Pay already has it
    refunds = [r for r in shop.fake.refunds.values() if r.out_trade_no == trade_no]
    assert [(r.out_refund_no, r.refund, r.reason) for r in refunds] == [
        (refund.reference, 1000, "少送了一份")
    ]
    assert progress.accepted == [refunds[0].refund_id] * 2
    # More than was paid is refused for good: the relay stops trying.
    too_much = replace(refund, reference=f"R{order_id}-second", refund_fen=2300)
    with pytest.raises(CallRefused, match="INVALID_REQUEST"):
        await gateway.refund(too_much, progress)


async def test_cancelling_a_paid_order_refunds_it_through_wechat_pay(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await _paid_order(shop, member)
    body = await shop.gql.execute(
        CANCEL, {"input": {"orderId": order["id"], "status": "CANCELLED"}}, member
    )
    assert body["data"]["updateOrderStatus"]["errors"] == []
    trade_no = _trade_no(order["id"])
    refunds = [r for r in shop.fake.refunds.values() if r.out_trade_no == trade_no]
    assert [(r.refund, r.total) for r in refunds] == [(2400, 2400)]
    assert await _refund_status(engine, refunds[0].out_refund_no) == "SUBMITTED"


async def _refund_status(engine: AsyncEngine, reference: str) -> str | None:
    async with engine.connect() as conn:
        status = await conn.scalar(
            sa.text("SELECT status FROM refunds WHERE reference = :r"), {"r": reference}
        )
    return None if status is None else str(status)


async def test_the_close_handler_closes_unpaid_trades_and_refuses_paid_ones(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    unpaid = await shop.order(member)
    assert (await shop.pay(unpaid["id"], member))["errors"] == []
    paid = await _paid_order(shop, member)
    assert shop.services.wechatpay is not None
    close = close_order_handler(shop.services.wechatpay)
    await close(close_trade_call(decode_id(unpaid["id"], "Order", ["id"])))
    assert shop.fake.trades[_trade_no(unpaid["id"])].state == "CLOSED"
    await close(close_trade_call(999_999_999))  # never opened: nothing to do
    with pytest.raises(CallRefused, match="ORDERPAID"):
        await close(close_trade_call(decode_id(paid["id"], "Order", ["id"])))


async def test_refund_notifications_are_verified_and_settle_the_refund_once(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await _paid_order(shop, member)
    body = await shop.gql.execute(
        CANCEL, {"input": {"orderId": order["id"], "status": "CANCELLED"}}, member
    )
    assert body["data"]["updateOrderStatus"]["errors"] == []
    trade_no = _trade_no(order["id"])
    (refund,) = [r for r in shop.fake.refunds.values() if r.out_trade_no == trade_no]
    reference = refund.out_refund_no
    assert await _refund_status(engine, reference) == "SUBMITTED"
    app = Starlette(routes=wechatpay_routes(engine, None, shop.services))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        note = shop.fake.refund_notification(reference)
        forged = replace(note, headers={**note.headers, "Wechatpay-Serial": "PUB_KEY_ID_1"})
        refused = await http.post(NOTIFY, content=forged.body, headers=forged.headers)
        assert refused.status_code == 401
        assert await _refund_status(engine, reference) == "SUBMITTED"  # a forgery changes nothing
        for path in (NOTIFY, "/payments/wechatpay/refund-notify"):  # told twice: settled once
            answer = await http.post(path, content=note.body, headers=note.headers)
            assert answer.status_code == 204, answer.text
    assert await _refund_status(engine, reference) == "REFUNDED"


async def test_production_takes_no_development_hmac_callback(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    others = {k: v for k, v in PRODUCTION_ADAPTER_VALUES.items() if "wechatpay" not in k}
    production = shop.settings.model_copy(
        update={"mode": Mode.PRODUCTION, "secret_key": settings.secret_key, **others}
    )
    app = create_app(production, engine, services=shop.services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        old = await http.post("/payments/notify", content=b"{}")
        new = await http.post(NOTIFY, content=b"{}")
    assert old.status_code == 404
    assert new.status_code == 401  # there, but unsigned


async def test_notifications_and_reconciliation_racing_confirm_the_payment_once(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    shop.fake.pay(_trade_no(order["id"]))
    note = shop.fake.paid_notification(_trade_no(order["id"]))
    shop.services.clock.advance(timedelta(minutes=4))  # quiet long enough to be reconciled
    reconciling = asyncio.create_task(
        reconcile_once(engine, None, shop.services, timedelta(minutes=3))
    )
    answers = await asyncio.gather(*(shop.notify(note) for _ in range(3)))
    done = await reconciling
    assert [a.status_code for a in answers] == [204, 204, 204], [a.text for a in answers]
    assert decode_id(order["id"], "Order", ["id"]) not in done.failed
    assert await shop.status(order["id"], member) == "PAID"
    assert await _payments_of(engine, order["id"]) == 1


async def test_cancelling_an_unpaid_order_closes_its_trade_at_once(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    _, member = await new_member(settings, engine)
    order = await shop.order(member)
    assert (await shop.pay(order["id"], member))["errors"] == []
    body = await shop.gql.execute(
        CANCEL, {"input": {"orderId": order["id"], "status": "CANCELLED"}}, member
    )
    assert body["data"]["updateOrderStatus"]["errors"] == []
    # The close is a call out recorded with the cancel, made right after its commit.
    assert shop.fake.trades[_trade_no(order["id"])].state == "CLOSED"
    async with engine.connect() as conn:
        status = await conn.scalar(
            sa.select(outbound_calls.c.status).where(
                outbound_calls.c.kind == "payment.close_order",
                outbound_calls.c.key == _trade_no(order["id"]),
            )
        )
    assert status == "DONE"
