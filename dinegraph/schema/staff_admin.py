"""Head office's console: staff accounts and partner API keys (HQ_ADMIN only)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import staff as domain
from dinegraph.domain.delivery import Provider
from dinegraph.domain.identity import StaffRole, StaffViewer
from dinegraph.domain.services import staff_admin as service
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.resolvers.pagination import decode_key_cursor, keyset_page, page_size
from dinegraph.schema.catalog import StoreNode
from dinegraph.schema.common import UserError, page_info
from dinegraph.schema.errors import attempt, raise_for_query
from dinegraph.schema.staff import StaffAccount
from dinegraph.security import new_api_key

Info = strawberry.Info[Context, None]


def _store_ids(ids: list[strawberry.ID], field: str = "storeIds") -> list[int]:
    return [decode_id(i, "Store", [field, str(n)]) for n, i in enumerate(ids)]


def _staff_id(global_id: strawberry.ID) -> int:
    return decode_id(global_id, "StaffAccount", ["id"])


# Staff accounts.


@strawberry.type
class StaffAccountEdge:
    cursor: str
    node: StaffAccount


@strawberry.type
class StaffAccountConnection:
    edges: list[StaffAccountEdge]
    page_info: relay.PageInfo


@strawberry.input
class StaffAccountFilter:
    role: StaffRole | None = None
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Accounts acting on this store (head office included)."
    )
    include_disabled: bool = True


async def staff_accounts(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: StaffAccountFilter | None = None,
) -> StaffAccountConnection:
    """Every staff account, by id (head office only)."""
    ctx = info.context
    with raise_for_query(info):
        size = page_size(first, ctx.settings.max_page_size)
        after_id = decode_key_cursor("staff", after)
        where = domain.StaffFilter(
            role=filter.role if filter else None,
            store_id=(
                decode_id(filter.store_id, "Store", ["filter", "storeId"])
                if filter and filter.store_id
                else None
            ),
            include_disabled=filter.include_disabled if filter else True,
        )
        rows = await service.staff_accounts_page(
            viewer=ctx.viewer,
            directory=ctx.staff_accounts(),
            limit=size + 1,
            after_id=after_id,
            where=where,
        )
    page = keyset_page(rows, size=size, kind="staff", key=lambda a: a.id, after=after_id)
    return StaffAccountConnection(
        edges=[StaffAccountEdge(cursor=c, node=StaffAccount.of(a)) for c, a in page.items],
        page_info=page_info(page),
    )


@strawberry.input
class CreateStaffAccountInput:
    username: str
    display_name: str
    role: StaffRole
    store_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="A store manager's stores (at least one)."
    )
    password: str = strawberry.field(
        description="A first password (10+ characters); the holder changes it at sign-in."
    )


@strawberry.input
class UpdateStaffAccountInput:
    id: strawberry.ID
    display_name: str | None = None
    role: StaffRole | None = None
    store_ids: list[strawberry.ID] | None = None


@strawberry.input
class StaffAccountIdInput:
    id: strawberry.ID


@strawberry.input
class ResetStaffPasswordInput:
    id: strawberry.ID
    temporary_password: str


@strawberry.type
class StaffAccountAdminPayload:
    staff: StaffAccount | None
    errors: list[UserError]


def _payload(
    account: domain.StaffAccount | None, errors: list[UserError]
) -> StaffAccountAdminPayload:
    return StaffAccountAdminPayload(
        staff=StaffAccount.of(account) if account else None, errors=errors
    )


# Partner API keys.


@strawberry.type(description="A partner's API key (sent as X-Api-Key); the key itself is not kept.")
class ApiKey(relay.Node):
    id: relay.NodeID[int]
    record: strawberry.Private[domain.ApiKeyRecord]

    @classmethod
    def of(cls, record: domain.ApiKeyRecord) -> ApiKey:
        return cls(id=record.id, record=record)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ApiKey | None]:
        """Head office only; anyone else is shown nothing."""
        viewer = info.context.viewer
        if not (isinstance(viewer, StaffViewer) and viewer.role is StaffRole.HQ_ADMIN):
            return [None for _ in node_ids]
        ids = node_row_ids(node_ids)
        found = {k.id: k for k in await info.context.api_keys().by_ids(ids)}
        return [cls.of(found[i]) if i in found else None for i in ids]

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field(description="The key's public part: dg_<prefix>_...")
    def prefix(self) -> str:
        return self.record.prefix

    @strawberry.field
    def scopes(self) -> list[str]:
        return sorted(self.record.scopes)

    @strawberry.field(description="The stores it acts on; null: every store.")
    async def stores(self, info: Info) -> list[StoreNode] | None:
        if self.record.store_ids is None:
            return None
        loaded = await info.context.loaders.store.load_many(sorted(self.record.store_ids))
        return [StoreNode.of(s) for s in loaded if s is not None]

    @strawberry.field(description="The delivery platform it writes for, if any.")
    def partner(self) -> Provider | None:
        return None if self.record.partner is None else Provider(self.record.partner)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(description="Its last use, to about a minute.")
    def last_used_at(self) -> datetime | None:
        return self.record.last_used_at

    @strawberry.field
    def revoked_at(self) -> datetime | None:
        return self.record.revoked_at


@strawberry.type
class ApiKeyEdge:
    cursor: str
    node: ApiKey


@strawberry.type
class ApiKeyConnection:
    edges: list[ApiKeyEdge]
    page_info: relay.PageInfo


async def api_keys(
    info: Info, first: int | None = None, after: str | None = None
) -> ApiKeyConnection:
    """Every partner key, by id, revoked ones included (head office only)."""
    ctx = info.context
    with raise_for_query(info):
        size = page_size(first, ctx.settings.max_page_size)
        after_id = decode_key_cursor("apikey", after)
        rows = await service.api_keys_page(
            viewer=ctx.viewer, keys=ctx.api_keys(), limit=size + 1, after_id=after_id
        )
    page = keyset_page(rows, size=size, kind="apikey", key=lambda k: k.id, after=after_id)
    return ApiKeyConnection(
        edges=[ApiKeyEdge(cursor=c, node=ApiKey.of(k)) for c, k in page.items],
        page_info=page_info(page),
    )


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] = strawberry.field(description="e.g. stock:write, orders:read.")
    store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The stores it acts on; null: every store."
    )
    partner: Provider | None = strawberry.field(
        default=None, description="The delivery platform of a delivery:write key."
    )


@strawberry.type
class CreateApiKeyPayload:
    key: str | None = strawberry.field(description="Shown this once: only its hash is kept.")
    api_key: ApiKey | None
    errors: list[UserError]


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    errors: list[UserError]


@strawberry.type
class StaffAdminMutation:
    @strawberry.mutation(description="A new staff account (head office).")
    async def create_staff_account(
        self, info: Info, input: CreateStaffAccountInput
    ) -> StaffAccountAdminPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.create_staff_account(
                service.NewStaffAccount(
                    username=input.username,
                    display_name=input.display_name,
                    role=input.role,
                    store_ids=_store_ids(input.store_ids),
                    password=input.password,
                ),
                viewer=ctx.viewer,
                directory=ctx.staff_accounts(),
                accounts=ctx.staff_accounts(),
                passwords=ctx.services.staff.passwords,
            )

        return _payload(*await attempt(info, run))

    @strawberry.mutation(description="Change an account's display name, role or stores.")
    async def update_staff_account(
        self, info: Info, input: UpdateStaffAccountInput
    ) -> StaffAccountAdminPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.update_staff_account(
                service.StaffAccountChange(
                    staff_id=_staff_id(input.id),
                    display_name=input.display_name,
                    role=input.role,
                    store_ids=None if input.store_ids is None else _store_ids(input.store_ids),
                ),
                viewer=ctx.viewer,
                directory=ctx.staff_accounts(),
                accounts=ctx.staff_accounts(),
            )

        return _payload(*await attempt(info, run))

    @strawberry.mutation(description="Disable an account: its sessions and tokens end at once.")
    async def disable_staff_account(
        self, info: Info, input: StaffAccountIdInput
    ) -> StaffAccountAdminPayload:
        return await _set_disabled(info, input.id, disabled=True)

    @strawberry.mutation(description="Enable a disabled account again.")
    async def enable_staff_account(
        self, info: Info, input: StaffAccountIdInput
    ) -> StaffAccountAdminPayload:
        return await _set_disabled(info, input.id, disabled=False)

    @strawberry.mutation(description="Set a temporary password its holder must change.")
    async def reset_staff_password(
        self, info: Info, input: ResetStaffPasswordInput
    ) -> StaffAccountAdminPayload:
        ctx = info.context

        async def run() -> domain.StaffAccount:
            return await service.reset_staff_password(
                _staff_id(input.id),
                input.temporary_password,
                viewer=ctx.viewer,
                directory=ctx.staff_accounts(),
                accounts=ctx.staff_accounts(),
                passwords=ctx.services.staff.passwords,
                now=ctx.now(),
            )

        return _payload(*await attempt(info, run))

    @strawberry.mutation(description="A new partner API key, shown once (head office).")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        ctx = info.context
        made = new_api_key()

        async def run() -> domain.ApiKeyRecord:
            return await service.create_api_key(
                service.NewApiKey(
                    name=input.name,
                    scopes=input.scopes,
                    store_ids=None if input.store_ids is None else _store_ids(input.store_ids),
                    partner=input.partner,
                ),
                domain.IssuedKey(key=made.key, prefix=made.prefix, key_hash=made.key_hash),
                viewer=ctx.viewer,
                keys=ctx.api_keys(),
            )

        record, errors = await attempt(info, run)
        return CreateApiKeyPayload(
            key=made.key if record else None,
            api_key=ApiKey.of(record) if record else None,
            errors=errors,
        )

    @strawberry.mutation(description="Revoke a partner key: every server refuses it at once.")
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        ctx = info.context

        async def run() -> domain.ApiKeyRecord:
            return await service.revoke_api_key(
                decode_id(input.id, "ApiKey", ["id"]),
                viewer=ctx.viewer,
                keys=ctx.api_keys(),
                now=ctx.now(),
            )

        record, errors = await attempt(info, run)
        return RevokeApiKeyPayload(api_key=ApiKey.of(record) if record else None, errors=errors)


async def _set_disabled(
    info: Info, global_id: strawberry.ID, *, disabled: bool
) -> StaffAccountAdminPayload:
    ctx = info.context

    async def run() -> domain.StaffAccount:
        return await service.set_staff_account_disabled(
            _staff_id(global_id),
            disabled,
            viewer=ctx.viewer,
            directory=ctx.staff_accounts(),
            accounts=ctx.staff_accounts(),
            now=ctx.now(),
        )

    return _payload(*await attempt(info, run))
