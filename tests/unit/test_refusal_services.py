"""Cheap refusals on a fake unit of work: once a supply is known gone, its refusals open no
write transaction and answer what the write would; the write that takes the last unit, or
gives units back, keeps the board right.

The races and the brokers between processes stay in ``tests/integration/test_exhaustion.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dinegraph.domain.campaigns import CampaignItem, CampaignKind, CampaignSpec, Fulfilment
from dinegraph.domain.catalog import Channel, Sku, Store
from dinegraph.domain.coupons import CouponTemplate
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.fees import FeeRules
from dinegraph.domain.identity import MemberViewer, PartnerViewer, StaffRole, StaffViewer
from dinegraph.domain.orders import Order, OrderStatus
from dinegraph.domain.ports import RefundProgress
from dinegraph.domain.pricing import CouponKind
from dinegraph.domain.refunds import RefundToSend
from dinegraph.domain.routing import RoutingWeights
from dinegraph.domain.services.campaign_orders import OrderOptions
from dinegraph.domain.services.campaigns import (
    CreateCampaign,
    EndCampaign,
    create_campaign,
    end_campaign,
)
from dinegraph.domain.services.coupons import (
    ClaimCoupon,
    UpdateTemplate,
    claim_coupon,
    update_template,
)
from dinegraph.domain.services.dispatch import DeliveryPolicy
from dinegraph.domain.services.flash_sales import BuyFlashSale, buy_flash_sale
from dinegraph.domain.services.orders import OrderPolicy, release_units
from dinegraph.domain.services.stock import record_sale, restock
from dinegraph.domain.stock import RecordSale, Restock, SaleLine, SaleSource
from dinegraph.domain.supplies import campaign_quota, coupon_template, shelf
from dinegraph.domain.tiers import Tier
from dinegraph.events.exhaustion import Board
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)
OPERATOR = StaffViewer(1, "运营", StaffRole.OPERATOR, frozenset())
POS = PartnerViewer(2, "POS", frozenset({"stock:write"}), None)


class NoPayments:
    name = "none"

    async def refund(self, refund: RefundToSend, progress: RefundProgress) -> None:
        return None


POLICY = OrderPolicy(
    fees=FeeRules(
        bands=((3000, 400),),
        free_delivery_from_fen=None,
        packaging_fen_per_unit=0,
        packaging_cap_fen=0,
    ),
    weights=RoutingWeights(),
    nearby_m=10_000,
    payment_timeout=timedelta(minutes=15),
    time_zone=ZoneInfo("Asia/Shanghai"),
    tier_thresholds={Tier.NORMAL: 0},
    points_expiry_days=365,
    payments=NoPayments(),
    delivery=DeliveryPolicy(
        dispatch_on=OrderStatus.READY,
        speeds={},
        max_speed_kmh=120,
        min_report_interval=timedelta(seconds=1),
        platforms={},
    ),
)


@dataclass
class Shop:
    db: FakeDatabase
    board: Board
    store: Store
    beef: Sku

    def uow(self) -> FakeUnitOfWork:
        """A unit of work as a request gets one: this process's board, seen from now."""
        return FakeUnitOfWork(self.db, board=self.board.unit())


@pytest.fixture
async def shop() -> Shop:
    db = FakeDatabase()
    store = db.add_store()
    beef = db.add_sku(name="卤牛肉", price_fen=3800, channels=frozenset({Channel.PICKUP}))
    s = Shop(db, Board(trust_seconds=60), store, beef)
    await restock(Restock(store.id, beef.id, 2, "DN-1"), uow=s.uow(), viewer=_head_office())
    return s


def _head_office() -> StaffViewer:
    return StaffViewer(3, "总部", StaffRole.HQ_ADMIN, frozenset())


# --- a tracked shelf: recordSale -----------------------------------------------------------


def _sale(shop: Shop, reference: str, *lines: tuple[Sku, int]) -> RecordSale:
    return RecordSale(
        store_id=shop.store.id,
        source=SaleSource.POS,
        external_order_id=reference,
        lines=tuple(SaleLine(sku.id, quantity) for sku, quantity in lines or ((shop.beef, 1),)),
    )


async def _refused(shop: Shop, sale: RecordSale) -> tuple[DomainError, FakeUnitOfWork]:
    uow = shop.uow()
    with pytest.raises(DomainError) as refused:
        await record_sale(sale, uow=uow, viewer=POS)
    return refused.value, uow


async def test_selling_the_last_unit_tells_the_board_and_later_sales_open_no_write(
    shop: Shop,
) -> None:
    first = await record_sale(_sale(shop, "A"), uow=shop.uow(), viewer=POS)
    assert not shop.board.gone(shelf(shop.store.id, shop.beef.id))
    await record_sale(_sale(shop, "B"), uow=shop.uow(), viewer=POS)
    assert shop.board.gone(shelf(shop.store.id, shop.beef.id))

    error, uow = await _refused(shop, _sale(shop, "C"))
    assert (error.code, error.field, error.params) == (
        ErrorCode.OUT_OF_STOCK,
        ["lines", "0", "quantity"],
        {"available": 0},
    )
    assert uow.begun == 0
    # A retry of a sale made before the shelf emptied still gets its first answer.
    replay = shop.uow()
    assert await record_sale(_sale(shop, "A"), uow=replay, viewer=POS) == first
    assert replay.begun == 0
    error, _ = await _refused(shop, _sale(shop, "A", (shop.beef, 2)))
    assert error.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


async def test_a_restock_clears_the_board_at_once(shop: Shop) -> None:
    await record_sale(_sale(shop, "A", (shop.beef, 2)), uow=shop.uow(), viewer=POS)
    assert shop.board.gone(shelf(shop.store.id, shop.beef.id))
    await restock(
        Restock(shop.store.id, shop.beef.id, 1, "DN-2"), uow=shop.uow(), viewer=_head_office()
    )
    assert not shop.board.gone(shelf(shop.store.id, shop.beef.id))
    await record_sale(_sale(shop, "B"), uow=shop.uow(), viewer=POS)


async def test_bad_input_is_refused_as_such_whatever_the_board_knows(shop: Shop) -> None:
    await record_sale(_sale(shop, "A", (shop.beef, 2)), uow=shop.uow(), viewer=POS)
    error, _ = await _refused(shop, _sale(shop, "B", (shop.beef, 0)))
    assert error.code is ErrorCode.OUT_OF_RANGE
    error, _ = await _refused(shop, _sale(shop, " " * 3))
    assert (error.code, error.field) == (ErrorCode.REQUIRED, ["externalOrderId"])


async def test_a_refusal_by_the_write_teaches_a_board_that_knew_nothing(shop: Shop) -> None:
    await record_sale(_sale(shop, "A", (shop.beef, 2)), uow=FakeUnitOfWork(shop.db), viewer=POS)
    assert not shop.board.gone(shelf(shop.store.id, shop.beef.id))  # sold elsewhere
    error, uow = await _refused(shop, _sale(shop, "B"))
    assert (error.code, uow.begun) == (ErrorCode.OUT_OF_STOCK, 1)
    assert shop.board.gone(shelf(shop.store.id, shop.beef.id))


async def test_only_the_sales_first_line_is_answered_from_the_board(shop: Shop) -> None:
    """Which line a multi-line sale fails on is the write's to say: the first line the
    write takes is the only one the board answers for."""
    duck = shop.db.add_sku(name="酱鸭", price_fen=4200)
    await restock(Restock(shop.store.id, duck.id, 5, "DN-3"), uow=shop.uow(), viewer=_head_office())
    await record_sale(_sale(shop, "A", (duck, 5)), uow=shop.uow(), viewer=POS)
    assert shop.board.gone(shelf(shop.store.id, duck.id))
    error, uow = await _refused(shop, _sale(shop, "B", (shop.beef, 3), (duck, 1)))
    assert (error.code, error.field, uow.begun) == (
        ErrorCode.OUT_OF_STOCK,
        ["lines", "0", "quantity"],  # the beef: 2 left, not 3
        1,
    )
    assert error.params == {"available": 2}


# --- a coupon template ---------------------------------------------------------------------


def _template(shop: Shop, quantity: int) -> CouponTemplate:
    return shop.db.add_template(
        CouponTemplate(
            id=0,
            title="无门槛减5",
            kind=CouponKind.NO_THRESHOLD,
            amount_off_fen=500,
            valid_days=7,
            total_quantity=quantity,
            per_member_limit=1,
        )
    )


async def _claim(shop: Shop, template: CouponTemplate, code: str | None = None) -> FakeUnitOfWork:
    uow = shop.uow()
    member = shop.db.add_member()
    await claim_coupon(
        ClaimCoupon(template.id, NOW, share_code=code, share_key=b"k"),
        uow=uow,
        viewer=MemberViewer(member.id),
    )
    return uow


async def test_claiming_the_last_coupon_tells_the_board_and_more_clears_it(shop: Shop) -> None:
    template = _template(shop, 2)
    await _claim(shop, template)
    await _claim(shop, template)
    assert shop.board.gone(coupon_template(template.id))
    with pytest.raises(DomainError) as refused:
        await _claim(shop, template)
    assert refused.value.code is ErrorCode.COUPON_SOLD_OUT
    assert shop.db.tables.templates[template.id].issued == 2

    await update_template(
        UpdateTemplate(template.id, total_quantity=3), uow=shop.uow(), viewer=OPERATOR
    )
    assert not shop.board.gone(coupon_template(template.id))
    await _claim(shop, template)


async def test_a_known_sold_out_template_opens_no_write_and_bad_share_codes_still_say_so(
    shop: Shop,
) -> None:
    template = _template(shop, 1)
    await _claim(shop, template)
    uow = shop.uow()
    with pytest.raises(DomainError) as refused:
        await claim_coupon(
            ClaimCoupon(template.id, NOW), uow=uow, viewer=MemberViewer(shop.db.add_member().id)
        )
    assert (refused.value.code, uow.begun) == (ErrorCode.COUPON_SOLD_OUT, 0)
    with pytest.raises(DomainError) as refused:
        await _claim(shop, template, code="not-a-share-code")
    assert refused.value.code is ErrorCode.INVALID_SHARE_CODE


async def test_a_stopped_template_is_answered_as_stopped_not_sold_out(shop: Shop) -> None:
    template = _template(shop, 1)
    await _claim(shop, template)
    assert shop.board.gone(coupon_template(template.id))
    await update_template(UpdateTemplate(template.id, stop=True), uow=shop.uow(), viewer=OPERATOR)
    with pytest.raises(DomainError) as refused:
        await _claim(shop, template)
    assert refused.value.code is ErrorCode.TEMPLATE_STOPPED


# --- a flash sale's quota ------------------------------------------------------------------


async def _flash_sale(shop: Shop, quota: int) -> int:
    spec = CampaignSpec(
        kind=CampaignKind.FLASH_SALE,
        name="秒杀 卤牛肉",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        items=(CampaignItem(shop.beef.id, 1900),),
        store_ids=(shop.store.id,),
        channels=frozenset({Channel.PICKUP}),
        quota_per_store=quota,
        per_member_limit=1,
        new_members_only=False,
    )
    campaign = await create_campaign(CreateCampaign(spec, NOW), uow=shop.uow(), viewer=OPERATOR)
    return campaign.id


async def _buy(shop: Shop, campaign_id: int, member_id: int, key: str | None = None) -> Order:
    return await buy_flash_sale(
        BuyFlashSale(campaign_id, OrderOptions(Fulfilment(), idempotency_key=key), NOW, POLICY),
        uow=shop.uow(),
        viewer=MemberViewer(member_id),
    )


async def test_the_last_unit_of_a_quota_tells_the_board_and_a_cancel_gives_it_back(
    shop: Shop,
) -> None:
    campaign_id = await _flash_sale(shop, quota=2)
    quota = campaign_quota(campaign_id, shop.store.id, shop.beef.id)
    buyers = [shop.db.add_member().id for _ in range(4)]
    first = await _buy(shop, campaign_id, buyers[0], key="k-0")
    await _buy(shop, campaign_id, buyers[1])
    assert shop.board.gone(quota)

    uow = shop.uow()
    with pytest.raises(DomainError) as refused:
        await buy_flash_sale(
            BuyFlashSale(campaign_id, OrderOptions(), NOW, POLICY),
            uow=uow,
            viewer=MemberViewer(buyers[2]),
        )
    assert (refused.value.code, refused.value.field, uow.begun) == (
        ErrorCode.SOLD_OUT,
        ["campaignId"],
        0,
    )
    # The first buyer's retry gets the first order back, even now.
    assert (await _buy(shop, campaign_id, buyers[0], key="k-0")).id == first.id

    # A cancelled campaign order gives its unit back to the quota (``cancel_in`` does this).
    uow = shop.uow()
    async with uow:
        await release_units(uow, first, first.reference, {shop.beef.id: 1})
        await uow.commit()
    assert not shop.board.gone(quota)
    assert (await _buy(shop, campaign_id, buyers[3])).campaign_id == campaign_id


async def test_the_campaigns_own_refusals_come_before_what_the_board_knows(shop: Shop) -> None:
    campaign_id = await _flash_sale(shop, quota=1)
    buyer, late = shop.db.add_member().id, shop.db.add_member().id
    await _buy(shop, campaign_id, buyer)
    with pytest.raises(DomainError) as refused:
        await buy_flash_sale(
            BuyFlashSale(campaign_id, OrderOptions(), NOW + timedelta(hours=2), POLICY),
            uow=shop.uow(),
            viewer=MemberViewer(late),
        )
    assert refused.value.code is ErrorCode.CAMPAIGN_ENDED
    with pytest.raises(DomainError) as refused:
        await buy_flash_sale(
            BuyFlashSale(
                campaign_id, OrderOptions(Fulfilment(store_id=shop.store.id + 99)), NOW, POLICY
            ),
            uow=shop.uow(),
            viewer=MemberViewer(late),
        )
    assert refused.value.code is ErrorCode.NOT_IN_CAMPAIGN


async def test_a_process_that_knew_nothing_learns_from_its_refusal_under_the_lock(
    shop: Shop,
) -> None:
    """A process that started after the sale ran out learns it from the first refusal
    under the lock, once: the next buyer opens no write transaction."""
    campaign_id = await _flash_sale(shop, quota=1)
    await buy_flash_sale(
        BuyFlashSale(campaign_id, OrderOptions(), NOW, POLICY),
        uow=FakeUnitOfWork(shop.db),  # another process: this board heard nothing
        viewer=MemberViewer(shop.db.add_member().id),
    )
    begun = []
    for _ in range(2):
        uow = FakeUnitOfWork(shop.db, one_writer=True, board=shop.board.unit())
        with pytest.raises(DomainError) as refused:
            await buy_flash_sale(
                BuyFlashSale(campaign_id, OrderOptions(), NOW, POLICY),
                uow=uow,
                viewer=MemberViewer(shop.db.add_member().id),
            )
        assert refused.value.code is ErrorCode.SOLD_OUT
        begun.append(uow.begun)
    assert begun == [1, 0]
    assert shop.board.gone(campaign_quota(campaign_id, shop.store.id, shop.beef.id))


async def test_a_campaign_ended_early_is_refused_as_ended_not_sold_out(shop: Shop) -> None:
    """The board keeps the campaign for the buyers its quota refuses; an early end is
    heard, and from then on they are told the campaign ended."""
    campaign_id = await _flash_sale(shop, quota=1)
    await _buy(shop, campaign_id, shop.db.add_member().id)
    with pytest.raises(DomainError) as refused:
        await _buy(shop, campaign_id, shop.db.add_member().id)
    assert refused.value.code is ErrorCode.SOLD_OUT
    assert shop.board.campaign(campaign_id) is not None

    await end_campaign(EndCampaign(campaign_id, NOW, POLICY), uow=shop.uow(), viewer=OPERATOR)
    assert shop.board.campaign(campaign_id) is None
    with pytest.raises(DomainError) as refused:
        await _buy(shop, campaign_id, shop.db.add_member().id)
    assert refused.value.code is ErrorCode.CAMPAIGN_ENDED
