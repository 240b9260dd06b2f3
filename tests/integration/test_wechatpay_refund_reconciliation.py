"""Refunds whose WeChat Pay notification was lost, against ``FakeWechatPay`` on a loopback
port: the reconciliation asks 查询单笔退款 about refunds SUBMITTED and quiet, and settles
them as the notification would (once, even when the notification comes at the same time);
a refund still PROCESSING, a provider down or an answer WeChat Pay did not sign changes
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.tables import orders, refunds
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.events import Event
from dinegraph.domain.orders import OrderChanged
from dinegraph.domain.payments import (
    ProviderRefused,
    ProviderUnavailable,
    RefundState,
    out_trade_no,
)
from dinegraph.domain.services.refund_progress import RefundsReconciled, reconcile_refunds
from dinegraph.events.brokers import Broker
from dinegraph.integrations.wechatpay import WechatPayClient
from dinegraph.resolvers.ids import decode_id
from dinegraph.settings import Settings
from dinegraph.wechatpay_wiring import reconcile_refunds_once, wechatpay_routes
from tests.conftest import GraphQLClient
from tests.fakes.wechatpay_server import (
    FakeRefund,
    FakeWechatPay,
    Merchant,
    merchant_overrides,
    new_merchant,
    new_rsa_key,
)
from tests.shop import line, new_member, new_shop, new_sku, next_noon, place_input

NOTIFY = "/payments/wechatpay/notify"
QUIET = timedelta(minutes=5)
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id } errors { code message } }
}
"""
PAY = "mutation($orderId: ID!) { payOrder(orderId: $orderId) { errors { code message } } }"
CANCEL = """
mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { status } errors { code } }
}
"""


class RecordingBroker(Broker):
    """The in-process broker, keeping what it was handed after each commit."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Event] = []

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        self.published.extend(events)
        await super().publish_after_commit(events, receipt)

    def order_changes(self, order_id: int) -> list[int]:
        """The versions of ``order_id`` pushed to its followers (``orderUpdates``)."""
        return [
            e.version
            for e in self.published
            if isinstance(e, OrderChanged) and e.order_id == order_id
        ]


@dataclass(frozen=True)
class RefundRow:
    status: str
    provider_refund_id: str | None
    refusal_reason: str | None
    order_version: int


@dataclass
class Shop:
    gql: GraphQLClient
    services: Services
    fake: FakeWechatPay
    engine: AsyncEngine
    store: str
    sku: int

    @property
    def client(self) -> WechatPayClient:
        assert self.services.wechatpay is not None
        return self.services.wechatpay

    async def submitted_refund(self, settings: Settings) -> FakeRefund:
        """A paid order cancelled by its member: its refund is SUBMITTED at WeChat Pay, which
        keeps it PROCESSING; no notification is sent."""
        _, member = await new_member(settings, self.engine)
        body = await self.gql.execute(
            PLACE,
            {"input": place_input(line(self.sku, 1), channel="PICKUP", store=self.store)},
            member,
        )
        assert body["data"]["placeOrder"]["errors"] == [], body
        order_id = body["data"]["placeOrder"]["order"]["id"]
        body = await self.gql.execute(PAY, {"orderId": order_id}, member)
        assert body["data"]["payOrder"]["errors"] == [], body
        trade_no = out_trade_no(decode_id(order_id, "Order", ["id"]))
        self.fake.pay(trade_no)
        paid = self.fake.paid_notification(trade_no)
        answer = await self.gql.http.post(
            NOTIFY, content=paid.body, headers={"content-type": "application/json", **paid.headers}
        )
        assert answer.status_code == 204, answer.text
        body = await self.gql.execute(
            CANCEL, {"input": {"orderId": order_id, "status": "CANCELLED"}}, member
        )
        assert body["data"]["updateOrderStatus"]["errors"] == [], body
        (refund,) = [r for r in self.fake.refunds.values() if r.out_trade_no == trade_no]
        assert (await self.row(refund)).status == "SUBMITTED"
        return refund

    async def row(self, refund: FakeRefund) -> RefundRow:
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(
                        refunds.c.status,
                        refunds.c.provider_refund_id,
                        refunds.c.refusal_reason,
                        orders.c.version,
                    )
                    .join(orders, orders.c.id == refunds.c.order_id)
                    .where(refunds.c.reference == refund.out_refund_no)
                )
            ).one()
        return RefundRow(*found)

    async def refund_id(self, refund: FakeRefund) -> int:
        async with SqlUnitOfWork(self.engine) as uow:
            found = await uow.orders.refund_by_reference(refund.out_refund_no)
        assert found is not None
        return found.id

    def queried(self, refund: FakeRefund) -> int:
        return self.fake.calls.count(("GET", f"/v3/refund/domestic/refunds/{refund.out_refund_no}"))


@pytest.fixture(scope="module")
def wechatpay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeWechatPay, Merchant]]:
    fake, merchant = new_merchant(tmp_path_factory.mktemp("wechatpay-refunds"))
    with fake.running():
        yield fake, merchant


@pytest.fixture
async def shop(
    settings: Settings, engine: AsyncEngine, wechatpay: tuple[FakeWechatPay, Merchant]
) -> AsyncIterator[Shop]:
    fake, merchant = wechatpay
    fake.fail_with, fake.hanging, fake.answer_signing_key = None, False, None
    served = settings.model_copy(update=merchant_overrides(fake, merchant))
    services = replace(default_services(served), clock=Clock(next_noon()))
    assert services.wechatpay is not None
    app = create_app(served, engine, services=services)
    place = await new_shop(engine)
    sku = await new_sku(engine, price_fen=2300, stock={place.store_ids[0]: 50})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Shop(GraphQLClient(http), services, fake, engine, place.store(), sku)
    fake.fail_with, fake.hanging, fake.answer_signing_key = None, False, None
    await services.wechatpay.aclose()


async def test_a_refund_whose_notification_was_lost_is_settled_by_the_reconciliation(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    shop.fake.end_refund(refund.out_refund_no, "SUCCESS")  # its notification never comes
    before = await shop.row(refund)

    # Not quiet long enough yet: left to its notification, WeChat Pay not even asked.
    early = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id not in early.refunded + early.processing + early.unanswered
    assert shop.queried(refund) == 0
    assert (await shop.row(refund)).status == "SUBMITTED"

    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id in done.refunded
    assert shop.queried(refund) == 1
    after = await shop.row(refund)
    assert after == RefundRow("REFUNDED", refund.refund_id, None, before.order_version + 1)

    # Settled: the next round does not ask again, and the late notification changes nothing.
    again = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id not in again.refunded + again.processing + again.unanswered
    assert shop.queried(refund) == 1
    late = shop.fake.refund_notification(refund.out_refund_no, "SUCCESS")
    answer = await shop.gql.http.post(
        NOTIFY, content=late.body, headers={"content-type": "application/json", **late.headers}
    )
    assert answer.status_code == 204, answer.text
    assert await shop.row(refund) == after


async def test_a_refund_still_processing_stays_submitted_and_is_asked_again(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    before = await shop.row(refund)
    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    for round_no in (1, 2):
        done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
        assert refund_id in done.processing
        assert refund_id not in done.refunded + done.failed
        assert shop.queried(refund) == round_no
        assert await shop.row(refund) == before  # not even a new version of the order


@pytest.mark.parametrize("state", [RefundState.CLOSED, RefundState.ABNORMAL])
async def test_a_refund_wechat_pay_closed_or_found_abnormal_fails_with_the_reason(
    shop: Shop, settings: Settings, engine: AsyncEngine, state: RefundState
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    before = await shop.row(refund)
    shop.fake.end_refund(refund.out_refund_no, state.value)
    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id in done.failed
    after = await shop.row(refund)
    assert after.status == "FAILED"
    assert after.refusal_reason is not None and state.value in after.refusal_reason
    assert after.order_version == before.order_version + 1


@pytest.mark.parametrize("trouble", ["error", "hang"])
async def test_wechat_pay_down_leaves_the_refund_submitted_and_raises_nothing(
    shop: Shop, settings: Settings, engine: AsyncEngine, trouble: str
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    shop.fake.end_refund(refund.out_refund_no, "SUCCESS")
    before = await shop.row(refund)
    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    if trouble == "error":
        shop.fake.fail_with = (500, "SYSTEM_ERROR")
    else:
        shop.fake.hanging = True  # each query waits out the client's 2 s
    # This refund alone (refunds of other tests are as quiet): one timeout, not one each.
    done = await reconcile_refunds(
        shop.services.clock(),
        provider=shop.client,
        new_uow=lambda: SqlUnitOfWork(engine),
        quiet_for=QUIET,
        after_id=refund_id - 1,
        batch=1,
    )
    assert done.unanswered == [refund_id]
    assert await shop.row(refund) == before
    shop.fake.fail_with, shop.fake.hanging = None, False
    # The next round, WeChat Pay answering again, settles it.
    done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id in done.refunded
    assert (await shop.row(refund)).status == "REFUNDED"


async def test_an_answer_wechat_pay_did_not_sign_is_refused_and_changes_nothing(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    shop.fake.end_refund(refund.out_refund_no, "SUCCESS")
    before = await shop.row(refund)
    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    shop.fake.answer_signing_key = new_rsa_key()  # a forger's answer: SUCCESS, wrongly signed
    with pytest.raises(ProviderUnavailable, match="wrong signature"):
        await shop.client.query_refund(refund.out_refund_no)
    done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id in done.unanswered
    assert refund_id not in done.refunded
    assert await shop.row(refund) == before
    shop.fake.answer_signing_key = None
    done = await reconcile_refunds_once(engine, None, shop.services, QUIET)
    assert refund_id in done.refunded


async def test_the_refund_query_reads_wechat_pays_answer_and_its_refusals(
    shop: Shop, settings: Settings
) -> None:
    refund = await shop.submitted_refund(settings)
    processing = await shop.client.query_refund(refund.out_refund_no)
    assert processing is not None
    assert (processing.state, processing.provider_refund_id, processing.at) == (
        RefundState.PROCESSING,
        refund.refund_id,
        None,
    )
    assert processing.outcome is None
    shop.fake.end_refund(refund.out_refund_no, "SUCCESS")
    found = await shop.client.query_refund(refund.out_refund_no)
    assert found is not None and found.state is RefundState.SUCCESS
    assert found.at is not None and found.outcome is not None and found.outcome.succeeded
    assert await shop.client.query_refund("R0-never-sent") is None
    shop.fake.fail_with = (400, "PARAM_ERROR")
    with pytest.raises(ProviderRefused, match="PARAM_ERROR"):
        await shop.client.query_refund(refund.out_refund_no)
    shop.fake.fail_with = (503, "SYSTEM_ERROR")
    with pytest.raises(ProviderUnavailable, match="503"):
        await shop.client.query_refund(refund.out_refund_no)


async def test_a_notification_racing_the_reconciliation_settles_the_refund_once(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    refund = await shop.submitted_refund(settings)
    refund_id = await shop.refund_id(refund)
    before = await shop.row(refund)
    order_id = int(refund.out_trade_no)
    note = shop.fake.refund_notification(refund.out_refund_no, "SUCCESS")
    shop.services.clock.advance(QUIET + timedelta(minutes=1))
    broker = RecordingBroker()
    app = Starlette(routes=wechatpay_routes(engine, broker, shop.services))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:

        async def notify() -> httpx.Response:
            return await http.post(NOTIFY, content=note.body, headers=note.headers)

        reconciling = reconcile_refunds_once(engine, broker, shop.services, QUIET)
        done, first, second = await asyncio.gather(reconciling, notify(), notify())
    assert [first.status_code, second.status_code] == [204, 204], (first.text, second.text)
    assert refund_id not in done.unanswered
    after = await shop.row(refund)
    assert (after.status, after.order_version) == ("REFUNDED", before.order_version + 1)
    # Pushed once, as the order's one new version.
    assert broker.order_changes(order_id) == [after.order_version]


async def test_a_round_goes_on_after_the_last_refund_it_looked_at(
    shop: Shop, settings: Settings, engine: AsyncEngine
) -> None:
    stuck, next_one = await shop.submitted_refund(settings), await shop.submitted_refund(settings)
    stuck_id, next_id = await shop.refund_id(stuck), await shop.refund_id(next_one)
    shop.fake.end_refund(next_one.out_refund_no, "SUCCESS")  # ``stuck`` stays PROCESSING
    shop.services.clock.advance(QUIET + timedelta(minutes=1))

    async def round_after(after_id: int) -> RefundsReconciled:
        return await reconcile_refunds(
            shop.services.clock(),
            provider=shop.client,
            new_uow=lambda: SqlUnitOfWork(engine),
            quiet_for=QUIET,
            after_id=after_id,
            batch=1,
        )

    first = await round_after(stuck_id - 1)
    assert (first.processing, first.after_id) == ([stuck_id], stuck_id)
    second = await round_after(first.after_id)  # not ``stuck`` again: the one after it
    assert second.refunded == [next_id]
    assert (await shop.row(next_one)).status == "REFUNDED"
    last = await round_after(max(stuck_id, next_id) + 10_000)  # nothing left: from the start
    assert (last.settled, last.after_id) == (0, 0)


async def test_a_closed_refund_notification_fails_the_refund_with_the_reason(
    shop: Shop, settings: Settings
) -> None:
    refund = await shop.submitted_refund(settings)
    note = shop.fake.refund_notification(refund.out_refund_no, "CLOSED")
    answer = await shop.gql.http.post(
        NOTIFY, content=note.body, headers={"content-type": "application/json", **note.headers}
    )
    assert answer.status_code == 204, answer.text
    after = await shop.row(refund)
    assert after.status == "FAILED"
    assert after.refusal_reason is not None and "CLOSED" in after.refusal_reason
