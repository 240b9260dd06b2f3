"""Share codes: what a link to a group-buy or a bargain carries, to bring friends in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode


class InviteKind(StrEnum):
    GROUP = "G"
    BARGAIN = "B"


@dataclass(frozen=True, slots=True)
class Invite:
    """What a share code carries: the group or bargain, who shared it, until when."""

    kind: InviteKind
    campaign_id: int
    target_id: int  # the group or the bargain
    inviter_id: int
    expires_at: datetime

    def check(self, kind: InviteKind | None, now: datetime) -> Invite:
        """Refuse a code of another kind (when one is asked for), or one that has expired."""
        if kind is not None and self.kind is not kind:
            raise DomainError(ErrorCode.INVALID_SHARE_CODE, field=["shareCode"])
        if now >= self.expires_at:
            raise DomainError(ErrorCode.SHARE_CODE_EXPIRED, field=["shareCode"])
        return self
