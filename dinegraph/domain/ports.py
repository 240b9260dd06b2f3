"""What the domain needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol

from dinegraph.domain.bargains import Bargain
from dinegraph.domain.campaigns import Campaign, CampaignReport, CampaignSpec
from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
)
from dinegraph.domain.coupons import Coupon, CouponStatus, CouponTemplate, IssueJob, Segment
from dinegraph.domain.delivery import Courier, Delivery, Provider
from dinegraph.domain.events import Event
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.group_buys import GroupBuy, GroupSeat, GroupStatus
from dinegraph.domain.invites import Invite, InviteKind
from dinegraph.domain.members import Address, LoginCode, Member, PointsKind
from dinegraph.domain.orders import Order, OrderLine, OrderStatus
from dinegraph.domain.quotes import Candidates
from dinegraph.domain.refunds import RefundLine
from dinegraph.domain.stock import (
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    StockLevel,
)


class CatalogRepository(Protocol):
    async def get_store(self, store_id: int) -> Store | None: ...

    async def get_category(self, category_id: int) -> Category | None: ...

    async def category_parents(self) -> Mapping[int, int | None]: ...

    async def add_category(self, *, name: str, parent_id: int | None, sort: int) -> Category: ...

    async def save_category(self, category: Category) -> None: ...

    async def get_product(self, product_id: int) -> Product | None: ...

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
    ) -> Product: ...

    async def save_product(self, product: Product) -> None: ...

    async def get_sku(self, sku_id: int) -> Sku | None: ...

    async def skus_with_kinds(
        self, sku_ids: Iterable[int]
    ) -> dict[int, tuple[Sku, ProductKind]]: ...

    async def next_sku_sort(self, product_id: int) -> int: ...

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
    ) -> Sku: ...

    async def save_sku(self, sku: Sku) -> None: ...

    async def set_store_price(self, store_id: int, sku_id: int, price_fen: int | None) -> None: ...


class StockRepository(Protocol):
    async def claim_movement(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
    ) -> Movement | None:
        """Record a movement's key; None when the key is taken (waits for a racing writer)."""

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None: ...

    async def change_level(self, store_id: int, sku_id: int, delta: int) -> StockLevel | None:
        """Add ``delta`` unless the level would go below zero (then None); creates the row
        of a tracked SKU on its first restock."""

    async def add_ledger_row(
        self,
        *,
        movement_id: int,
        store_id: int,
        sku_id: int,
        kind: LedgerKind,
        delta: int,
        balance_after: int,
    ) -> None: ...

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None: ...

    async def set_sold_out(self, store_id: int, sku_id: int, sold_out: bool) -> StockLevel: ...

    async def set_threshold(self, store_id: int, sku_id: int, threshold: int) -> StockLevel: ...


class MemberRepository(Protocol):
    async def get(self, member_id: int, *, lock: bool = False) -> Member | None: ...

    async def by_phone(self, phone: str) -> Member | None: ...

    async def by_openid(self, openid: str) -> Member | None: ...

    async def add(self, *, phone: str | None, openid: str | None, nickname: str) -> Member: ...

    async def save_profile(self, member: Member) -> None: ...

    async def last_code(self, phone: str) -> LoginCode | None: ...

    async def codes_since(
        self, *, phone: str | None = None, ip: str | None = None, since: datetime
    ) -> int: ...

    async def add_code(
        self, *, phone: str, ip: str, code_hash: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def code_failed(self, code_id: int) -> None: ...

    async def consume_code(self, code_id: int) -> bool: ...

    async def add_refresh_token(
        self, *, member_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None: ...

    async def refresh_token(self, token_hash: str) -> tuple[int, str, datetime, bool] | None: ...

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool: ...

    async def revoke_family(self, family: str, at: datetime) -> None: ...

    async def addresses(self, member_id: int) -> list[Address]: ...

    async def add_address(self, address: Address) -> Address: ...

    async def save_address(self, address: Address) -> None: ...

    async def delete_address(self, address_id: int) -> None: ...

    async def change_points(
        self,
        *,
        member_id: int,
        kind: PointsKind,
        reference: str,
        delta: int,
        expires_at: datetime | None = None,
    ) -> int | None: ...

    async def add_spend(
        self, *, member_id: int, reference: str, amount_fen: int, at: datetime
    ) -> bool: ...

    async def spend_since(self, member_id: int, since: datetime) -> int: ...

    async def expirable_points(self, now: datetime, limit: int) -> list[tuple[int, int, int]]: ...

    async def points_balance(self, member_id: int) -> int: ...

    async def last_check_in(self, member_id: int) -> tuple[date, int] | None: ...

    async def add_check_in(self, member_id: int, day: date, streak: int) -> None: ...


class CouponRepository(Protocol):
    async def get_template(self, template_id: int) -> CouponTemplate | None: ...

    async def add_template(self, template: CouponTemplate) -> CouponTemplate: ...

    async def save_template(self, template: CouponTemplate) -> None: ...

    async def take_one(self, template_id: int) -> bool: ...

    async def claimed_by(self, template_id: int, member_id: int) -> int: ...

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
    ) -> Coupon: ...

    async def get_coupon(self, coupon_id: int) -> Coupon | None: ...

    async def claims_through(self, coupon_id: int) -> int: ...

    async def has_bonus(self, coupon_id: int) -> bool: ...

    async def change_status(
        self, coupon_id: int, current: CouponStatus, target: CouponStatus, order_ref: str | None
    ) -> bool: ...


class IssueJobRepository(Protocol):
    async def add(self, template_id: int, segment: Segment) -> IssueJob: ...

    async def get(self, job_id: int) -> IssueJob | None: ...

    async def save(self, job: IssueJob) -> None: ...

    async def segment_members(
        self, segment: Segment, *, now: datetime, after_id: int, limit: int
    ) -> list[int]: ...


class OrderRepository(Protocol):
    async def candidates(self, sku_ids: Sequence[int], store_id: int | None) -> Candidates:
        """Stores (one if pinned), the SKUs at each store's price, stock and loads."""

    async def add(self, order: Order) -> int | None:
        """The new order's id; None when the member already used its idempotency key."""

    async def add_lines(self, order_id: int, lines: Sequence[OrderLine]) -> None: ...

    async def by_key(self, member_id: int, key: str) -> Order | None: ...

    async def in_group(self, group_id: int) -> list[Order]: ...

    async def get(self, order_id: int) -> Order | None: ...

    async def change_status(
        self,
        order_id: int,
        current: OrderStatus,
        target: OrderStatus,
        *,
        at: datetime,
        **changes: object,
    ) -> int | None:
        """The new version, or None when the order has left ``current`` meanwhile."""

    async def expired_unpaid(self, now: datetime, limit: int) -> list[int]: ...

    async def add_payment(
        self, *, order_id: int, provider: str, transaction_id: str, amount_fen: int, at: datetime
    ) -> bool: ...

    async def payment_order(self, provider: str, transaction_id: str) -> int | None: ...

    async def add_refund(
        self,
        *,
        order_id: int,
        reference: str,
        amount_fen: int,
        lines: Sequence[RefundLine],
        reason: str,
        actor: str,
        stock_returned: bool,
        coupon_restored: bool,
    ) -> bool: ...

    async def has_refund(self, order_id: int, reference: str) -> bool: ...

    async def apply_refund(
        self,
        order_id: int,
        version: int,
        amount_fen: int,
        lines: Sequence[RefundLine],
        at: datetime,
    ) -> int | None: ...

    async def set_points_earned(self, order_id: int, points: int) -> None: ...

    async def points_earned(self, order_id: int) -> int: ...

    async def change_load(self, store_id: int, delta: int) -> None: ...


class DeliveryRepository(Protocol):
    async def add(self, delivery: Delivery) -> Delivery: ...

    async def get(self, delivery_id: int) -> Delivery | None: ...

    async def latest_for_order(self, order_id: int) -> Delivery | None: ...

    async def save(self, delivery: Delivery, *, expected_version: int) -> bool:
        """False when the delivery changed since ``expected_version`` (nothing written)."""

    async def add_position(
        self, delivery_id: int, point: GeoPoint, recorded_at: datetime, received_at: datetime
    ) -> None: ...

    async def nearest_idle_rider(
        self, store_id: int, near: GeoPoint
    ) -> tuple[int, Courier] | None: ...

    async def claim_rider(self, rider_id: int, store_id: int) -> Courier | None: ...

    async def release_rider(self, rider_id: int, at: GeoPoint | None) -> None: ...

    async def add_rider(self, store_id: int, courier: Courier) -> int: ...

    async def set_provider(self, store_id: int, provider: Provider) -> bool: ...

    async def prune_positions(self, before: datetime) -> int: ...


class CampaignRepository(Protocol):
    async def add(self, spec: CampaignSpec, *, created_by: str, at: datetime) -> Campaign: ...

    async def get(self, campaign_id: int) -> Campaign | None: ...

    async def end(self, campaign_id: int, at: datetime) -> bool:
        """End a campaign early; False when it has ended already."""

    async def to_close(self, now: datetime, limit: int) -> list[int]:
        """Ended campaigns whose quotas have not gone back on the shelves yet."""

    async def close(self, campaign_id: int) -> list[tuple[int, int, int]] | None:
        """Close the quotas: (store, SKU, units left) each; None when closed already."""

    async def add_quotas(self, campaign_id: int, lines: Iterable[tuple[int, int, int]]) -> None: ...

    async def quota_left(self, campaign_id: int, store_id: int, sku_id: int) -> int | None: ...

    async def take_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        """Take units unless fewer are left or the quota is closed."""

    async def return_quota(self, campaign_id: int, store_id: int, sku_id: int, units: int) -> bool:
        """Give units back; False once the quota is closed (they go to the shelf then)."""

    async def enter(self, campaign_id: int, member_id: int, limit: int) -> bool:
        """Count one more entry of the member, unless it would pass ``limit``."""

    async def leave(self, campaign_id: int, member_id: int) -> None: ...

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
        """A new OPEN group with its leader's seat taken."""

    async def get_group(self, group_id: int) -> GroupBuy | None: ...

    async def cut_groups_short(self, campaign_id: int, at: datetime) -> None:
        """The campaign ended early: its open groups expire ``at``."""

    async def take_seat(self, group_id: int, now: datetime) -> GroupBuy | None:
        """One more seat, unless the group is full, expired or no longer OPEN."""

    async def add_seat(self, group_id: int, member_id: int, order_id: int, at: datetime) -> bool:
        """False when the member is in the group already."""

    async def seat(self, group_id: int, member_id: int) -> GroupSeat | None: ...

    async def seats(self, group_id: int) -> list[GroupSeat]: ...

    async def release_seat(self, group_id: int, member_id: int) -> GroupBuy | None:
        """The member's order was not paid in time: the seat is free again (OPEN groups)."""

    async def pay_seat(self, group_id: int, member_id: int, now: datetime) -> GroupBuy | None:
        """The member paid; None when the group is no longer OPEN or has expired."""

    async def set_group_status(
        self, group_id: int, current: GroupStatus, target: GroupStatus
    ) -> GroupBuy | None: ...

    async def expired_groups(self, now: datetime, limit: int) -> list[int]: ...

    async def add_bargain(self, bargain: Bargain) -> Bargain: ...

    async def get_bargain(self, bargain_id: int) -> Bargain | None: ...

    async def has_helped(self, bargain_id: int, helper_id: int) -> bool: ...

    async def cut(self, bargain_id: int, now: datetime) -> Bargain | None:
        """The bargain after one more help; None when it is complete, bought or expired."""

    async def record_help(
        self, bargain_id: int, helper_id: int, step_no: int, cut_fen: int, at: datetime
    ) -> bool:
        """False when this helper helped this bargain already (a racing repeat)."""

    async def count_help(self, member_id: int, day: date, cap: int) -> bool:
        """Count one help given on ``day``, unless the member gave ``cap`` already."""

    async def purchase(self, bargain_id: int, order_id: int, now: datetime) -> bool: ...

    async def reopen(self, bargain_id: int, order_id: int) -> None:
        """The bargain's order was cancelled unpaid: it may be bought again."""

    async def add_invitation(
        self,
        *,
        campaign_id: int,
        kind: InviteKind,
        target_id: int,
        inviter_id: int,
        invitee_id: int,
        invitee_was_new: bool,
    ) -> bool: ...

    async def report(self, campaign_id: int) -> CampaignReport: ...


class ShareCodes(Protocol):
    """Signs what a share link carries, and reads it back (refusing a tampered code)."""

    def sign(self, invite: Invite) -> str: ...

    def read(self, code: str) -> Invite:
        """The invite; ``INVALID_SHARE_CODE`` when the code was altered or is not ours."""


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What a delivery platform is told: from where, to where, for which order."""

    delivery_id: int
    order_id: int
    store_name: str
    pickup: GeoPoint
    dropoff: GeoPoint
    address: str
    contact_name: str
    contact_phone: str


class DeliveryPlatform(Protocol):
    """A delivery platform's order API (达达, 顺丰同城, ...); the development adapter accepts
    every order and names a courier at once."""

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        """The courier taking it, or None when the platform has to find one first."""

    async def cancel(self, delivery_id: int) -> None:
        """The order was refunded: call the courier off."""


class PaymentGateway(Protocol):
    """Takes money back through the provider that took it; the development adapter logs."""

    name: str

    async def refund(self, order: Order, amount_fen: int, reference: str) -> None: ...


class SmsSender(Protocol):
    """Sends text messages; the development adapter writes them to the log."""

    async def send_login_code(self, phone: str, code: str) -> None: ...


class WechatLogin(Protocol):
    """Turns a mini-program login code into the user's openid (jscode2session)."""

    async def openid_for(self, code: str) -> str | None: ...


class Repositories(Protocol):
    """The repositories on one connection: a unit of work's, or a read-only one's."""

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def stock(self) -> StockRepository: ...

    @property
    def members(self) -> MemberRepository: ...

    @property
    def coupons(self) -> CouponRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def campaigns(self) -> CampaignRepository: ...


class UnitOfWork(Repositories, Protocol):
    """One transaction: enter, change, ``commit()``; leaving without commit rolls back."""

    @property
    def jobs(self) -> IssueJobRepository: ...

    @property
    def one_writer(self) -> bool:
        """Writers queue for one lock (SQLite): read what you can before taking it."""

    def reading(self) -> AbstractAsyncContextManager[Repositories]:
        """Repositories on a plain connection: reads that take no lock, outside the unit."""

    async def peek_template(self, template_id: int) -> CouponTemplate | None:
        """A read before the unit begins, to refuse what certainly fails without a lock."""

    def record(self, event: Event) -> None:
        """Keep an event to publish once this unit of work has committed."""

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
