"""What the domain needs from the outside world, as Protocols the adapters implement.

The unit of work and the outside systems (payments, SMS, WeChat login, delivery platforms,
share codes) are here; the repositories a unit of work holds are in ``store_repositories``
(catalog, stock, members) and ``order_repositories`` (coupons, orders, deliveries, campaigns).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from dinegraph.domain.calls import OutboundCall
from dinegraph.domain.coupons import CouponTemplate
from dinegraph.domain.delivery import CallOff, Courier, CourierContact
from dinegraph.domain.events import Event
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.invites import Invite
from dinegraph.domain.kitchen import KitchenRepository
from dinegraph.domain.order_repositories import (
    CampaignRepository,
    CouponRepository,
    DeliveryRepository,
    IssueJobRepository,
    OrderRepository,
)
from dinegraph.domain.refunds import RefundToSend
from dinegraph.domain.store_repositories import CatalogRepository, MemberRepository, StockRepository
from dinegraph.domain.supplies import ExhaustionBoard, Supply


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
    store_code: str = ""  # the store as the platform knows it (达达's shop_no)
    cargo_fen: int = 0  # what the order is worth, for the platform's insurance


@dataclass(frozen=True, slots=True)
class DeliveryQuote:
    """What a platform would charge to carry an order, and how long it expects to take."""

    fee_fen: int
    eta_seconds: int | None
    distance_m: int | None = None


class DeliveryPlatform(Protocol):
    """A delivery platform's order API (达达, 顺丰同城, ...); the development adapter accepts
    every order and names a courier at once."""

    async def dispatch(self, request: DispatchRequest) -> Courier | None:
        """The courier taking it, or None when the platform has to find one first."""

    async def cancel(self, delivery_id: int, why: CallOff = CallOff.REFUNDED) -> None:
        """Call the courier off: the order was refunded, or no rider came in time."""

    async def quote(self, request: DispatchRequest) -> DeliveryQuote:
        """What carrying it would cost and take, ordering nothing; ``CallRefused`` when the
        platform would not carry it."""

    async def courier_contact(self, delivery_id: int) -> CourierContact | None:
        """The privacy number the customer may call the rider on now; None when the platform
        offers none (or has no rider on it). ``RetryLater`` when it cannot say now."""


class RefundProgress(Protocol):
    """What the provider says of one refund, told to the domain (``refund_submitted``,
    ``refund_settled``, each in a unit of work of its own)."""

    async def submitted(self, provider_refund_id: str) -> None: ...

    async def settled(self, succeeded: bool, provider_refund_id: str | None) -> None: ...


class PaymentGateway(Protocol):
    """Takes money back through the provider that took it, once a refund is APPROVED.

    It reports the provider's answers through ``progress``: the development adapter says
    at once that the refund was accepted and has arrived.
    """

    name: str

    async def refund(self, refund: RefundToSend, progress: RefundProgress) -> None: ...


class SmsSender(Protocol):
    """Sends text messages; the development adapter writes them to the log.

    Raises DomainError when the message cannot go: the provider refused it (INVALID_PHONE,
    RATE_LIMITED, PROVIDER_UNAVAILABLE) or did not answer (PROVIDER_UNAVAILABLE).
    """

    async def send_login_code(self, phone: str, code: str) -> None: ...


@dataclass(frozen=True, slots=True)
class WechatIdentity:
    """Who a mini-program login code belongs to: the openid (per app) and, when the app is
    bound to an open-platform account, the unionid (across the brand's apps)."""

    openid: str
    unionid: str | None = None


class WechatLogin(Protocol):
    """The mini-program's codes, redeemed with WeChat.

    Both raise DomainError: INVALID_CODE (wrong, used or foreign code), RATE_LIMITED,
    PROVIDER_UNAVAILABLE (WeChat busy, unreachable or too slow).
    """

    async def identity_for(self, code: str) -> WechatIdentity:
        """A wx.login code → the user's ids (jscode2session)."""
        ...

    async def phone_for(self, code: str) -> str:
        """A getPhoneNumber code → the mobile number the user chose to share."""
        ...


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

    @property
    def kitchen(self) -> KitchenRepository: ...


class UnitOfWork(Repositories, Protocol):
    """One transaction: enter, change, ``commit()``; leaving without commit rolls back."""

    @property
    def jobs(self) -> IssueJobRepository: ...

    @property
    def one_writer(self) -> bool:
        """Writers queue for one lock (SQLite): read what you can before taking it."""

    def reading(self) -> AbstractAsyncContextManager[Repositories]:
        """Repositories on a plain connection: reads that take no lock, outside the unit."""

    @property
    def board(self) -> ExhaustionBoard:
        """What this process knows has run out, as this unit sees it (refusals before the
        unit begins); told of the unit's supply changes when it commits."""

    async def peek_template(self, template_id: int) -> CouponTemplate | None:
        """A read before the unit begins, to refuse what certainly fails without a lock."""

    def record(self, event: Event) -> None:
        """Keep an event to publish once this unit of work has committed."""

    def call(self, call: OutboundCall) -> None:
        """Make ``call`` once this unit has committed: written in its transaction (none if
        it rolls back), then relayed until the provider takes it (``dinegraph.outbound``)."""

    def wrote(self, kind: str, object_id: int, store_id: int | None = None) -> None:
        """Name the object this unit wrote and its store, for the audit log (``domain.audit``),
        where the command does not: a new object's id, an order's store."""

    def unless_gone(self, supply: Supply) -> UnitOfWork:
        """This unit, whose next enter stops queueing for the one writer's lock (SQLite) and
        raises ``GoneWhileQueued`` once the board learns ``supply`` is gone: the buyers
        queued behind the one who took the last unit are refused together, not one by one
        under the lock."""

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
