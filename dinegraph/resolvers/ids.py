"""Relay global IDs in, integer ids out, with a clear error for the wrong kind of ID."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry import relay

from dinegraph.domain.errors import DomainError, ErrorCode


def decode_id(global_id: str, type_name: str, field: Sequence[str]) -> int:
    """The integer id inside ``global_id``, which must name a ``type_name``."""
    try:
        gid = relay.GlobalID.from_id(global_id)
    except (relay.GlobalIDValueError, ValueError) as exc:
        raise DomainError(ErrorCode.INVALID_ID, field=field) from exc
    if gid.type_name != type_name or not gid.node_id.isdigit():
        raise DomainError(ErrorCode.INVALID_ID, field=field)
    return int(gid.node_id)


def encode_id(type_name: str, node_id: int) -> str:
    return str(relay.GlobalID(type_name, str(node_id)))
