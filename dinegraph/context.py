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
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from dinegraph.db.prepays import SqlPrepays
from dinegraph.db.queries import ReadQueries
from dinegraph.db.uow import SqlReader, SqlUnitOfWork
from dinegraph.domain.identity import Viewer, can_see_unlisted
from dinegraph.domain.ports import ShareCodes, SmsSender, UnitOfWork, WechatLogin
from dinegraph.domain.reads import ReadModels
from dinegraph.domain.services.auth import AuthConfig
from dinegraph.domain.services.checkout_payments import CheckoutPayments
from dinegraph.domain.services.orders import OrderPolicy
from dinegraph.events.brokers import Broker
from dinegraph.events.exhaustion import Board
from dinegraph.i18n import Locale
from dinegraph.integrations.wechatpay import WechatPayClient
from dinegraph.resolvers.loaders import Loaders, make_loaders
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
    clock: Clock = field(default_factory=Clock)
    background: BackgroundWork = field(default_factory=BackgroundWork)
    wechatpay: WechatPayClient | None = None  # WeChat Pay, when its merchant is configured


log = logging.getLogger("dinegraph")

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
        client = self.request.client
        return client.host if client else "unknown"

    def now(self) -> datetime:
        return self.services.clock()

    def changes_at(self, moment: datetime | None) -> None:
        """The answer being built stops being true at ``moment``."""
        if moment is not None and (
            self.answer_changes_at is None or moment < self.answer_changes_at
        ):
            self.answer_changes_at = moment

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, events=self.broker, board=self.services.board.unit())

    def reader(self) -> SqlReader:
        return SqlReader(self.engine)

    def checkout_payments(self) -> CheckoutPayments | None:
        """WeChat Pay and its prepays, when the merchant is configured."""
        if self.services.wechatpay is None:
            return None
        return CheckoutPayments(self.services.wechatpay, SqlPrepays(self.engine))

    async def run(self, service: Service[C, R], command: C) -> R:
        """Call a domain service with this request's viewer and a fresh unit of work."""
        return await service(command, uow=self.uow(), viewer=self.viewer)
