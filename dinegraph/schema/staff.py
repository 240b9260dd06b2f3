"""Staff sign-in: staffLogin, sessions, TOTP, one's own password; the StaffAccount type."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import staff as domain
from dinegraph.domain.identity import StaffRole, StaffViewer, require_staff
from dinegraph.domain.services import staff_auth as service
from dinegraph.resolvers.ids import encode_id, node_row_ids
from dinegraph.schema.catalog import StoreNode
from dinegraph.schema.common import UserError
from dinegraph.schema.errors import attempt

Info = strawberry.Info[Context, None]

strawberry.enum(StaffRole, name="StaffRole", description="HQ_ADMIN, OPERATOR or STORE_MANAGER.")


@strawberry.type(description="A staff account: the console's user.")
class StaffAccount(relay.Node):
    id: relay.NodeID[int]
    account: strawberry.Private[domain.StaffAccount]

    @classmethod
    def of(cls, account: domain.StaffAccount) -> StaffAccount:
        return cls(id=account.id, account=account)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[StaffAccount | None]:
        """Head office reads every account; a staff member only their own."""
        viewer = info.context.viewer
        found: list[StaffAccount | None] = []
        for staff_id in node_row_ids(node_ids):
            account = None
            if isinstance(viewer, StaffViewer) and (
                viewer.role is StaffRole.HQ_ADMIN or viewer.staff_id == staff_id
            ):
                account = await info.context.staff_accounts().get(staff_id)
            found.append(cls.of(account) if account else None)
        return found

    @strawberry.field
    def username(self) -> str:
        return self.account.username

    @strawberry.field
    def display_name(self) -> str:
        return self.account.display_name

    @strawberry.field
    def role(self) -> StaffRole:
        return self.account.role

    @strawberry.field(description="The stores it acts on by id (head office: none listed).")
    def store_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(encode_id("Store", s)) for s in sorted(self.account.store_ids)]

    @strawberry.field(description="The stores it may act on (head office: every store).")
    async def stores(self, info: Info) -> list[StoreNode]:
        ctx = info.context
        if self.account.role is StaffRole.HQ_ADMIN:
            found = await ctx.reads.all_stores()
        else:
            loaded = await ctx.loaders.store.load_many(sorted(self.account.store_ids))
            found = [s for s in loaded if s is not None]
        return [StoreNode.of(s) for s in sorted(found, key=lambda s: s.id)]

    @strawberry.field
    def totp_enabled(self) -> bool:
        return self.account.totp_enabled

    @strawberry.field(description="A temporary password was set: change it before anything.")
    def must_change_password(self) -> bool:
        return self.account.must_change_password

    @strawberry.field
    def disabled(self) -> bool:
        return not self.account.active

    @strawberry.field
    def locked_until(self) -> datetime | None:
        return self.account.locked_until


async def viewer_staff(info: Info) -> StaffAccount | None:
    """The signed-in staff account, as ``viewer.staff`` shows it."""
    viewer = info.context.viewer
    if not isinstance(viewer, StaffViewer):
        return None
    account = await info.context.staff_accounts().get(viewer.staff_id)
    return None if account is None or not account.active else StaffAccount.of(account)


@strawberry.input
class StaffLoginInput:
    username: str
    password: str
    totp_code: str | None = strawberry.field(
        default=None, description="Required once the account has TOTP (TOTP_REQUIRED)."
    )


@strawberry.input
class RefreshStaffSessionInput:
    refresh_token: str


@strawberry.input
class StaffLogoutInput:
    refresh_token: str


@strawberry.type
class StaffSessionPayload:
    access_token: str | None = strawberry.field(description="For Authorization: Bearer.")
    refresh_token: str | None = strawberry.field(description="Trade it for a new pair, once.")
    expires_at: datetime | None = strawberry.field(description="When the access token ends.")
    staff: StaffAccount | None
    errors: list[UserError]


@strawberry.type
class StaffLogoutPayload:
    errors: list[UserError]


@strawberry.type
class StaffAccountPayload:
    staff: StaffAccount | None
    errors: list[UserError]


@strawberry.type
class BeginTotpEnrolmentPayload:
    secret: str | None = strawberry.field(description="Shown this once; type it if no camera.")
    uri: str | None = strawberry.field(description="otpauth://totp/...: show it as a QR code.")
    errors: list[UserError]


@strawberry.input
class ConfirmTotpEnrolmentInput:
    code: str


@strawberry.input
class DisableTotpInput:
    password: str


@strawberry.input
class ChangeMyPasswordInput:
    current_password: str
    new_password: str


def _session_payload(
    session: domain.StaffSession | None, errors: list[UserError]
) -> StaffSessionPayload:
    if session is None:
        return StaffSessionPayload(
            access_token=None, refresh_token=None, expires_at=None, staff=None, errors=errors
        )
    return StaffSessionPayload(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_at=session.expires_at,
        staff=StaffAccount.of(session.account),
        errors=errors,
    )


def _account_payload(
    account: domain.StaffAccount | None, errors: list[UserError]
) -> StaffAccountPayload:
    return StaffAccountPayload(staff=StaffAccount.of(account) if account else None, errors=errors)


def _signed_in(info: Info) -> int:
    """The signed-in staff member's id: UNAUTHENTICATED for nobody, FORBIDDEN for others."""
    return require_staff(info.context.viewer).staff_id


@strawberry.type
class StaffMutation:
    @strawberry.mutation(description="Sign in to the console with username and password.")
    async def staff_login(self, info: Info, input: StaffLoginInput) -> StaffSessionPayload:
        ctx = info.context

        async def run() -> domain.StaffSession:
            return await service.staff_login(
                input.username,
                input.password,
                input.totp_code,
                ctx.client_ip,
                accounts=ctx.staff_accounts(),
                auth=ctx.services.staff,
                now=ctx.now(),
            )

        return _session_payload(*await attempt(info, run))

    @strawberry.mutation(description="Trade a staff refresh token for a new pair.")
    async def refresh_staff_session(
        self, info: Info, input: RefreshStaffSessionInput
    ) -> StaffSessionPayload:
        ctx = info.context

        async def run() -> domain.StaffSession:
            return await service.refresh_staff_session(
                input.refresh_token,
                accounts=ctx.staff_accounts(),
                auth=ctx.services.staff,
                now=ctx.now(),
            )

        return _session_payload(*await attempt(info, run))

    @strawberry.mutation(description="Sign out: the refresh token and its successors end.")
    async def staff_logout(self, info: Info, input: StaffLogoutInput) -> StaffLogoutPayload:
        ctx = info.context

        async def run() -> None:
            await service.staff_logout(
                input.refresh_token, accounts=ctx.staff_accounts(), now=ctx.now()
            )

        _, errors = await attempt(info, run)
        return StaffLogoutPayload(errors=errors)

    @strawberry.mutation(description="Start TOTP for yourself: the secret is shown this once.")
    async def begin_totp_enrolment(self, info: Info) -> BeginTotpEnrolmentPayload:
        ctx = info.context

        async def run() -> domain.TotpEnrolment:
            return await service.begin_totp_enrolment(
                _signed_in(info), accounts=ctx.staff_accounts(), auth=ctx.services.staff
            )

        found, errors = await attempt(info, run)
        return BeginTotpEnrolmentPayload(
            secret=found.secret if found else None,
            uri=found.uri if found else None,
            errors=errors,
        )

    @strawberry.mutation(description="Turn TOTP on with a code from the new secret.")
    async def confirm_totp_enrolment(
        self, info: Info, input: ConfirmTotpEnrolmentInput
    ) -> StaffAccountPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.confirm_totp_enrolment(
                _signed_in(info),
                input.code,
                accounts=ctx.staff_accounts(),
                auth=ctx.services.staff,
                now=ctx.now(),
            )

        return _account_payload(*await attempt(info, run))

    @strawberry.mutation(description="Turn your TOTP off; needs your password.")
    async def disable_totp(self, info: Info, input: DisableTotpInput) -> StaffAccountPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.disable_totp(
                _signed_in(info),
                input.password,
                accounts=ctx.staff_accounts(),
                auth=ctx.services.staff,
            )

        return _account_payload(*await attempt(info, run))

    @strawberry.mutation(description="Change your own password (at least 10 characters).")
    async def change_my_password(
        self, info: Info, input: ChangeMyPasswordInput
    ) -> StaffAccountPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.change_my_password(
                _signed_in(info),
                input.current_password,
                input.new_password,
                accounts=ctx.staff_accounts(),
                auth=ctx.services.staff,
            )

        return _account_payload(*await attempt(info, run))
