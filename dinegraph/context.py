"""Per-request context: who is asking, in which language, with fresh loaders."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Coroutine, Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from dinegraph.db.audit import SqlAuditLog
from dinegraph.db.behaviour import SqlBehaviourLog
from dinegraph.db.prepays import SqlPrepays
from dinegraph.db.queries import ReadQueries
from dinegraph.db.recommendations import SqlRecommendationSource
from dinegraph.db.search import SqlSearchReads
from dinegraph.db.staff_accounts import SqlApiKeys, SqlStaffAccounts
from dinegraph.db.uow import SqlReader, SqlUnitOfWork
from dinegraph.domain.audit import AuditDraft, AuditLog
from dinegraph.domain.identity import Viewer, can_see_unlisted
from dinegraph.domain.ports import ShareCodes, SmsSender, UnitOfWork, WechatLogin
from dinegraph.domain.reads import ReadModels
from dinegraph.domain.search import SearchReads
from dinegraph.domain.services.auth import AuthConfig
from dinegraph.domain.services.checkout_payments import CheckoutPayments
from dinegraph.domain.services.orders import OrderPolicy
from dinegraph.domain.services.position_batch import PositionBatcher
from dinegraph.domain.services.recommendations import Recommender
from dinegraph.domain.services.staff_auth import StaffAuth
from dinegraph.events.brokers import Broker
from dinegraph.events.exhaustion import Board
from dinegraph.i18n import Locale
from dinegraph.integrations.wechatpay import WechatPayClient
from dinegraph.outbound import CallRelay
from dinegraph.resolvers.loaders import Loaders, make_loaders
from dinegraph.search_index import SearchIndexes
from dinegraph.settings import Settings


@dataclass(frozen=True, slots=True)
class FeedSlot:
    """Where a live feed's value goes: ``key`` names what a newer value replaces (None: the
    feed's one object); ``retained`` says whether a subscriber joining later needs it to see
    the feed's current state (an order that left the board does not)."""

    key: Hashable = None
    retained: bool = True


class BackgroundWork:
    """Tasks a request starts and the process finishes (bulk coupon issues)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # held, so it is not collected before it ends
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def wait(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.wait()


class Clock:
    """The server's time: real, or (development only) started at a chosen moment."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = start - datetime.now(UTC) if start is not None else timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, by: timedelta) -> None:
        """Move the clock on (tests of deadlines, demos)."""
        self._offset += by


@dataclass(frozen=True)
class Services:
    """Outside services and settings of the rules, chosen once by the wiring."""

    sms: SmsSender
    wechat: WechatLogin
    auth: AuthConfig
    share_key: bytes
    orders: OrderPolicy
    payment_notify_key: bytes
    share_codes: ShareCodes
    board: Board  # the supplies this process knows are gone (refusals without a write)
    staff: StaffAuth  # staff sign-in: passwords, codes, access tokens, lockout policy
    clock: Clock = field(default_factory=Clock)
    background: BackgroundWork = field(default_factory=BackgroundWork)
    wechatpay: WechatPayClient | None = None  # WeChat Pay, when its merchant is configured
    calls: CallRelay = field(default_factory=CallRelay)  # calls out, by kind (``outbound``)
    search: SearchIndexes = field(default_factory=SearchIndexes)  # the search index, kept fresh
    # 猜你喜欢: the model cached by version, profiles per member briefly (per process).
    recommender: Recommender = field(default_factory=Recommender)
    # Courier reports written in batches (``domain.services.position_batch``); off: window 0.
    positions: PositionBatcher = field(default_factory=lambda: PositionBatcher(0, 1))


log = logging.getLogger("dinegraph")


def forwarded_client(peer: str, headers: Headers, trusted_proxies: str) -> str:
    """Who is behind ``peer``: X-Forwarded-For is believed only from the trusted proxies,
    and read from the right (the nearest hop) to the first address none of them has."""
    if not trusted_proxies:
        return peer
    trusted = {p.strip() for p in trusted_proxies.split(",") if p.strip()}
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return hops[0][:64] if hops else peer


C = TypeVar("C", contravariant=True)
R = TypeVar("R", covariant=True)


class Service(Protocol[C, R]):
    def __call__(self, cmd: C, /, *, uow: UnitOfWork, viewer: Viewer) -> Awaitable[R]: ...


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    settings: Settings
    engine: AsyncEngine
    viewer: Viewer
    locale: Locale
    broker: Broker
    services: Services
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connection_params: dict[str, object] | None = None
    # When the answer being built stops being true (a campaign starts or ends), as its
    # resolvers tell: the read cache keeps it no longer (``dinegraph.read_cache``).
    answer_changes_at: datetime | None = field(init=False, default=None)
    reads: ReadModels = field(init=False)
    _loaders: Loaders | None = field(init=False, default=None, repr=False)
    # Set by a live feed as it yields each value: what the value replaces in a subscriber's
    # view (the SKU, the order) and whether a late subscriber still needs it (see
    # ``dinegraph.shared_feeds``).
    feed_slot: FeedSlot | None = field(init=False, default=None)
    # The audit entry of the mutation running now (staff and partners), set by
    # ``schema.errors.attempt``; ``run`` hands it to the unit of work.
    audit: AuditDraft | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.reads = ReadQueries(self.engine)

    def for_operation(self) -> Context:
        """A copy for one operation on a WebSocket: the same viewer, loaders of its own."""
        return replace(self)

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders of this request or operation, made when first asked for (an idle
        socket or a request answered from a cache needs none)."""
        if self._loaders is None:
            self._loaders = make_loaders(self.reads, include_unlisted=can_see_unlisted(self.viewer))
        return self._loaders

    def refresh_loaders(self) -> None:
        """New loaders from now on: per request over HTTP, per change in a live feed."""
        self._loaders = None

    @property
    def client_ip(self) -> str:
        """The socket's peer; behind a proxy of ``DINEGRAPH_TRUSTED_PROXIES``, the nearest
        address in X-Forwarded-For that is not one of those proxies."""
        client = self.request.client
        peer = client.host if client else "unknown"
        return forwarded_client(peer, self.request.headers, self.settings.trusted_proxies)

    def now(self) -> datetime:
        return self.services.clock()

    def changes_at(self, moment: datetime | None) -> None:
        """The answer being built stops being true at ``moment``."""
        if moment is not None and (
            self.answer_changes_at is None or moment < self.answer_changes_at
        ):
            self.answer_changes_at = moment

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            events=self.broker,
            board=self.services.board.unit(),
            calls=self.services.calls,
        )

    def audited_uow(self, audit: AuditDraft | None) -> SqlUnitOfWork:
        """A fresh unit of work that records ``audit`` at its commit."""
        uow = self.uow()
        uow.audit = audit
        return uow

    def reader(self) -> SqlReader:
        return SqlReader(self.engine)

    def checkout_payments(self) -> CheckoutPayments | None:
        """WeChat Pay and its prepays, when the merchant is configured."""
        if self.services.wechatpay is None:
            return None
        return CheckoutPayments(self.services.wechatpay, SqlPrepays(self.engine))

    def staff_accounts(self) -> SqlStaffAccounts:
        """Staff accounts that sign in; changes to credentials reach every process."""
        return SqlStaffAccounts(self.engine, self.broker, audit=self.audit)

    def api_keys(self) -> SqlApiKeys:
        """Partner API keys; a revocation reaches every process."""
        return SqlApiKeys(self.engine, self.broker, audit=self.audit)

    async def run(self, service: Service[C, R], command: C) -> R:
        """Call a domain service with this request's viewer and a fresh unit of work."""
        uow = self.uow()
        uow.audit = self.audit  # the write's audit entry, recorded by its commit
        return await service(command, uow=uow, viewer=self.viewer)

    def search_reads(self) -> SearchReads:
        """What product search reads, and the misses it writes."""
        return SqlSearchReads(self.engine)

    def behaviour_log(self) -> SqlBehaviourLog:
        """Behaviour events the mini-program reports (domain/behaviour.py)."""
        return SqlBehaviourLog(self.engine)

    def recommendation_source(self) -> SqlRecommendationSource:
        """The recommendation model and members' histories (domain/recommendations.py)."""
        return SqlRecommendationSource(self.engine, self.settings.timezone)

    # --- audit log (domain/audit.py) ---

    @property
    def audit_log(self) -> AuditLog:
        return SqlAuditLog(self.engine)
