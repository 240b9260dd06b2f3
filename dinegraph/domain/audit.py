"""The audit log: who changed what through a staff token, a partner key or the CLI.

An entry is written in the transaction of the write it describes, so a write that rolls back
leaves none and one that commits always has one. Refusals for want of rights are kept too,
as ``DENIED`` entries of their own (a partner key probing other stores, a manager another
store's orders); other refusals (out of stock, a bad transition) change nothing and are
frequent, and are not kept. Members' writes are their own account's, not the chain's: they
are not audited here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    Anonymous,
    PartnerViewer,
    StaffRole,
    StaffViewer,
    Viewer,
)


class ActorKind(StrEnum):
    STAFF = "STAFF"
    PARTNER = "PARTNER"
    CLI = "CLI"
    SYSTEM = "SYSTEM"  # the server's own work; no writer records it yet


class Outcome(StrEnum):
    DONE = "DONE"
    DENIED = "DENIED"  # refused for want of rights; nothing changed


# The refusals kept as DENIED: the caller lacked the rights, whatever its input.
DENIED_CODES = frozenset(
    {
        ErrorCode.FORBIDDEN,
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.WRONG_PROVIDER,
        ErrorCode.PASSWORD_CHANGE_REQUIRED,
    }
)

SUMMARY_MAX = 500
_TEXT_MAX = 60
_LIST_MAX = 10
# Argument names whose values are secrets or personal data: kept as "***".
_HIDDEN = (
    "phone",
    "address",
    "contact",
    "courier",
    "note",
    "nickname",
    "birthday",
    "password",
    "secret",
    "token",
    "code",
    "apikey",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor_kind: ActorKind
    credential: str  # "staff:<id>", "api_key:<id>", "cli"
    action: str  # the mutation field (restock) or CLI command (create-api-key)
    outcome: Outcome = Outcome.DONE
    staff_id: int | None = None
    api_key_id: int | None = None
    object_type: str | None = None  # a GraphQL type name (Sku, Order) or ApiKey, Staff
    object_id: int | None = None
    store_id: int | None = None
    client_address: str | None = None
    summary: str = ""
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_kind: ActorKind | None = None
    staff_id: int | None = None
    api_key_id: int | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    store_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


class AuditLog(Protocol):
    """The stored entries, newest first (``dinegraph.db.audit.SqlAuditLog``)."""

    async def entries(
        self, where: AuditFilter, *, before_id: int | None, limit: int
    ) -> list[AuditRecord]: ...

    async def append(self, entry: AuditEntry) -> None:
        """Keep ``entry`` in a transaction of its own (a DENIED one: nothing else to join)."""
        ...


class AuditDraft:
    """The entry a write's unit of work records when it commits.

    One per request's write, however many units of work the write opens: the first commit
    records it, later ones see ``written``. A service that creates its object names it
    (``UnitOfWork.wrote``), since its id exists only inside the transaction; one that
    loads its object names its store.
    """

    __slots__ = ("entry", "written")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.written = False

    def wrote(self, kind: str, object_id: int, store_id: int | None = None) -> None:
        self.entry = replace(
            self.entry,
            object_type=kind,
            object_id=object_id,
            store_id=store_id if store_id is not None else self.entry.store_id,
        )


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    credential: str
    staff_id: int | None = None
    api_key_id: int | None = None


CLI = Actor(ActorKind.CLI, "cli")


def actor(viewer: Viewer) -> Actor | None:
    """Who a write is recorded under; None for members and visitors (not audited)."""
    if isinstance(viewer, StaffViewer):
        # Staff tokens carry no id of their own: the account is the credential.
        return Actor(ActorKind.STAFF, f"staff:{viewer.staff_id}", staff_id=viewer.staff_id)
    if isinstance(viewer, PartnerViewer):
        key = viewer.api_key_id
        return Actor(ActorKind.PARTNER, f"api_key:{key}", api_key_id=key)
    return None


def require_audit_reader(viewer: Viewer) -> StaffViewer:
    """The audit log is head office's: HQ_ADMIN only."""
    if isinstance(viewer, StaffViewer) and viewer.role is StaffRole.HQ_ADMIN:
        return viewer
    if isinstance(viewer, Anonymous):
        raise DomainError(ErrorCode.UNAUTHENTICATED)
    raise DomainError(ErrorCode.FORBIDDEN)


@lru_cache(maxsize=4096)  # argument names: the schema's, and a JSON input's few
def _hidden(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _HIDDEN)


def _clean(value: object) -> object:
    if isinstance(value, Mapping):
        # A name next to a phone is a person's (a rider, a courier), not a dish's.
        person = any("phone" in str(k).lower() for k in value)
        return {
            str(k): "***"
            if (_hidden(str(k)) or (person and k == "name")) and v is not None
            else _clean(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        kept: list[object] = [_clean(v) for v in value[:_LIST_MAX]]
        if len(value) > _LIST_MAX:
            kept.append(f"+{len(value) - _LIST_MAX}")
        return kept
    if isinstance(value, str):
        return value if len(value) <= _TEXT_MAX else value[: _TEXT_MAX - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_TEXT_MAX]


def summarise(arguments: Mapping[str, object]) -> str:
    """A write's arguments, short, as compact JSON: secrets and personal data as ``***``,
    long texts and lists cut, the whole at most ``SUMMARY_MAX`` characters."""
    text = json.dumps(_clean(arguments), ensure_ascii=False, separators=(",", ":"))
    # Storable whatever came in: a lone surrogate is written out as its escape.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def check_filter(where: AuditFilter) -> AuditFilter:
    """Times must carry an offset (and be ones UTC can hold); they are kept as UTC."""
    times: dict[str, datetime | None] = {"from": where.since, "to": where.until}
    for name, value in times.items():
        if value is None:
            continue
        if value.tzinfo is None:
            raise DomainError(ErrorCode.INVALID_WINDOW, field=["filter", name])
        try:
            times[name] = value.astimezone(UTC)
        except OverflowError as exc:
            raise DomainError(ErrorCode.INVALID_WINDOW, field=["filter", name]) from exc
    return replace(where, since=times["from"], until=times["to"])


def cli_entry(
    action: str, arguments: Mapping[str, object], *, at: datetime, host: str
) -> AuditEntry:
    """A credential command run on a server's machine (``dinegraph staff-token``, ...)."""
    return AuditEntry(
        at=at,
        actor_kind=ActorKind.CLI,
        credential=CLI.credential,
        action=action,
        client_address=host[:64],
        summary=summarise(arguments),
    )
