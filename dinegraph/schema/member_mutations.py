"""Member mutations: signing in and out, the profile, addresses, check-ins and points."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from dinegraph.context import Context
from dinegraph.domain import members as domain
from dinegraph.domain.catalog import UNSET, Unset
from dinegraph.domain.geo import GeoPoint as DomainPoint
from dinegraph.domain.services import auth
from dinegraph.domain.services import members as service
from dinegraph.domain.services import points as points_service
from dinegraph.resolvers import members as resolve
from dinegraph.resolvers.ids import decode_id
from dinegraph.schema.common import GeoPointInput, UserError, keep
from dinegraph.schema.errors import attempt
from dinegraph.schema.members import Address, MemberNode

Info = strawberry.Info[Context, None]


@strawberry.type
class RequestLoginCodePayload:
    errors: list[UserError]


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(description="Access token for Authorization: Bearer.")
    refresh_token: str | None = strawberry.field(description="Trade it for a new pair.")
    member: MemberNode | None
    errors: list[UserError]


@strawberry.type
class LogoutPayload:
    errors: list[UserError]


@strawberry.type
class MemberPayload:
    member: MemberNode | None
    errors: list[UserError]


@strawberry.type
class AddressPayload:
    address: Address | None
    errors: list[UserError]


@strawberry.type
class CheckInPayload:
    streak: int | None
    points_earned: int | None
    balance: int | None
    errors: list[UserError]


@strawberry.input
class UpdateProfileInput:
    nickname: str | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET


@strawberry.input
class SaveAddressInput:
    id: strawberry.ID | None = strawberry.field(default=None, description="Omit to add one.")
    contact_name: str
    contact_phone: str
    address: str
    location: GeoPointInput
    is_default: bool = False


@strawberry.input
class AdjustMemberPointsInput:
    member_id: strawberry.ID
    delta: int
    reference: str = strawberry.field(
        description="The idempotency key, e.g. the ticket number; retry-safe."
    )
    reason: str = strawberry.field(description="Why; kept in the audit log (at most 200).")


@strawberry.type
class AdjustMemberPointsPayload:
    balance: int | None
    errors: list[UserError]


@strawberry.input
class DeleteAddressInput:
    id: strawberry.ID


@strawberry.input
class BindWechatPhoneInput:
    code: str = strawberry.field(
        description="e.detail.code of a getPhoneNumber button (open-type=getPhoneNumber)."
    )


_DEVICE_ID = (
    "The id the mini-program keeps for a signed-out visitor (8-64 of A-Z a-z 0-9 _ - : .): "
    "the behaviour events reported under it become the member's as they sign in."
)


async def _login_payload(
    info: Info,
    session: auth.Session | None,
    errors: list[UserError],
    device_id: str | None = None,
) -> LoginPayload:
    if session is None:
        return LoginPayload(token=None, refresh_token=None, member=None, errors=errors)
    if session.merged:  # the device's events became the member's
        info.context.services.recommender.histories_changed(session.member.id, device_id)
    found = await resolve.signed_in_member(info.context, session.member.id)
    return LoginPayload(
        token=session.access_token,
        refresh_token=session.refresh_token,
        member=MemberNode.of(*found),
        errors=errors,
    )


@strawberry.type
class MemberMutation:
    @strawberry.mutation(description="Text a 6-digit sign-in code to a mobile number.")
    async def request_login_code(self, info: Info, phone: str) -> RequestLoginCodePayload:
        ctx = info.context

        async def run() -> None:
            await auth.request_login_code(
                phone,
                ctx.client_ip,
                uow=ctx.uow(),
                auth=ctx.services.auth,
                now=ctx.now(),
            )

        _, errors = await attempt(info, run)
        return RequestLoginCodePayload(errors=errors)

    @strawberry.mutation(description="Sign in with the texted code; new numbers become members.")
    async def login(
        self,
        info: Info,
        phone: str,
        code: str,
        device_id: Annotated[str | None, strawberry.argument(description=_DEVICE_ID)] = None,
    ) -> LoginPayload:
        ctx = info.context

        async def run() -> auth.Session:
            return await auth.login(
                phone,
                code,
                uow=ctx.uow(),
                auth=ctx.services.auth,
                now=ctx.now(),
                device_id=device_id,
            )

        return await _login_payload(info, *await attempt(info, run), device_id)

    @strawberry.mutation(
        description="Sign in with the mini-program's wx.login code; with phoneCode (from "
        "getPhoneNumber) the member gets WeChat's verified number, and a member who signed "
        "in by SMS with that number is who signs in."
    )
    async def login_with_wechat(
        self,
        info: Info,
        code: str,
        phone_code: str | None = None,
        device_id: Annotated[str | None, strawberry.argument(description=_DEVICE_ID)] = None,
    ) -> LoginPayload:
        ctx = info.context

        async def run() -> auth.Session:
            return await auth.login_with_wechat(
                code,
                uow=ctx.uow(),
                wechat=ctx.services.wechat,
                auth=ctx.services.auth,
                now=ctx.now(),
                phone_code=phone_code,
                device_id=device_id,
            )

        return await _login_payload(info, *await attempt(info, run), device_id)

    @strawberry.mutation(
        description="Bind the number WeChat verified (getPhoneNumber's code) to the "
        "signed-in member."
    )
    async def bind_wechat_phone(self, info: Info, input: BindWechatPhoneInput) -> MemberPayload:
        ctx = info.context

        async def run() -> domain.Member:
            return await auth.bind_wechat_phone(
                service.require_member(ctx.viewer),
                input.code,
                uow=ctx.uow(),
                wechat=ctx.services.wechat,
            )

        member, errors = await attempt(info, run)
        found = await resolve.viewer_member(ctx) if member else None
        return MemberPayload(member=MemberNode.of(*found) if found else None, errors=errors)

    @strawberry.mutation(description="Bind a mobile number to the signed-in (WeChat) member.")
    async def bind_phone(self, info: Info, phone: str, code: str) -> MemberPayload:
        ctx = info.context

        async def run() -> domain.Member:
            return await auth.bind_phone(
                service.require_member(ctx.viewer),
                phone,
                code,
                uow=ctx.uow(),
                auth=ctx.services.auth,
                now=ctx.now(),
            )

        member, errors = await attempt(info, run)
        found = await resolve.viewer_member(ctx) if member else None
        return MemberPayload(member=MemberNode.of(*found) if found else None, errors=errors)

    @strawberry.mutation(description="Trade a refresh token for a new token pair.")
    async def refresh_token(self, info: Info, refresh_token: str) -> LoginPayload:
        ctx = info.context

        async def run() -> auth.Session:
            return await auth.refresh_session(
                refresh_token, uow=ctx.uow(), auth=ctx.services.auth, now=ctx.now()
            )

        return await _login_payload(info, *await attempt(info, run))

    @strawberry.mutation(description="Sign out: the refresh token and its successors stop working.")
    async def logout(self, info: Info, refresh_token: str) -> LogoutPayload:
        ctx = info.context

        async def run() -> None:
            await auth.logout(refresh_token, uow=ctx.uow(), now=ctx.now())

        _, errors = await attempt(info, run)
        return LogoutPayload(errors=errors)

    @strawberry.mutation
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> MemberPayload:
        async def run() -> domain.Member:
            birthday: date | Unset | None = UNSET
            if input.birthday is None or input.birthday is not strawberry.UNSET:
                birthday = input.birthday
            today = info.context.now().astimezone(info.context.settings.timezone).date()
            cmd = service.UpdateProfile(
                today=today, nickname=keep(input.nickname), birthday=birthday
            )
            return await info.context.run(service.update_profile, cmd)

        member, errors = await attempt(info, run)
        found = await resolve.viewer_member(info.context) if member else None
        return MemberPayload(member=MemberNode.of(*found) if found else None, errors=errors)

    @strawberry.mutation(description="Add or change a delivery address (GCJ-02).")
    async def save_address(self, info: Info, input: SaveAddressInput) -> AddressPayload:
        async def run() -> domain.Address:
            cmd = service.SaveAddress(
                contact_name=input.contact_name,
                contact_phone=input.contact_phone,
                address=input.address,
                location=DomainPoint(input.location.lat, input.location.lng),
                is_default=input.is_default,
                address_id=decode_id(input.id, "Address", ["id"]) if input.id else None,
            )
            return await info.context.run(service.save_address, cmd)

        address, errors = await attempt(info, run)
        return AddressPayload(address=Address.of(address) if address else None, errors=errors)

    @strawberry.mutation
    async def delete_address(self, info: Info, input: DeleteAddressInput) -> AddressPayload:
        async def run() -> None:
            await info.context.run(service.delete_address, decode_id(input.id, "Address", ["id"]))

        _, errors = await attempt(info, run)
        return AddressPayload(address=None, errors=errors)

    @strawberry.mutation(description="Correct a member's points (head office).")
    async def adjust_member_points(
        self, info: Info, input: AdjustMemberPointsInput
    ) -> AdjustMemberPointsPayload:
        async def run() -> int:
            cmd = points_service.AdjustPoints(
                member_id=decode_id(input.member_id, "Member", ["memberId"]),
                delta=input.delta,
                reference=input.reference,
                reason=input.reason,
            )
            return await info.context.run(points_service.adjust_points, cmd)

        balance, errors = await attempt(info, run)
        return AdjustMemberPointsPayload(balance=balance, errors=errors)

    @strawberry.mutation(description="Daily check-in (签到); a streak earns a bonus.")
    async def check_in(self, info: Info) -> CheckInPayload:
        async def run() -> service.CheckInResult:
            today = info.context.now().astimezone(info.context.settings.timezone).date()
            return await info.context.run(service.check_in, service.CheckIn(day=today))

        result, errors = await attempt(info, run)
        if result is None:
            return CheckInPayload(streak=None, points_earned=None, balance=None, errors=errors)
        return CheckInPayload(
            streak=result.streak,
            points_earned=result.points_earned,
            balance=result.balance,
            errors=errors,
        )
