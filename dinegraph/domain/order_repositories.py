"""Where trade is kept: coupons and their issue jobs, orders, deliveries, campaigns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Protocol

from dinegraph.domain.bargains import Bargain
from dinegraph.domain.campaigns import Campaign, CampaignReport, CampaignSpec
from dinegraph.domain.carriers import CarrierRule, Quote
from dinegraph.domain.coupons import (
    Claimant,
    Coupon,
    CouponStatus,
    CouponTemplate,
    IssueJob,
    Segment,
)
from dinegraph.domain.delivery import Courier, Delivery, Provider
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.group_buys import GroupBuy, GroupSeat, GroupStatus
from dinegraph.domain.invites import InviteKind
from dinegraph.domain.members import Member
from dinegraph.domain.orders import Order, OrderLine, OrderStatus
from dinegraph.domain.quotes import Candidates
from dinegraph.domain.refunds import Refund, RefundLine, RefundStatus
from dinegraph.domain.supplies import Taken


class CouponRepository(Protocol):
    async def get_template(self, template_id: int) -> CouponTemplate | None: ...

    async def add_template(self, template: CouponTemplate) -> CouponTemplate: ...

    async def save_template(self, template: CouponTemplate) -> None: ...

    async def take_one(self, template_id: int) -> Taken | None:
        """One more issued, unless that would pass the quantity or the template stopped."""

    async def claimed_by(self, template_id: int, member_id: int) -> int: ...

    async def lock_claimant(self, member_id: int, template_id: int) -> Claimant | None:
        """The member (None if unknown), their row locked until the end of the unit of work
        so that one member's claims take turns, with what a claim checks."""

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

    async def get(self, job_id: int, *, lock: bool = False) -> IssueJob | None:
        """With ``lock``, the row is held to the end of the transaction: one runner at a time."""
        ...

    async def save(self, job: IssueJob) -> None: ...

    async def unfinished(self) -> list[int]:
        """Ids of the jobs QUEUED or RUNNING, oldest first."""
        ...

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

    async def by_external(self, source: str, external_id: str) -> Order | None:
        """A partner's order by its source and the partner's order id."""

    async def keys_of_campaign(self, campaign_id: int) -> frozenset[tuple[int, str]]:
        """(member, idempotency key) of every order placed through the campaign."""

    async def placing(self, member_id: int, key: str) -> tuple[Member | None, Order | None]:
        """The member placing an order (None if unknown), and the order their idempotency
        key placed before, if any: one read where the key is new."""

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

    # --- refunds (their rows; ``apply_refund`` counts one on the order) ---

    async def add_refund(self, refund: Refund) -> Refund | None:
        """The refund as stored (``id`` ignored); None when its order has one with that
        idempotency key already."""

    async def get_refund(self, refund_id: int) -> Refund | None: ...

    async def refund_by_key(self, order_id: int, key: str) -> Refund | None: ...

    async def refund_by_reference(self, reference: str) -> Refund | None: ...

    async def open_refund_request(self, order_id: int) -> Refund | None:
        """The order's REQUESTED refund, if any (there is at most one)."""

    async def submitted_refunds(
        self, updated_before: datetime, *, after_id: int, limit: int
    ) -> list[Refund]:
        """Refunds SUBMITTED and unchanged since before ``updated_before``, by id from
        ``after_id`` on: those whose provider has not told us its final word."""

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
        """The refund moved from one of ``current`` to ``target`` (with the given fields
        set); None when it is in none of them (another request decided it first)."""

    async def touch(self, order_id: int, at: datetime, *, version: int | None = None) -> int | None:
        """A new version of the order, so its followers hear of its refunds; None when a
        ``version`` is given and the order has moved on from it."""

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

    async def set_provider(
        self,
        store_id: int,
        provider: Provider,
        platforms: tuple[Provider, ...] | None = None,
        rule: CarrierRule | None = None,
    ) -> bool:
        """The store's carrier; and, when given, its platforms and carrier rule."""

    async def add_quotes(
        self, delivery_id: int, quotes: list[Quote], ranking: list[Provider], at: datetime
    ) -> None:
        """Platforms' quotes for a delivery, ranked; the first in ``ranking`` is chosen."""

    async def quotes(self, delivery_id: int) -> list[tuple[Quote, int | None, bool]]:
        """The delivery's quotes in the store's order: (quote, rank, chosen)."""

    async def choose(
        self, delivery_id: int, provider: Provider, refused: Provider | None, reason: str | None
    ) -> None:
        """``provider`` is chosen now; ``refused`` (if any) refused the order."""

    async def unaccepted(self, before: datetime, limit: int) -> list[int]:
        """Deliveries chosen among quotes, still waiting for a rider since before ``before``."""

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

    async def take_quota(
        self, campaign_id: int, store_id: int, sku_id: int, units: int
    ) -> Taken | None:
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
