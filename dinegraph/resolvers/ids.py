"""Relay global IDs in, integer ids out, with a clear error for the wrong kind of ID."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from dinegraph.domain.errors import DomainError, ErrorCode


def decode_id(global_id: str, type_name: str, field: Sequence[str]) -> int:
    """The integer id inside ``global_id``, which must name a ``type_name``."""
    try:
        kind, _, node_id = base64.b64decode(global_id.encode()).decode().partition(":")
    except ValueError as exc:  # not base64, or not UTF-8 inside
        raise DomainError(ErrorCode.INVALID_ID, field=field) from exc
    if kind != type_name or not node_id.isdigit():
        raise DomainError(ErrorCode.INVALID_ID, field=field)
    return int(node_id)


def encode_id(type_name: str, node_id: int) -> str:
    """Relay's encoding, ``base64("<Type>:<id>")``, as ``relay.GlobalID`` writes it."""
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()
