"""Who is asking, and what each kind of viewer may do."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode


class StaffRole(StrEnum):
    HQ_ADMIN = "HQ_ADMIN"
    """Head office: everything, in every store."""
    OPERATOR = "OPERATOR"
    """Head-office operations: the product centre and campaigns, chain-wide."""
    STORE_MANAGER = "STORE_MANAGER"
    """One or more stores: their prices, stock and orders."""


class Scope(StrEnum):
    STOCK_READ = "stock:read"
    STOCK_WRITE = "stock:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    DELIVERY_WRITE = "delivery:write"
    CATALOG_READ = "catalog:read"


@dataclass(frozen=True, slots=True)
class Anonymous:
    pass


@dataclass(frozen=True, slots=True)
class MemberViewer:
    member_id: int


@dataclass(frozen=True, slots=True)
class StaffViewer:
    staff_id: int
    username: str
    role: StaffRole
    store_ids: frozenset[int]
    # A temporary password (new account, reset by head office): nothing but changing it.
    must_change_password: bool = False

    def manages(self, store_id: int) -> bool:
        return self.role is StaffRole.HQ_ADMIN or store_id in self.store_ids


@dataclass(frozen=True, slots=True)
class PartnerViewer:
    api_key_id: int
    name: str
    scopes: frozenset[str]
    store_ids: frozenset[int] | None  # None: every store of the chain
    partner: str | None = None  # a delivery platform's key: which one (DADA, ...)

    def covers(self, store_id: int) -> bool:
        return self.store_ids is None or store_id in self.store_ids


Viewer = Anonymous | MemberViewer | StaffViewer | PartnerViewer

ANONYMOUS = Anonymous()


class Account(StrEnum):
    """What stands behind a credential that can be revoked (a member's access token is
    short-lived, and ends with its session)."""

    STAFF = "STAFF"
    API_KEY = "API_KEY"


@dataclass(frozen=True, slots=True)
class CredentialsChanged:
    """An account's credentials were revoked, disabled or given other rights: every
    process forgets the viewer it remembered for them."""

    account: str  # an Account
    account_id: int
    version: int = 0  # none of its own; as every event's, for a mailbox


def require_staff(viewer: Viewer) -> StaffViewer:
    if isinstance(viewer, StaffViewer):
        return viewer
    if isinstance(viewer, Anonymous):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    raise DomainError(ErrorCode.FORBIDDEN)


def require_catalog_editor(viewer: Viewer) -> StaffViewer:
    """The product centre is the chain's: head office and its operators edit it."""
    staff = require_staff(viewer)
    if staff.role not in (StaffRole.HQ_ADMIN, StaffRole.OPERATOR):
        raise DomainError(ErrorCode.FORBIDDEN)
    return staff


def require_store_manager(viewer: Viewer, store_id: int) -> StaffViewer:
    """Staff who run ``store_id``: head office, or a manager of that very store."""
    staff = require_staff(viewer)
    if not staff.manages(store_id):
        raise DomainError(ErrorCode.FORBIDDEN, field=["storeId"])
    return staff


def require_stock_writer(viewer: Viewer, store_id: int) -> Viewer:
    """Sales from elsewhere: a partner with ``stock:write`` for the store, or its staff."""
    if isinstance(viewer, PartnerViewer):
        if Scope.STOCK_WRITE in viewer.scopes and viewer.covers(store_id):
            return viewer
        raise DomainError(ErrorCode.FORBIDDEN, field=["storeId"])
    return require_store_manager(viewer, store_id)


def require_stock_reader(viewer: Viewer, store_id: int) -> Viewer:
    """The ledger and alerts: the store's staff, or a partner with a stock scope for it."""
    if isinstance(viewer, PartnerViewer):
        stock_scopes = {Scope.STOCK_READ, Scope.STOCK_WRITE}
        if stock_scopes & viewer.scopes and viewer.covers(store_id):
            return viewer
        raise DomainError(ErrorCode.FORBIDDEN, field=["storeId"])
    return require_store_manager(viewer, store_id)


def actor_of(viewer: Viewer) -> str:
    """Who made a change, as the ledger records it."""
    if isinstance(viewer, StaffViewer):
        return f"staff:{viewer.staff_id}"
    if isinstance(viewer, PartnerViewer):
        return f"api_key:{viewer.api_key_id}"
    if isinstance(viewer, MemberViewer):
        return f"member:{viewer.member_id}"
    return "anonymous"


def can_read_member(viewer: Viewer, member_id: int | None) -> bool:
    """A member reads only their own account; head office reads any."""
    if isinstance(viewer, MemberViewer):
        return viewer.member_id == member_id
    return isinstance(viewer, StaffViewer) and viewer.role in (
        StaffRole.HQ_ADMIN,
        StaffRole.OPERATOR,
    )


def can_find_member(viewer: Viewer) -> bool:
    """Any staff may find a member by the phone they give at the counter (memberByPhone)."""
    return isinstance(viewer, StaffViewer)


def can_serve_member(viewer: Viewer, member_id: int) -> bool:
    """The member card: tier, points and coupons. Everyone who reads the member, and store
    managers serving them at the counter (without birthday, addresses or points history,
    and with only their own stores' orders)."""
    return can_read_member(viewer, member_id) or can_find_member(viewer)


def can_read_order(viewer: Viewer, member_id: int | None, store_id: int) -> bool:
    """An order is read by its member, the staff of its store, head office, and partners
    with ``orders:read`` for its store."""
    if isinstance(viewer, MemberViewer):
        return viewer.member_id == member_id
    if isinstance(viewer, StaffViewer):
        return viewer.manages(store_id) or viewer.role is StaffRole.OPERATOR
    if isinstance(viewer, PartnerViewer):
        return Scope.ORDERS_READ in viewer.scopes and viewer.covers(store_id)
    return False


def require_order_board_reader(viewer: Viewer, store_id: int) -> Viewer:
    """A store's orders: its staff, or a partner with ``orders:read`` for it."""
    if isinstance(viewer, PartnerViewer):
        if Scope.ORDERS_READ in viewer.scopes and viewer.covers(store_id):
            return viewer
        raise DomainError(ErrorCode.FORBIDDEN, field=["storeId"])
    return require_store_manager(viewer, store_id)


def require_order_writer(viewer: Viewer, store_id: int | None = None) -> PartnerViewer:
    """Orders taken elsewhere (a till, a takeaway platform): a partner with
    ``orders:write``, for ``store_id`` when one is named."""
    if isinstance(viewer, Anonymous):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    if not isinstance(viewer, PartnerViewer) or Scope.ORDERS_WRITE not in viewer.scopes:
        raise DomainError(ErrorCode.FORBIDDEN)
    if store_id is not None and not viewer.covers(store_id):
        raise DomainError(ErrorCode.FORBIDDEN, field=["storeId"])
    return viewer


def works_at(viewer: Viewer, store_id: int) -> bool:
    """Staff of the store (or head office admins): the order board, tickets, addresses."""
    return isinstance(viewer, StaffViewer) and viewer.manages(store_id)


def sees_order_address(viewer: Viewer, member_id: int | None, store_id: int) -> bool:
    """A customer's address goes to them and to the staff of the store serving them."""
    own = isinstance(viewer, MemberViewer) and viewer.member_id == member_id
    return own or works_at(viewer, store_id)


def can_see_unlisted(viewer: Viewer) -> bool:
    """Unlisted products are drafts or retired: only staff see them."""
    return isinstance(viewer, StaffViewer)


def viewer_class(viewer: Viewer) -> Hashable:
    """Who a viewer is, as far as any answer can tell: two viewers of one class are shown
    the same thing everywhere (a live feed runs once for all subscribers of a class).

    Members are themselves; staff are their role and stores (no rule reads the staff id);
    partners are their scopes, stores and platform.
    """
    if isinstance(viewer, MemberViewer):
        return ("member", viewer.member_id)
    if isinstance(viewer, StaffViewer):
        return ("staff", viewer.role.value, viewer.store_ids)
    if isinstance(viewer, PartnerViewer):
        return ("partner", viewer.scopes, viewer.store_ids, viewer.partner)
    return ("anonymous",)
