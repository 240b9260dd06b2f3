"""Campaign set-up and closing on a fake unit of work: quotas held from stock and given back.

Seats, quotas and per-member limits under races stay in
``tests/integration/test_campaign_concurrency.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dinegraph.domain.campaigns import CampaignItem, CampaignKind, CampaignSpec, GroupRules
from dinegraph.domain.catalog import Channel, Sku, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import MemberViewer, StaffRole, StaffViewer, Viewer
from dinegraph.domain.services.campaigns import CreateCampaign, close_campaigns, create_campaign
from dinegraph.domain.services.stock import restock
from dinegraph.domain.stock import LedgerKind, Restock, StockChanged
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)
OPERATOR = StaffViewer(1, "运营", StaffRole.OPERATOR, frozenset())
HEAD_OFFICE = StaffViewer(2, "总部", StaffRole.HQ_ADMIN, frozenset())


@dataclass
class Chain:
    db: FakeDatabase
    stores: list[Store]
    beef: Sku  # tracked: its quota is held from each store's shelf
    noodles: Sku  # made to order: nothing to hold


@pytest.fixture
async def chain() -> Chain:
    db = FakeDatabase()
    stores = [db.add_store(name="人民广场店"), db.add_store(name="徐家汇店")]
    beef = db.add_sku(name="卤牛肉", price_fen=3800)
    noodles = db.add_sku(name="牛肉面", price_fen=2600, tracked=False)
    for store, units in zip(stores, (10, 10), strict=True):
        await restock(
            Restock(store.id, beef.id, units, "DN-1"), uow=FakeUnitOfWork(db), viewer=HEAD_OFFICE
        )
    return Chain(db, stores, beef, noodles)


def _spec(
    chain: Chain, sku: Sku, *, quota: int = 4, store_ids: tuple[int, ...] = ()
) -> CampaignSpec:
    return CampaignSpec(
        kind=CampaignKind.GROUP_BUY,
        name="两人拼团 卤牛肉",
        starts_at=NOW,
        ends_at=NOW + timedelta(days=7),
        items=(CampaignItem(sku.id, sku.price_fen - 800),),
        store_ids=store_ids or tuple(s.id for s in chain.stores),
        channels=frozenset({Channel.PICKUP}),
        quota_per_store=quota,
        per_member_limit=1,
        new_members_only=False,
        group=GroupRules(size=2, hours=24),
    )


async def _create(chain: Chain, spec: CampaignSpec, viewer: Viewer = OPERATOR) -> FakeUnitOfWork:
    uow = FakeUnitOfWork(chain.db)
    await create_campaign(CreateCampaign(spec, NOW), uow=uow, viewer=viewer)
    return uow


def _available(chain: Chain, store: Store, sku: Sku) -> int | None:
    level = chain.db.level(store.id, sku.id)
    return level.available if level else None


async def test_a_new_campaign_holds_each_stores_quota_from_its_shelf(chain: Chain) -> None:
    uow = await _create(chain, _spec(chain, chain.beef, quota=4))

    [campaign] = chain.db.tables.campaigns.values()
    assert [_available(chain, s, chain.beef) for s in chain.stores] == [6, 6]
    holds = [r for r in chain.db.tables.ledger if r.kind is LedgerKind.CAMPAIGN_HOLD]
    assert [(r.store_id, r.delta, r.balance_after) for r in holds] == [
        (chain.stores[0].id, -4, 6),
        (chain.stores[1].id, -4, 6),
    ]
    assert {
        key[1]: quota.remaining
        for key, quota in chain.db.tables.quotas.items()
        if key[0] == campaign.id
    } == {chain.stores[0].id: 4, chain.stores[1].id: 4}
    assert [(e.store_id, e.available) for e in uow.events if isinstance(e, StockChanged)] == [
        (chain.stores[0].id, 6),
        (chain.stores[1].id, 6),
    ]


async def test_a_store_short_of_stock_refuses_the_whole_campaign_naming_that_store(
    chain: Chain,
) -> None:
    with pytest.raises(DomainError) as refused:
        await _create(chain, _spec(chain, chain.beef, quota=11))

    error = refused.value
    assert (error.code, error.field, error.params) == (
        ErrorCode.OUT_OF_STOCK,
        ["storeIds", "0"],
        {"available": 10},
    )
    assert [_available(chain, s, chain.beef) for s in chain.stores] == [10, 10]
    assert chain.db.tables.campaigns == {}
    assert chain.db.tables.quotas == {}


async def test_the_second_store_short_of_stock_undoes_the_first_stores_hold(chain: Chain) -> None:
    await restock(
        Restock(chain.stores[0].id, chain.beef.id, 5, "DN-2"),
        uow=FakeUnitOfWork(chain.db),
        viewer=HEAD_OFFICE,
    )

    with pytest.raises(DomainError) as refused:
        await _create(chain, _spec(chain, chain.beef, quota=12))

    assert (refused.value.code, refused.value.field) == (ErrorCode.OUT_OF_STOCK, ["storeIds", "1"])
    assert [_available(chain, s, chain.beef) for s in chain.stores] == [15, 10]
    assert not [r for r in chain.db.tables.ledger if r.kind is LedgerKind.CAMPAIGN_HOLD]


async def test_a_made_to_order_dish_goes_on_campaign_without_holding_stock(chain: Chain) -> None:
    await _create(chain, _spec(chain, chain.noodles, quota=50))

    assert [chain.db.level(s.id, chain.noodles.id) for s in chain.stores] == [None, None]
    assert len(chain.db.tables.quotas) == 2


async def test_an_unknown_store_is_named_and_nothing_is_held(chain: Chain) -> None:
    with pytest.raises(DomainError) as refused:
        await _create(chain, _spec(chain, chain.beef, store_ids=(chain.stores[0].id, 999)))

    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["storeIds", "1"])
    assert [_available(chain, s, chain.beef) for s in chain.stores] == [10, 10]


@pytest.mark.parametrize(
    "viewer",
    [MemberViewer(5), StaffViewer(3, "店长", StaffRole.STORE_MANAGER, frozenset({1, 2}))],
)
async def test_only_head_office_and_operators_set_campaigns_up(
    chain: Chain, viewer: Viewer
) -> None:
    with pytest.raises(DomainError) as refused:
        await _create(chain, _spec(chain, chain.beef), viewer)

    assert refused.value.code is ErrorCode.FORBIDDEN
    assert chain.db.tables.campaigns == {}


async def test_an_ended_campaign_gives_what_is_left_back_to_the_shelves_once(
    chain: Chain,
) -> None:
    await _create(chain, _spec(chain, chain.beef, quota=4))
    [campaign] = chain.db.tables.campaigns.values()
    sold = FakeUnitOfWork(chain.db)  # three units sold at the first store
    async with sold:
        assert await sold.campaigns.take_quota(campaign.id, chain.stores[0].id, chain.beef.id, 3)
        await sold.commit()
    after_end = campaign.spec.ends_at

    during = await close_campaigns(after_end - timedelta(seconds=1), uow=FakeUnitOfWork(chain.db))
    first = await close_campaigns(after_end, uow=FakeUnitOfWork(chain.db))
    again = await close_campaigns(after_end + timedelta(hours=1), uow=FakeUnitOfWork(chain.db))

    assert (during, first, again) == (0, 1, 0)
    assert [_available(chain, s, chain.beef) for s in chain.stores] == [7, 10]
    for store in chain.stores:
        rows = chain.db.ledger(store.id, chain.beef.id)
        assert sum(r.delta for r in rows) == _available(chain, store, chain.beef)
    assert all(q.remaining == 0 and q.closed for q in chain.db.tables.quotas.values())
    closed = FakeUnitOfWork(chain.db)
    async with closed:
        assert not await closed.campaigns.take_quota(
            campaign.id, chain.stores[1].id, chain.beef.id, 1
        )
