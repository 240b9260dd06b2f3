"""Calls out: a call to an outside system that must follow a commit (a refund, a courier
ordered or called off, a text message) is kept with the commit that wants it, then made.

A service records ``OutboundCall`` in its unit of work (``UnitOfWork.call``); the call is
written in the same transaction, so a rolled-back unit makes none, and relayed after
commit until the provider takes it (``dinegraph.outbound``). ``key`` is the provider's
idempotency key: a call may be made more than once (a crash after the provider answered),
the provider does it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import StaffRole, Viewer, require_staff

KIND_MAX = 64
KEY_MAX = 128
ERROR_MAX = 200  # what an operator sees of the last failure: short, no personal data


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """One call out, as recorded: what it is, its idempotency key, what its handler needs."""

    kind: str  # "<provider>.<action>": "wechatpay.refund", "sms.login_code", ...
    key: str  # the provider's idempotency key; (kind, key) is unique
    payload: Mapping[str, Any]  # JSON-able: everything the handler needs (no objects)

    def __post_init__(self) -> None:
        if not 0 < len(self.kind) <= KIND_MAX or not 0 < len(self.key) <= KEY_MAX:
            raise ValueError(f"a call's kind is 1..{KIND_MAX} and its key 1..{KEY_MAX} long")


class CallRefused(Exception):
    """A handler's answer: the provider refused the call for good; it is not tried again.
    ``reason`` is what operators see: keep personal data out of it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(Exception):
    """A handler's answer: the call did not go through this time (an outage, a refusal
    worth another try). ``reason`` is what operators see: keep personal data out of it.
    Other exceptions show their type only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TakenCall:
    """A call a relay has leased to make: its row, which attempt this is (1, 2, ...)."""

    id: int
    attempt: int
    call: OutboundCall


class OutboundCallStatus(StrEnum):
    PENDING = "PENDING"  # to be made, now or at next_attempt_at
    DONE = "DONE"  # the provider took it; its payload is forgotten
    FAILED = "FAILED"  # refused, or out of attempts: an operator looks (retryOutboundCall)


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A call as operators see it (no payload: it may hold personal data)."""

    id: int
    kind: str
    key: str
    status: OutboundCallStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    done_at: datetime | None


def short_error(text: str) -> str:
    """A failure as kept for operators: one line, at most ``ERROR_MAX`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= ERROR_MAX else line[: ERROR_MAX - 1] + "…"


def require_calls_operator(viewer: Viewer) -> None:
    """Calls out are head office's to watch and retry: HQ_ADMIN only."""
    if require_staff(viewer).role is not StaffRole.HQ_ADMIN:
        raise DomainError(ErrorCode.FORBIDDEN)
