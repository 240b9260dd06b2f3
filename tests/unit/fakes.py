"""In-memory fakes of the domain's ports, so domain services run in milliseconds.

``FakeUnitOfWork`` keeps every table of the shop in one ``Tables`` object. Entering the
unit takes a snapshot; ``commit()`` makes the current state the new snapshot and keeps the
events recorded so far in ``events``; leaving without a commit puts the snapshot back, so a
refused request leaves nothing behind, as a rolled-back transaction would.

Each fake repository keeps the conditional writes of its SQL twin (a level never below
zero, a coupon never past its quantity, a seat only while the group is open), so the
rules the services build on them hold here too. Races are for the integration tests.

Methods no service test needs yet raise ``NotImplementedError`` naming themselves, so a new
test that reaches one fails loudly instead of passing on a silent default.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType
from typing import NoReturn

from dinegraph.domain.bargains import Bargain
from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.campaigns import Campaign, CampaignReport, CampaignSpec
from dinegraph.domain.carriers import CarrierRule, Quote
from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
    store_price,
)
from dinegraph.domain.coupons import (
    Claimant,
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    JobStatus,
    Segment,
    TemplateStatus,
)
from dinegraph.domain.delivery import Courier, Delivery, Provider
from dinegraph.domain.events import Event
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.group_buys import GroupBuy, GroupSeat, GroupStatus, SeatStatus
from dinegraph.domain.invites import InviteKind
from dinegraph.domain.kitchen import KitchenStation, NewTicket, StationRoute, Ticket, TicketDish
from dinegraph.domain.members import Address, LoginCode, Member, PointsKind
from dinegraph.domain.order_repositories import (
    CampaignRepository,
    CouponRepository,
    DeliveryRepository,
    IssueJobRepository,
    OrderRepository,
)
from dinegraph.domain.orders import Order, OrderLine, OrderStatus
from dinegraph.domain.ports import Repositories, UnitOfWork
from dinegraph.domain.quotes import Candidates, CatalogItem
from dinegraph.domain.refunds import Refund, RefundLine, RefundStatus
from dinegraph.domain.search import SynonymSet
from dinegraph.domain.stock import (
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    SkuStock,
    StockLevel,
    StockView,
    stock_view,
)
from dinegraph.domain.store_repositories import (
    CatalogRepository,
    MemberRepository,
    StockRepository,
    take_and_ledger,
)
from dinegraph.domain.supplies import NO_BOARD, ExhaustionBoard, Supply, SupplyChanged, Taken
from dinegraph.domain.tiers import Tier

DEFAULT_LOW_STOCK_THRESHOLD = 5  # what a new level row starts with, as in the database
EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


def _not_faked(name: str) -> NoReturn:
    raise NotImplementedError(f"the fake unit of work has no {name} yet")


# --- the tables ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    movement_id: int
    store_id: int
    sku_id: int
    kind: LedgerKind
    delta: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class PointsRow:
    id: int
    member_id: int
    kind: PointsKind
    reference: str
    delta: int
    balance_after: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class CouponRow:
    coupon: Coupon
    shared_from_id: int | None
    bonus_for_id: int | None


@dataclass(frozen=True, slots=True)
class Quota:
    quota: int
    remaining: int
    closed: bool


@dataclass(frozen=True, slots=True)
class Invitation:
    campaign_id: int
    kind: InviteKind
    target_id: int
    inviter_id: int
    invitee_id: int
    invitee_was_new: bool


@dataclass
class Tables:
    """Every row the fakes hold; copied whole for a snapshot."""

    last_id: int = 0
    # catalog
    stores: dict[int, Store] = field(default_factory=dict)
    products: dict[int, Product] = field(default_factory=dict)
    skus: dict[int, Sku] = field(default_factory=dict)
    store_prices: dict[tuple[int, int], int] = field(default_factory=dict)
    # stock
    movements: dict[tuple[int, MovementSource, str], Movement] = field(default_factory=dict)
    levels: dict[tuple[int, int], StockLevel] = field(default_factory=dict)
    ledger: list[LedgerRow] = field(default_factory=list)
    # members and points
    members: dict[int, Member] = field(default_factory=dict)
    points: dict[int, int] = field(default_factory=dict)
    points_ledger: list[PointsRow] = field(default_factory=list)
    spend: dict[tuple[int, str], tuple[int, datetime]] = field(default_factory=dict)
    check_ins: dict[tuple[int, date], int] = field(default_factory=dict)
    # coupons
    templates: dict[int, CouponTemplate] = field(default_factory=dict)
    coupons: dict[int, CouponRow] = field(default_factory=dict)
    jobs: dict[int, IssueJob] = field(default_factory=dict)
    # orders
    orders: dict[int, Order] = field(default_factory=dict)
    loads: dict[int, int] = field(default_factory=dict)
    # campaigns
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    quotas: dict[tuple[int, int, int], Quota] = field(default_factory=dict)
    entries: dict[tuple[int, int], int] = field(default_factory=dict)
    groups: dict[int, GroupBuy] = field(default_factory=dict)
    seats: dict[tuple[int, int], GroupSeat] = field(default_factory=dict)
    bargains: dict[int, Bargain] = field(default_factory=dict)
    helps: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    help_days: dict[tuple[int, date], int] = field(default_factory=dict)
    invitations: list[Invitation] = field(default_factory=list)
    # kitchen
    stations: dict[int, KitchenStation] = field(default_factory=dict)
    routes: dict[tuple[int, str, int], StationRoute] = field(default_factory=dict)
    tickets: dict[int, Ticket] = field(default_factory=dict)
    categories: set[int] = field(default_factory=set)

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def snapshot(self) -> Tables:
        """A copy to roll back to: each table copied, its rows (frozen) shared."""
        copied = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, dict | list):
                setattr(copied, name, value.copy())
        return copied


class FakeDatabase:
    """The shop's state, shared by every fake unit of work opened on it."""

    def __init__(self) -> None:
        self.tables = Tables()

    # --- seeding: rows written straight in, as a migration or the seed would ---

    def add_store(self, *, name: str = "人民广场店", is_open: bool = True) -> Store:
        t = self.tables
        store = Store(
            id=t.next_id(),
            code=f"S{t.last_id:03d}",
            name=name,
            address="上海市黄浦区人民大道 1 号",
            location=GeoPoint(31.2304, 121.4737),
            delivery_radius_m=3000,
            opens=time(0, 0),
            closes=time(0, 0),  # around the clock
            is_open=is_open,
        )
        t.stores[store.id] = store
        return store

    def add_sku(
        self,
        *,
        name: str = "卤牛肉",
        price_fen: int = 3800,
        tracked: bool = True,
        channels: frozenset[Channel] = frozenset(),
        listed: bool = True,
    ) -> Sku:
        t = self.tables
        kind = ProductKind.RETAIL if tracked else ProductKind.DISH
        product = Product(
            id=t.next_id(),
            category_id=1,
            kind=kind,
            name=name,
            description="",
            tags=(),
            image_urls=(),
            channels=channels,
            listed=listed,
            sort=0,
        )
        t.products[product.id] = product
        sku = Sku(
            id=t.next_id(),
            product_id=product.id,
            name="标准份",
            specs={},
            price_fen=price_fen,
            tracked=tracked,
            sort=0,
        )
        t.skus[sku.id] = sku
        return sku

    def add_member(
        self, *, nickname: str = "味友", tier: Tier = Tier.NORMAL, created_at: datetime = EPOCH
    ) -> Member:
        t = self.tables
        member = Member(
            id=t.next_id(),
            phone=None,
            wechat_openid=None,
            nickname=nickname,
            birthday=None,
            tier=tier,
            created_at=created_at,
        )
        t.members[member.id] = member
        t.points[member.id] = 0
        return member

    def add_template(self, template: CouponTemplate) -> CouponTemplate:
        t = self.tables
        stored = replace(template, id=t.next_id())
        t.templates[stored.id] = stored
        return stored

    # --- reading what was committed ---

    def level(self, store_id: int, sku_id: int) -> StockLevel | None:
        return self.tables.levels.get((store_id, sku_id))

    def ledger(self, store_id: int, sku_id: int) -> list[LedgerRow]:
        return [r for r in self.tables.ledger if (r.store_id, r.sku_id) == (store_id, sku_id)]

    def points_rows(self, member_id: int) -> list[PointsRow]:
        return [r for r in self.tables.points_ledger if r.member_id == member_id]

    def coupons_of(self, member_id: int, template_id: int | None = None) -> list[Coupon]:
        return [
            row.coupon
            for row in self.tables.coupons.values()
            if row.coupon.member_id == member_id
            and (template_id is None or row.coupon.template_id == template_id)
        ]


# --- repositories -------------------------------------------------------------------------


class _Repository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    @property
    def _t(self) -> Tables:
        return self._db.tables  # looked up each time: a rollback swaps the tables


class FakeCatalogRepository(_Repository):
    async def get_store(self, store_id: int) -> Store | None:
        return self._t.stores.get(store_id)

    async def get_category(self, category_id: int) -> Category | None:
        _not_faked("catalog.get_category")

    async def category_parents(self) -> Mapping[int, int | None]:
        _not_faked("catalog.category_parents")

    async def add_category(self, *, name: str, parent_id: int | None, sort: int) -> Category:
        _not_faked("catalog.add_category")

    async def save_category(self, category: Category) -> None:
        _not_faked("catalog.save_category")

    async def get_product(self, product_id: int) -> Product | None:
        return self._t.products.get(product_id)

    async def save_synonyms(self, entry: SynonymSet, at: datetime) -> None:
        _not_faked("catalog.save_synonyms")

    async def add_product(
        self,
        *,
        category_id: int,
        kind: ProductKind,
        name: str,
        description: str,
        tags: tuple[str, ...],
        image_urls: tuple[str, ...],
        channels: frozenset[Channel],
        listed: bool,
        sort: int,
    ) -> Product:
        _not_faked("catalog.add_product")

    async def save_product(self, product: Product) -> None:
        _not_faked("catalog.save_product")

    async def get_sku(self, sku_id: int) -> Sku | None:
        return self._t.skus.get(sku_id)

    async def skus_with_kinds(self, sku_ids: Iterable[int]) -> dict[int, tuple[Sku, ProductKind]]:
        found: dict[int, tuple[Sku, ProductKind]] = {}
        for sku_id in sku_ids:
            sku = self._t.skus.get(sku_id)
            product = self._t.products.get(sku.product_id) if sku else None
            if sku is not None and product is not None:
                found[sku_id] = (sku, product.kind)
        return found

    async def next_sku_sort(self, product_id: int) -> int:
        _not_faked("catalog.next_sku_sort")

    async def add_sku(
        self,
        *,
        product_id: int,
        name: str,
        specs: Mapping[str, str],
        price_fen: int,
        tracked: bool,
        sort: int,
        components: tuple[ComboComponent, ...],
    ) -> Sku:
        _not_faked("catalog.add_sku")

    async def save_sku(self, sku: Sku) -> None:
        _not_faked("catalog.save_sku")

    async def set_store_price(self, store_id: int, sku_id: int, price_fen: int | None) -> None:
        if price_fen is None:
            self._t.store_prices.pop((store_id, sku_id), None)
        else:
            self._t.store_prices[(store_id, sku_id)] = price_fen


class FakeStockRepository(_Repository):
    async def claim_and_take(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
        take: Sequence[MovementLine],
        kind: LedgerKind,
    ) -> tuple[Movement, dict[int, StockLevel]] | None:
        key = (store_id, source, reference)
        if key in self._t.movements or store_id not in self._t.stores:
            return None
        movement = Movement(
            id=self._t.next_id(),
            store_id=store_id,
            source=source,
            reference=reference,
            fingerprint=fingerprint,
            reason=reason,
            lines=lines,
            created_at=EPOCH,
        )
        self._t.movements[key] = movement
        taken = await take_and_ledger(
            self, movement_id=movement.id, store_id=store_id, kind=kind, take=take
        )
        return movement, taken

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None:
        return self._t.movements.get((store_id, source, reference))

    async def change_level(self, store_id: int, sku_id: int, delta: int) -> StockLevel | None:
        key = (store_id, sku_id)
        level = self._t.levels.get(key)
        if delta < 0:
            if level is None or level.available is None or level.available + delta < 0:
                return None
            changed = replace(level, available=level.available + delta, version=level.version + 1)
        elif level is None:
            changed = StockLevel(store_id, sku_id, delta, False, DEFAULT_LOW_STOCK_THRESHOLD, 1)
        else:
            available = (level.available or 0) + delta
            changed = replace(level, available=available, version=level.version + 1)
        self._t.levels[key] = changed
        return changed

    async def take(self, store_id: int, lines: Sequence[MovementLine]) -> dict[int, StockLevel]:
        taken: dict[int, StockLevel] = {}
        for line in lines:
            sku = self._t.skus.get(line.sku_id)
            if sku is not None and sku.tracked:
                level = await self.change_level(store_id, line.sku_id, line.quantity)
                if level is not None:
                    taken[line.sku_id] = level
        return taken

    async def sku_stock(self, store_id: int, sku_ids: Iterable[int]) -> dict[int, SkuStock]:
        found: dict[int, SkuStock] = {}
        for sku_id in sku_ids:
            sku = self._t.skus.get(sku_id)
            if sku is not None:
                level = self._t.levels.get((store_id, sku_id))
                found[sku_id] = SkuStock(
                    sku.tracked,
                    level.available if level else None,
                    level.sold_out if level else False,
                )
        return found

    async def add_ledger_rows(
        self,
        *,
        movement_id: int,
        store_id: int,
        kind: LedgerKind,
        rows: Sequence[tuple[int, int, int]],
    ) -> None:
        for sku_id, delta, balance_after in rows:
            self._t.ledger.append(
                LedgerRow(movement_id, store_id, sku_id, kind, delta, balance_after)
            )

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None:
        return self._t.levels.get((store_id, sku_id))

    async def set_sold_out(self, store_id: int, sku_id: int, sold_out: bool) -> StockLevel:
        return self._upsert(store_id, sku_id, None, sold_out=sold_out)

    async def set_threshold(self, store_id: int, sku_id: int, threshold: int) -> StockLevel:
        return self._upsert(store_id, sku_id, 0, low_stock_threshold=threshold)

    def _upsert(
        self,
        store_id: int,
        sku_id: int,
        available: int | None,
        *,
        sold_out: bool | None = None,
        low_stock_threshold: int | None = None,
    ) -> StockLevel:
        key = (store_id, sku_id)
        level = self._t.levels.get(key)
        if level is None:
            level = StockLevel(store_id, sku_id, available, False, DEFAULT_LOW_STOCK_THRESHOLD, 0)
        level = replace(
            level,
            sold_out=level.sold_out if sold_out is None else sold_out,
            low_stock_threshold=(
                level.low_stock_threshold if low_stock_threshold is None else low_stock_threshold
            ),
            version=level.version + 1,
        )
        self._t.levels[key] = level
        return level


class FakeMemberRepository(_Repository):
    async def get(self, member_id: int, *, lock: bool = False) -> Member | None:
        return self._t.members.get(member_id)

    async def by_phone(self, phone: str) -> Member | None:
        return next((m for m in self._t.members.values() if m.phone == phone), None)

    async def by_openid(self, openid: str) -> Member | None:
        return next((m for m in self._t.members.values() if m.wechat_openid == openid), None)

    async def add(
        self, *, phone: str | None, openid: str | None, nickname: str, unionid: str | None = None
    ) -> Member:
        _not_faked("members.add")

    async def save_profile(self, member: Member) -> None:
        if member.id in self._t.members:
            stored = self._t.members[member.id]
            self._t.members[member.id] = replace(member, created_at=stored.created_at)

    async def last_code(self, phone: str) -> LoginCode | None:
        _not_faked("members.last_code")

    async def codes_since(
        self, *, phone: str | None = None, ip: str | None = None, since: datetime
    ) -> int:
        _not_faked("members.codes_since")

    async def add_code(
        self, *, phone: str, ip: str, code_hash: str, created_at: datetime, expires_at: datetime
    ) -> None:
        _not_faked("members.add_code")

    async def code_failed(self, code_id: int) -> None:
        _not_faked("members.code_failed")

    async def consume_code(self, code_id: int) -> bool:
        _not_faked("members.consume_code")

    async def take_device_events(self, device_id: str, member_id: int, *, keep: int) -> int:
        _not_faked("members.take_device_events")

    async def add_refresh_token(
        self, *, member_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None:
        _not_faked("members.add_refresh_token")

    async def refresh_token(self, token_hash: str) -> tuple[int, str, datetime, bool] | None:
        _not_faked("members.refresh_token")

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        _not_faked("members.revoke_refresh_token")

    async def revoke_family(self, family: str, at: datetime) -> None:
        _not_faked("members.revoke_family")

    async def addresses(self, member_id: int) -> list[Address]:
        _not_faked("members.addresses")

    async def add_address(self, address: Address) -> Address:
        _not_faked("members.add_address")

    async def save_address(self, address: Address) -> None:
        _not_faked("members.save_address")

    async def delete_address(self, address_id: int) -> None:
        _not_faked("members.delete_address")

    async def change_points(
        self,
        *,
        member_id: int,
        kind: PointsKind,
        reference: str,
        delta: int,
        expires_at: datetime | None = None,
    ) -> int | None:
        for row in self._t.points_ledger:
            if (row.member_id, row.kind, row.reference) == (member_id, kind, reference):
                return row.balance_after  # a replay changes nothing
        if member_id not in self._t.members:
            return None
        balance = self._t.points[member_id] + delta
        if balance < 0:
            return None
        self._t.points[member_id] = balance
        self._t.points_ledger.append(
            PointsRow(self._t.next_id(), member_id, kind, reference, delta, balance, expires_at)
        )
        return balance

    async def add_spend(
        self, *, member_id: int, reference: str, amount_fen: int, at: datetime
    ) -> bool:
        if (member_id, reference) in self._t.spend:
            return False
        self._t.spend[(member_id, reference)] = (amount_fen, at)
        return True

    async def spend_since(self, member_id: int, since: datetime) -> int:
        return sum(
            amount
            for (owner, _), (amount, at) in self._t.spend.items()
            if owner == member_id and at >= since
        )

    async def expirable_points(self, now: datetime, limit: int) -> list[tuple[int, int, int]]:
        expired = {r.reference for r in self._t.points_ledger if r.kind is PointsKind.EXPIRE}
        due = [
            (r.member_id, r.id, r.delta)
            for r in self._t.points_ledger
            if r.kind is PointsKind.EARN
            and r.expires_at is not None
            and r.expires_at <= now
            and str(r.id) not in expired
        ]
        return sorted(due, key=lambda d: d[1])[:limit]

    async def points_balance(self, member_id: int) -> int:
        return self._t.points.get(member_id, 0)

    async def last_check_in(self, member_id: int) -> tuple[date, int] | None:
        days = [(day, s) for (owner, day), s in self._t.check_ins.items() if owner == member_id]
        return max(days) if days else None

    async def add_check_in(self, member_id: int, day: date, streak: int) -> None:
        if (member_id, day) in self._t.check_ins:  # the primary key
            raise AssertionError("a second check-in row for the same day")
        self._t.check_ins[(member_id, day)] = streak


class FakeCouponRepository(_Repository):
    async def get_template(self, template_id: int) -> CouponTemplate | None:
        return self._t.templates.get(template_id)

    async def add_template(self, template: CouponTemplate) -> CouponTemplate:
        stored = replace(template, id=self._t.next_id())
        self._t.templates[stored.id] = stored
        return stored

    async def save_template(self, template: CouponTemplate) -> None:
        stored = self._t.templates.get(template.id)
        if stored is not None:  # only take_one changes ``issued``
            self._t.templates[template.id] = replace(template, issued=stored.issued)

    async def take_one(self, template_id: int) -> Taken | None:
        t = self._t.templates.get(template_id)
        if t is None or t.issued >= t.total_quantity or t.status is not TemplateStatus.ACTIVE:
            return None
        self._t.templates[template_id] = replace(t, issued=t.issued + 1)
        return Taken(t.total_quantity - t.issued - 1)

    async def claimed_by(self, template_id: int, member_id: int) -> int:
        return sum(
            1
            for row in self._t.coupons.values()
            if row.coupon.template_id == template_id
            and row.coupon.member_id == member_id
            and row.bonus_for_id is None
        )

    async def lock_claimant(self, member_id: int, template_id: int) -> Claimant | None:
        member = self._t.members.get(member_id)
        if member is None:
            return None
        return Claimant(
            member,
            self._t.templates.get(template_id),
            await self.claimed_by(template_id, member_id),
        )

    async def add_coupon(
        self,
        *,
        template_id: int,
        member_id: int,
        valid_from: datetime,
        valid_until: datetime,
        claimed_at: datetime,
        shared_from_id: int | None = None,
        bonus_for_id: int | None = None,
    ) -> Coupon:
        coupon = Coupon(
            id=self._t.next_id(),
            template_id=template_id,
            member_id=member_id,
            status=CouponStatus.AVAILABLE,
            valid_from=valid_from,
            valid_until=valid_until,
            claimed_at=claimed_at,
        )
        self._t.coupons[coupon.id] = CouponRow(coupon, shared_from_id, bonus_for_id)
        return coupon

    async def get_coupon(self, coupon_id: int) -> Coupon | None:
        row = self._t.coupons.get(coupon_id)
        return row.coupon if row else None

    async def claims_through(self, coupon_id: int) -> int:
        return sum(1 for row in self._t.coupons.values() if row.shared_from_id == coupon_id)

    async def has_bonus(self, coupon_id: int) -> bool:
        return any(row.bonus_for_id == coupon_id for row in self._t.coupons.values())

    async def change_status(
        self, coupon_id: int, current: CouponStatus, target: CouponStatus, order_ref: str | None
    ) -> bool:
        row = self._t.coupons.get(coupon_id)
        if row is None or row.coupon.status is not current:
            return False
        coupon = replace(row.coupon, status=target, order_ref=order_ref)
        self._t.coupons[coupon_id] = replace(row, coupon=coupon)
        return True


class FakeIssueJobRepository(_Repository):
    async def add(self, template_id: int, segment: Segment) -> IssueJob:
        job = IssueJob(
            id=self._t.next_id(),
            template_id=template_id,
            segment=segment,
            status=JobStatus.QUEUED,
            issued=0,
            skipped=0,
            last_member_id=0,
            finished_at=None,
        )
        self._t.jobs[job.id] = job
        return job

    async def get(self, job_id: int, *, lock: bool = False) -> IssueJob | None:
        return self._t.jobs.get(job_id)

    async def save(self, job: IssueJob) -> None:
        self._t.jobs[job.id] = job

    async def unfinished(self) -> list[int]:
        return sorted(
            j.id for j in self._t.jobs.values() if j.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        )

    async def segment_members(
        self, segment: Segment, *, now: datetime, after_id: int, limit: int
    ) -> list[int]:
        found: list[int] = []
        for member in sorted(self._t.members.values(), key=lambda m: m.id):
            if member.id <= after_id or (segment.tier is not None and member.tier != segment.tier):
                continue
            if segment.dormant_days is not None:
                cutoff = now - timedelta(days=segment.dormant_days)
                spent = any(
                    owner == member.id and at >= cutoff
                    for (owner, _), (_, at) in self._t.spend.items()
                )
                came = any(
                    owner == member.id and day >= cutoff.date() for owner, day in self._t.check_ins
                )
                if member.created_at >= cutoff or spent or came:
                    continue
            found.append(member.id)
        return found[:limit]


class FakeOrderRepository(_Repository):
    async def candidates(self, sku_ids: Sequence[int], store_id: int | None) -> Candidates:
        t = self._t
        stores = [s for s in t.stores.values() if store_id is None or s.id == store_id]
        items: dict[tuple[int, int], CatalogItem] = {}
        stock: dict[tuple[int, int], StockView] = {}
        for store in stores:
            for sku_id in sku_ids:
                sku = t.skus.get(sku_id)
                product = t.products.get(sku.product_id) if sku else None
                if sku is None or product is None:
                    continue
                key = (store.id, sku.id)
                items[key] = CatalogItem(sku, product, store_price(sku, t.store_prices.get(key)))
                level = t.levels.get(key)
                if level is not None:
                    stock[key] = stock_view(sku, level.available, level.sold_out, level.version)
                elif sku.tracked:
                    stock[key] = stock_view(sku, 0, False, 0)
        return Candidates(stores, items, stock, dict(t.loads))

    async def add(self, order: Order) -> int | None:
        if order.member_id is not None:
            taken = await self.by_key(order.member_id, order.idempotency_key)
        else:
            assert order.external_id is not None
            taken = await self.by_external(order.source.value, order.external_id)
        if taken is not None:
            return None
        order_id = self._t.next_id()
        self._t.orders[order_id] = replace(order, id=order_id)
        return order_id

    async def add_lines(self, order_id: int, lines: Sequence[OrderLine]) -> None:
        order = self._t.orders[order_id]
        self._t.orders[order_id] = replace(order, lines=tuple(lines))

    async def by_key(self, member_id: int, key: str) -> Order | None:
        return next(
            (
                o
                for o in self._t.orders.values()
                if (o.member_id, o.idempotency_key) == (member_id, key)
            ),
            None,
        )

    async def by_external(self, source: str, external_id: str) -> Order | None:
        return next(
            (
                o
                for o in self._t.orders.values()
                if (o.source.value, o.external_id) == (source, external_id)
            ),
            None,
        )

    async def keys_of_campaign(self, campaign_id: int) -> frozenset[tuple[int, str]]:
        return frozenset(
            (o.member_id, o.idempotency_key)
            for o in self._t.orders.values()
            if o.campaign_id == campaign_id and o.member_id is not None
        )

    async def placing(self, member_id: int, key: str) -> tuple[Member | None, Order | None]:
        member = self._t.members.get(member_id)
        return member, (await self.by_key(member_id, key) if member is not None else None)

    async def in_group(self, group_id: int) -> list[Order]:
        return sorted(
            (o for o in self._t.orders.values() if o.group_id == group_id), key=lambda o: o.id
        )

    async def get(self, order_id: int) -> Order | None:
        return self._t.orders.get(order_id)

    async def change_status(
        self,
        order_id: int,
        current: OrderStatus,
        target: OrderStatus,
        *,
        at: datetime,
        **changes: object,
    ) -> int | None:
        _not_faked("orders.change_status")

    async def expired_unpaid(self, now: datetime, limit: int) -> list[int]:
        _not_faked("orders.expired_unpaid")

    async def add_payment(
        self, *, order_id: int, provider: str, transaction_id: str, amount_fen: int, at: datetime
    ) -> bool:
        _not_faked("orders.add_payment")

    async def payment_order(self, provider: str, transaction_id: str) -> int | None:
        _not_faked("orders.payment_order")

    async def add_refund(self, refund: Refund) -> Refund | None:
        _not_faked("orders.add_refund")

    async def get_refund(self, refund_id: int) -> Refund | None:
        _not_faked("orders.get_refund")

    async def refund_by_key(self, order_id: int, key: str) -> Refund | None:
        _not_faked("orders.refund_by_key")

    async def refund_by_reference(self, reference: str) -> Refund | None:
        _not_faked("orders.refund_by_reference")

    async def open_refund_request(self, order_id: int) -> Refund | None:
        _not_faked("orders.open_refund_request")

    async def submitted_refunds(
        self, updated_before: datetime, *, after_id: int, limit: int
    ) -> list[Refund]:
        _not_faked("orders.submitted_refunds")

    async def move_refund(
        self,
        refund_id: int,
        current: Sequence[RefundStatus],
        target: RefundStatus,
        *,
        at: datetime,
        amount_fen: int | None = None,
        lines: Sequence[RefundLine] | None = None,
        stock_returned: bool | None = None,
        coupon_restored: bool | None = None,
        refusal_reason: str | None = None,
        decided_by: str | None = None,
        provider_refund_id: str | None = None,
    ) -> Refund | None:
        _not_faked("orders.move_refund")

    async def touch(self, order_id: int, at: datetime, *, version: int | None = None) -> int | None:
        _not_faked("orders.touch")

    async def apply_refund(
        self,
        order_id: int,
        version: int,
        amount_fen: int,
        lines: Sequence[RefundLine],
        at: datetime,
    ) -> int | None:
        _not_faked("orders.apply_refund")

    async def set_points_earned(self, order_id: int, points: int) -> None:
        _not_faked("orders.set_points_earned")

    async def points_earned(self, order_id: int) -> int:
        _not_faked("orders.points_earned")

    async def change_load(self, store_id: int, delta: int) -> None:
        self._t.loads[store_id] = self._t.loads.get(store_id, 0) + delta


class FakeDeliveryRepository(_Repository):
    async def add(self, delivery: Delivery) -> Delivery:
        _not_faked("deliveries.add")

    async def get(self, delivery_id: int) -> Delivery | None:
        _not_faked("deliveries.get")

    async def latest_for_order(self, order_id: int) -> Delivery | None:
        _not_faked("deliveries.latest_for_order")

    async def save(self, delivery: Delivery, *, expected_version: int) -> bool:
        _not_faked("deliveries.save")

    async def add_position(
        self, delivery_id: int, point: GeoPoint, recorded_at: datetime, received_at: datetime
    ) -> None:
        _not_faked("deliveries.add_position")

    async def nearest_idle_rider(self, store_id: int, near: GeoPoint) -> tuple[int, Courier] | None:
        _not_faked("deliveries.nearest_idle_rider")

    async def claim_rider(self, rider_id: int, store_id: int) -> Courier | None:
        _not_faked("deliveries.claim_rider")

    async def release_rider(self, rider_id: int, at: GeoPoint | None) -> None:
        _not_faked("deliveries.release_rider")

    async def add_rider(self, store_id: int, courier: Courier) -> int:
        _not_faked("deliveries.add_rider")

    async def set_provider(
        self,
        store_id: int,
        provider: Provider,
        platforms: tuple[Provider, ...] | None = None,
        rule: CarrierRule | None = None,
    ) -> bool:
        _not_faked("deliveries.set_provider")

    async def add_quotes(
        self, delivery_id: int, quotes: list[Quote], ranking: list[Provider], at: datetime
    ) -> None:
        _not_faked("deliveries.add_quotes")

    async def quotes(self, delivery_id: int) -> list[tuple[Quote, int | None, bool]]:
        _not_faked("deliveries.quotes")

    async def choose(
        self, delivery_id: int, provider: Provider, refused: Provider | None, reason: str | None
    ) -> None:
        _not_faked("deliveries.choose")

    async def unaccepted(self, before: datetime, limit: int) -> list[int]:
        _not_faked("deliveries.unaccepted")

    async def prune_positions(self, before: datetime) -> int:
        _not_faked("deliveries.prune_positions")


class FakeCampaignRepository(_Repository):
    async def add(self, spec: CampaignSpec, *, created_by: str, at: datetime) -> Campaign:
        campaign = Campaign(
            id=self._t.next_id(), spec=spec, ended_at=None, closed=False, created_at=at
        )
        self._t.campaigns[campaign.id] = campaign
        return campaign

    async def get(self, campaign_id: int) -> Campaign | None:
        return self._t.campaigns.get(campaign_id)

    async def end(self, campaign_id: int, at: datetime) -> bool:
        c = self._t.campaigns.get(campaign_id)
        if c is None or c.ended_at is not None or c.spec.ends_at <= at:
            return False
        self._t.campaigns[campaign_id] = replace(c, ended_at=at)
        return True

    async def to_close(self, now: datetime, limit: int) -> list[int]:
        due = [
            c.id
            for c in self._t.campaigns.values()
            if not c.closed
            and (c.spec.ends_at <= now or (c.ended_at is not None and c.ended_at <= now))
        ]
        return sorted(due)[:limit]

    async def close(self, campaign_id: int) -> list[tuple[int, int, int]] | None:
        c = self._t.campaigns.get(campaign_id)
        if c is None or c.closed:
            return None
        self._t.campaigns[campaign_id] = replace(c, closed=True)
        left: list[tuple[int, int, int]] = []
        for (cid, store_id, sku_id), q in list(self._t.quotas.items()):
            if cid != campaign_id:
                continue
            if not q.closed:
                left.append((store_id, sku_id, q.remaining))
            self._t.quotas[(cid, store_id, sku_id)] = replace(q, remaining=0, closed=True)
        return left

    async def add_quotas(self, campaign_id: int, lines: Iterable[tuple[int, int, int]]) -> None:
        for store_id, sku_id, units in lines:
            self._t.quotas[(campaign_id, store_id, sku_id)] = Quota(units, units, False)

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None:
        q = self._t.quotas.get((campaign_id, store_id, sku_id))
        return q.remaining if q else None

    async def take_quota(
        self, campaign_id: int, store_id: int, sku_id: int, units: int
    ) -> Taken | None:
        key = (campaign_id, store_id, sku_id)
        q = self._t.quotas.get(key)
        if q is None or q.closed or q.remaining < units:
            return None
        self._t.quotas[key] = replace(q, remaining=q.remaining - units)
        return Taken(q.remaining - units)

    async def return_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        key = (campaign_id, store_id, sku_id)
        q = self._t.quotas.get(key)
        if q is None or q.closed:
            return False
        self._t.quotas[key] = replace(q, remaining=q.remaining + units)
        return True

    async def enter(self, campaign_id: int, member_id: int, limit: int) -> bool:
        entries = self._t.entries.get((campaign_id, member_id))
        if entries is not None and entries >= limit:
            return False
        self._t.entries[(campaign_id, member_id)] = (entries or 0) + 1
        return True

    async def leave(self, campaign_id: int, member_id: int) -> None:
        entries = self._t.entries.get((campaign_id, member_id), 0)
        if entries > 0:
            self._t.entries[(campaign_id, member_id)] = entries - 1

    async def add_group(
        self,
        *,
        campaign_id: int,
        leader_id: int,
        store_id: int,
        sku_id: int,
        size: int,
        expires_at: datetime,
        at: datetime,
    ) -> GroupBuy:
        group = GroupBuy(
            id=self._t.next_id(),
            campaign_id=campaign_id,
            leader_id=leader_id,
            store_id=store_id,
            sku_id=sku_id,
            size=size,
            seats_taken=1,
            seats_paid=0,
            status=GroupStatus.OPEN,
            expires_at=expires_at,
            created_at=at,
            version=1,
        )
        self._t.groups[group.id] = group
        return group

    async def get_group(self, group_id: int) -> GroupBuy | None:
        return self._t.groups.get(group_id)

    async def cut_groups_short(self, campaign_id: int, at: datetime) -> None:
        for g in list(self._t.groups.values()):
            if g.campaign_id == campaign_id and g.status is GroupStatus.OPEN and g.expires_at > at:
                self._t.groups[g.id] = replace(g, expires_at=at, version=g.version + 1)

    def _save_group(self, changed: GroupBuy) -> GroupBuy:
        changed = replace(changed, version=changed.version + 1)
        self._t.groups[changed.id] = changed
        return changed

    async def take_seat(self, group_id: int, now: datetime) -> GroupBuy | None:
        g = self._t.groups.get(group_id)
        if (
            g is None
            or g.status is not GroupStatus.OPEN
            or g.seats_taken >= g.size
            or g.expires_at <= now
        ):
            return None
        return self._save_group(replace(g, seats_taken=g.seats_taken + 1))

    async def add_seat(self, group_id: int, member_id: int, order_id: int, at: datetime) -> bool:
        if (group_id, member_id) in self._t.seats:
            return False
        member = self._t.members.get(member_id)
        self._t.seats[(group_id, member_id)] = GroupSeat(
            group_id, member_id, order_id, SeatStatus.HELD, at, member.nickname if member else ""
        )
        return True

    async def seat(self, group_id: int, member_id: int) -> GroupSeat | None:
        return self._t.seats.get((group_id, member_id))

    async def seats(self, group_id: int) -> list[GroupSeat]:
        return sorted(
            (s for s in self._t.seats.values() if s.group_id == group_id),
            key=lambda s: (s.joined_at, s.member_id),
        )

    async def release_seat(self, group_id: int, member_id: int) -> GroupBuy | None:
        s = self._t.seats.get((group_id, member_id))
        if s is None or s.status is not SeatStatus.HELD:
            return None
        self._t.seats[(group_id, member_id)] = replace(s, status=SeatStatus.RELEASED)
        g = self._t.groups[group_id]
        if g.status is not GroupStatus.OPEN:
            return None
        return self._save_group(replace(g, seats_taken=g.seats_taken - 1))

    async def pay_seat(self, group_id: int, member_id: int, now: datetime) -> GroupBuy | None:
        g = self._t.groups.get(group_id)
        if g is None or g.status is not GroupStatus.OPEN or g.expires_at <= now:
            return None
        s = self._t.seats.get((group_id, member_id))
        if s is None or s.status is not SeatStatus.HELD:
            raise RuntimeError("a paid group order without a held seat")
        self._t.seats[(group_id, member_id)] = replace(s, status=SeatStatus.PAID)
        return self._save_group(replace(g, seats_paid=g.seats_paid + 1))

    async def set_group_status(
        self, group_id: int, current: GroupStatus, target: GroupStatus
    ) -> GroupBuy | None:
        g = self._t.groups.get(group_id)
        if g is None or g.status is not current:
            return None
        return self._save_group(replace(g, status=target))

    async def expired_groups(self, now: datetime, limit: int) -> list[int]:
        due = [
            g
            for g in self._t.groups.values()
            if g.status is GroupStatus.OPEN and g.expires_at <= now
        ]
        return [g.id for g in sorted(due, key=lambda g: g.expires_at)][:limit]

    async def add_bargain(self, bargain: Bargain) -> Bargain:
        stored = replace(bargain, id=self._t.next_id(), helps_done=0, order_id=None, version=1)
        self._t.bargains[stored.id] = stored
        return stored

    async def get_bargain(self, bargain_id: int) -> Bargain | None:
        return self._t.bargains.get(bargain_id)

    async def has_helped(self, bargain_id: int, helper_id: int) -> bool:
        return (bargain_id, helper_id) in self._t.helps

    async def cut(self, bargain_id: int, now: datetime) -> Bargain | None:
        b = self._t.bargains.get(bargain_id)
        if (
            b is None
            or b.helps_done >= len(b.steps)
            or b.order_id is not None
            or b.expires_at <= now
        ):
            return None
        cut = replace(b, helps_done=b.helps_done + 1, version=b.version + 1)
        self._t.bargains[bargain_id] = cut
        return cut

    async def record_help(
        self, bargain_id: int, helper_id: int, step_no: int, cut_fen: int, at: datetime
    ) -> bool:
        if (bargain_id, helper_id) in self._t.helps:
            return False
        self._t.helps[(bargain_id, helper_id)] = (step_no, cut_fen)
        return True

    async def count_help(self, member_id: int, day: date, cap: int) -> bool:
        given = self._t.help_days.get((member_id, day))
        if given is not None and given >= cap:
            return False
        self._t.help_days[(member_id, day)] = (given or 0) + 1
        return True

    async def purchase(self, bargain_id: int, order_id: int, now: datetime) -> bool:
        b = self._t.bargains.get(bargain_id)
        if b is None or b.order_id is not None or b.expires_at <= now:
            return False
        self._t.bargains[bargain_id] = replace(b, order_id=order_id, version=b.version + 1)
        return True

    async def reopen(self, bargain_id: int, order_id: int) -> None:
        b = self._t.bargains.get(bargain_id)
        if b is not None and b.order_id == order_id:
            self._t.bargains[bargain_id] = replace(b, order_id=None, version=b.version + 1)

    async def add_invitation(
        self,
        *,
        campaign_id: int,
        kind: InviteKind,
        target_id: int,
        inviter_id: int,
        invitee_id: int,
        invitee_was_new: bool,
    ) -> bool:
        key = (kind, target_id, invitee_id)
        if any((i.kind, i.target_id, i.invitee_id) == key for i in self._t.invitations):
            return False
        self._t.invitations.append(
            Invitation(campaign_id, kind, target_id, inviter_id, invitee_id, invitee_was_new)
        )
        return True

    async def report(self, campaign_id: int) -> CampaignReport:
        _not_faked("campaigns.report")


# --- the unit of work ---------------------------------------------------------------------


class FakeKitchenRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    @property
    def _t(self) -> Tables:
        return self._db.tables

    async def lock_store(self, store_id: int) -> bool:
        return store_id in self._t.stores

    async def stations(self, store_id: int) -> list[KitchenStation]:
        found = [s for s in self._t.stations.values() if s.store_id == store_id]
        return sorted(found, key=lambda s: (s.sort, s.id))

    async def get_station(self, station_id: int) -> KitchenStation | None:
        return self._t.stations.get(station_id)

    async def add_station(
        self, *, store_id: int, name: str, sort: int, is_default: bool
    ) -> KitchenStation:
        station = KitchenStation(self._t.next_id(), store_id, name, sort, is_default)
        self._t.stations[station.id] = station
        return station

    async def save_station(self, station: KitchenStation) -> None:
        self._t.stations[station.id] = station

    async def clear_default(self, store_id: int) -> None:
        for s in list(self._t.stations.values()):
            if s.store_id == store_id and s.is_default:
                self._t.stations[s.id] = replace(s, is_default=False)

    async def remove_station(self, station_id: int) -> None:
        self._t.stations.pop(station_id, None)
        for key, route in list(self._t.routes.items()):
            if route.station_id == station_id:
                del self._t.routes[key]

    async def routes(self, store_id: int) -> list[StationRoute]:
        return [r for (sid, _, _), r in self._t.routes.items() if sid == store_id]

    async def set_routes(
        self,
        store_id: int,
        station_id: int | None,
        category_ids: Sequence[int],
        product_ids: Sequence[int],
    ) -> None:
        for kind, ids in (("category", category_ids), ("product", product_ids)):
            for target in ids:
                self._t.routes.pop((store_id, kind, target), None)
                if station_id is not None:
                    self._t.routes[(store_id, kind, target)] = StationRoute(
                        station_id,
                        target if kind == "category" else None,
                        target if kind == "product" else None,
                    )

    async def existing(
        self, category_ids: Sequence[int], product_ids: Sequence[int]
    ) -> tuple[set[int], set[int]]:
        known = self._t.categories | {p.category_id for p in self._t.products.values()}
        return set(category_ids) & known, set(product_ids) & set(self._t.products)

    async def dishes(self, sku_ids: Iterable[int]) -> dict[int, TicketDish]:
        found: dict[int, TicketDish] = {}
        wanted = set(sku_ids)
        while wanted:
            for sku_id in wanted:
                sku = self._t.skus.get(sku_id)
                product = self._t.products.get(sku.product_id) if sku else None
                if sku is None or product is None:
                    continue
                name = product.name if not sku.name else f"{product.name}（{sku.name}）"
                found[sku_id] = TicketDish(
                    sku_id, product.id, product.category_id, name, sku.specs, sku.components
                )
            wanted = {c.sku_id for d in found.values() for c in d.components} - set(found)
            wanted = {w for w in wanted if w in self._t.skus}
        return found

    async def add_tickets(self, tickets: Sequence[NewTicket]) -> list[Ticket]:
        made = [Ticket(self._t.next_id(), t, None, 0, 1) for t in tickets]
        self._t.tickets.update({t.id: t for t in made})
        return made

    async def tickets_of_orders(
        self, store_id: int, order_ids: Sequence[int], station_id: int | None
    ) -> list[Ticket]:
        return [
            t
            for t in self._t.tickets.values()
            if t.ticket.store_id == store_id
            and t.ticket.order_id in order_ids
            and (station_id is None or t.ticket.station_id == station_id)
        ]

    async def mark_printed(self, ticket_ids: Sequence[int], at: datetime) -> list[Ticket]:
        for tid in ticket_ids:
            t = self._t.tickets[tid]
            self._t.tickets[tid] = replace(
                t, printed_at=at, print_count=t.print_count + 1, version=t.version + 1
            )
        return [self._t.tickets[tid] for tid in ticket_ids]

    async def get_tickets(self, ticket_ids: Sequence[int]) -> list[Ticket]:
        return [self._t.tickets[t] for t in ticket_ids if t in self._t.tickets]

    async def open_tickets(self, store_id: int, station_id: int | None, limit: int) -> list[Ticket]:
        return [
            t
            for t in self._t.tickets.values()
            if t.ticket.store_id == store_id
            and (station_id is None or t.ticket.station_id == station_id)
        ][:limit]


class FakeRepositories:
    """The repositories on one fake database (what ``reading()`` hands out)."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._catalog = FakeCatalogRepository(db)
        self._stock = FakeStockRepository(db)
        self._members = FakeMemberRepository(db)
        self._coupons = FakeCouponRepository(db)
        self._orders = FakeOrderRepository(db)
        self._deliveries = FakeDeliveryRepository(db)
        self._campaigns = FakeCampaignRepository(db)
        self._kitchen = FakeKitchenRepository(db)

    @property
    def kitchen(self) -> FakeKitchenRepository:
        return self._kitchen

    @property
    def catalog(self) -> FakeCatalogRepository:
        return self._catalog

    @property
    def stock(self) -> FakeStockRepository:
        return self._stock

    @property
    def members(self) -> FakeMemberRepository:
        return self._members

    @property
    def coupons(self) -> FakeCouponRepository:
        return self._coupons

    @property
    def orders(self) -> FakeOrderRepository:
        return self._orders

    @property
    def deliveries(self) -> FakeDeliveryRepository:
        return self._deliveries

    @property
    def campaigns(self) -> FakeCampaignRepository:
        return self._campaigns


class FakeUnitOfWork(FakeRepositories):
    """One transaction on a fake database: a snapshot on enter, kept by ``commit()``,
    put back on leaving otherwise. ``events`` holds what committed units recorded."""

    def __init__(
        self,
        db: FakeDatabase | None = None,
        *,
        one_writer: bool = False,
        board: ExhaustionBoard = NO_BOARD,
    ) -> None:
        super().__init__(db if db is not None else FakeDatabase())
        self._jobs = FakeIssueJobRepository(self.db)
        self._one_writer = one_writer
        self.board = board
        self.begun = 0  # write transactions opened (a refusal from the board opens none)
        self._snapshot: Tables | None = None
        self._pending: list[Event] = []
        self.committed = False
        self.commits = 0
        self.rollbacks = 0
        self.events: list[Event] = []
        self._pending_calls: list[OutboundCall] = []
        self.calls: list[OutboundCall] = []  # committed calls out, each (kind, key) once
        self.written_objects: list[tuple[str, int]] = []  # named for the audit log

    @property
    def jobs(self) -> FakeIssueJobRepository:
        return self._jobs

    @property
    def one_writer(self) -> bool:
        return self._one_writer

    def reading(self) -> AbstractAsyncContextManager[Repositories]:
        return self._reading()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Repositories]:
        yield FakeRepositories(self.db)

    async def peek_template(self, template_id: int) -> CouponTemplate | None:
        return self.db.tables.templates.get(template_id)

    def record(self, event: Event) -> None:
        self._pending.append(event)

    def call(self, call: OutboundCall) -> None:
        self._pending_calls.append(call)

    def wrote(self, kind: str, object_id: int, store_id: int | None = None) -> None:
        self.written_objects.append((kind, object_id))

    def unless_gone(self, supply: Supply) -> FakeUnitOfWork:
        return self  # no lock to queue for: nothing to leave

    async def __aenter__(self) -> FakeUnitOfWork:
        if self._snapshot is not None:
            raise RuntimeError("the unit of work is open already")
        self._snapshot = self.db.tables.snapshot()
        self._pending = []
        self._pending_calls = []
        self.committed = False
        self.begun += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            return
        if exc_type is not None:
            self.rollbacks += 1
        self.db.tables = snapshot  # whatever was not committed is gone
        self._pending = []
        self._pending_calls = []

    async def commit(self) -> None:
        if self._snapshot is None:
            raise RuntimeError("commit() outside of 'async with uow'")
        self._snapshot = self.db.tables.snapshot()
        self.events.extend(self._pending)
        self.board.committed(e for e in self._pending if isinstance(e, SupplyChanged))
        self._pending = []
        known = {(c.kind, c.key) for c in self.calls}
        for call in self._pending_calls:
            if (call.kind, call.key) not in known:
                known.add((call.kind, call.key))
                self.calls.append(call)
        self._pending_calls = []
        self.committed = True
        self.commits += 1


def as_unit_of_work(uow: FakeUnitOfWork) -> UnitOfWork:
    """Where mypy checks that the fake is a ``UnitOfWork`` (and so each fake repository the
    repository Protocol it stands for)."""
    return uow


def _as_ports(
    repos: FakeRepositories, jobs: FakeIssueJobRepository
) -> tuple[
    Repositories,
    CatalogRepository,
    StockRepository,
    MemberRepository,
    CouponRepository,
    IssueJobRepository,
    OrderRepository,
    DeliveryRepository,
    CampaignRepository,
]:
    return (
        repos,
        repos.catalog,
        repos.stock,
        repos.members,
        repos.coupons,
        jobs,
        repos.orders,
        repos.deliveries,
        repos.campaigns,
    )
