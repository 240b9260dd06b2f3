"""Read models: what the GraphQL side is shown of stock levels, ledgers, points and tracks.

The aggregates (stores, products, orders, coupons, campaigns) are read as themselves; these
are the views that are no aggregate. ``ReadModels`` is the port all of them are read through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dinegraph.domain.bargains import Bargain
from dinegraph.domain.campaign_quotas import QuotaRow
from dinegraph.domain.campaigns import Campaign, CampaignKind
from dinegraph.domain.catalog import Category, Channel, Product, Sku, Store
from dinegraph.domain.coupons import Coupon, CouponStatus, CouponTemplate, IssueJob
from dinegraph.domain.delivery import Delivery
from dinegraph.domain.group_buys import GroupBuy, GroupSeat
from dinegraph.domain.members import Address, Member
from dinegraph.domain.orders import Order, OrderLine
from dinegraph.domain.refunds import Refund, RefundStatus
from dinegraph.domain.stock import Movement


@dataclass(frozen=True, slots=True)
class StockRow:
    store_id: int
    sku_id: int
    available: int | None
    sold_out: bool
    low_stock_threshold: int
    version: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    movement_id: int
    store_id: int
    sku_id: int
    kind: str
    source: str
    reference: str
    reason: str
    delta: int
    balance_after: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StockLevelRow:
    sku: Sku
    available: int | None
    sold_out: bool
    low_stock_threshold: int | None
    version: int


@dataclass(frozen=True, slots=True)
class PointsRow:
    id: int
    kind: str
    reference: str
    delta: int
    balance_after: int
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PositionRow:
    id: int
    lat: float
    lng: float
    recorded_at: datetime


class ReadModels(Protocol):
    """Batched reads behind the DataLoaders and the lists; each call is one statement.

    The port the GraphQL side reads through (``db.queries.ReadQueries`` implements it).
    Reads select by the domain's rules (``coupons.stored_as``) or fetch a superset that a
    rule narrows (``campaigns.running_now``); they decide none of their own.
    """

    async def all_stores(self) -> list[Store]: ...

    async def stores_by_ids(self, ids: Sequence[int]) -> list[Store]: ...

    async def categories_by_ids(self, ids: Sequence[int]) -> list[Category]: ...

    async def all_categories(self) -> list[Category]: ...

    async def products_by_ids(self, ids: Sequence[int]) -> list[Product]: ...

    async def products_by_category_ids(
        self, category_ids: Sequence[int], *, include_unlisted: bool
    ) -> dict[int, list[Product]]: ...

    async def listed_products_on_channel(self, channel: Channel) -> list[Product]: ...

    async def skus_by_ids(self, ids: Sequence[int]) -> list[Sku]: ...

    async def skus_by_product_ids(self, product_ids: Sequence[int]) -> dict[int, list[Sku]]: ...

    async def store_prices(
        self, pairs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], int]: ...

    async def stock_rows(
        self, pairs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], StockRow]: ...

    async def ledger_rows(
        self, *, store_id: int, sku_id: int | None, before_id: int | None, limit: int
    ) -> list[LedgerRow]: ...

    async def movements_by_ids(self, ids: Sequence[int]) -> list[Movement]: ...

    async def store_stock(
        self, store_id: int, sku_ids: Sequence[int] | None
    ) -> list[StockLevelRow]: ...

    async def members_by_ids(self, ids: Sequence[int]) -> list[tuple[Member, int]]: ...

    async def member_by_phone(self, phone: str) -> tuple[Member, int] | None: ...

    async def addresses_of(self, member_ids: Sequence[int]) -> dict[int, list[Address]]: ...

    async def points_rows(
        self, member_id: int, *, before_id: int | None, limit: int
    ) -> list[PointsRow]: ...

    async def templates(self, *, active_only: bool) -> list[CouponTemplate]: ...

    async def templates_by_ids(self, ids: Sequence[int]) -> list[CouponTemplate]: ...

    async def coupons_by_ids(self, ids: Sequence[int]) -> list[Coupon]: ...

    async def member_coupons(
        self,
        member_id: int,
        *,
        status: CouponStatus | None,
        now: datetime,
        before_id: int | None,
        limit: int,
    ) -> list[Coupon]: ...

    async def spend_since(self, member_id: int, since: datetime) -> int: ...

    async def issue_jobs(self, ids: Sequence[int]) -> list[IssueJob]: ...

    async def members_ahead_of(self, job: IssueJob, now: datetime) -> int:
        """Members of the job's segment it has still to go through."""
        ...

    async def orders_by_ids(self, ids: Sequence[int]) -> list[Order]: ...

    async def order_lines(self, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]: ...

    async def orders_page(
        self,
        *,
        member_id: int | None = None,
        store_id: int | None = None,
        store_ids: Sequence[int] | None = None,
        statuses: Sequence[str] | None,
        before_id: int | None,
        limit: int,
        sources: Sequence[str] | None = None,
    ) -> list[Order]: ...

    async def pending_orders(self, store_ids: Sequence[int]) -> dict[int, int]: ...

    async def refunds_by_ids(self, ids: Sequence[int]) -> list[Refund]: ...

    async def refunds_of_orders(self, order_ids: Sequence[int]) -> dict[int, list[Refund]]: ...

    async def store_refunds(
        self,
        store_id: int,
        *,
        statuses: Sequence[RefundStatus] | None,
        before_id: int | None,
        limit: int,
    ) -> list[Refund]:
        """The refunds of a store's orders, newest first."""

    async def unpaid_expired(self, now: datetime) -> bool: ...

    async def deliveries_by_ids(self, ids: Sequence[int]) -> list[Delivery]: ...

    async def latest_deliveries(self, order_ids: Sequence[int]) -> dict[int, Delivery]: ...

    async def deliveries_in_progress(self, store_id: int, limit: int) -> list[Delivery]: ...

    async def track(self, delivery_id: int, offset: int, limit: int) -> list[PositionRow]: ...

    async def campaigns_by_ids(self, ids: Sequence[int]) -> list[Campaign]: ...

    async def campaigns_planned_over(
        self, now: datetime, kind: CampaignKind | None
    ) -> list[Campaign]:
        """Campaigns whose planned window holds ``now`` (``running_now`` picks those running)."""

    async def next_campaign_start(
        self, after: datetime, kind: CampaignKind | None, store_id: int | None = None
    ) -> datetime | None:
        """The earliest start of a campaign planned to start later than ``after`` (at
        ``store_id``, if given)."""

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None: ...

    async def campaign_quotas(
        self, campaign_ids: Sequence[int], store_ids: frozenset[int] | None
    ) -> list[QuotaRow]:
        """The quotas of the campaigns at the stores (None: every store)."""

    async def groups_by_ids(self, ids: Sequence[int]) -> list[GroupBuy]: ...

    async def group_seats(self, group_id: int) -> list[GroupSeat]: ...

    async def bargains_by_ids(self, ids: Sequence[int]) -> list[Bargain]: ...

    async def member_name(self, member_id: int) -> str | None: ...
