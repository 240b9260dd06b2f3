"""Relay global IDs in, integer ids out, with a clear error for a malformed or wrong ID.

Every global ID a client sends is decoded here, strictly: at most ``GLOBAL_ID_MAX`` characters
of standard base64 holding ``<Type>:<digits>``, the digits plain ASCII with no sign, spaces or
leading zeros, and the number a row id the database can hold (1 to 2^31 - 1: PostgreSQL's
INTEGER). Anything else is ``INVALID_ID`` naming the field, never a failure further down.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence

from dinegraph.domain.errors import DomainError, ErrorCode

GLOBAL_ID_MAX = 100
ROW_ID_MAX = 2**31 - 1  # PostgreSQL INTEGER, the narrowest id column

_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_ROW_ID = re.compile(r"[1-9][0-9]*")  # ASCII only: str.isdigit() would take "²" and "٣"


def row_id(raw: str) -> int | None:
    """``raw`` as a row id, or None unless it is plain ASCII digits in the ids' range."""
    if len(raw) > 10 or not _ROW_ID.fullmatch(raw):
        return None
    number = int(raw)
    return number if number <= ROW_ID_MAX else None


def decode_any_id(global_id: str, field: Sequence[str]) -> tuple[str, int]:
    """The type name and integer id inside ``global_id``, whatever its type."""
    if not 0 < len(global_id) <= GLOBAL_ID_MAX:
        raise DomainError(ErrorCode.INVALID_ID, field=field)
    try:
        raw = base64.b64decode(global_id.encode("ascii"), validate=True).decode("ascii")
    except (UnicodeError, binascii.Error) as exc:  # not ASCII, not base64, not ASCII inside
        raise DomainError(ErrorCode.INVALID_ID, field=field) from exc
    kind, colon, node_id = raw.partition(":")
    number = row_id(node_id)
    if not colon or not _TYPE_NAME.fullmatch(kind) or number is None:
        raise DomainError(ErrorCode.INVALID_ID, field=field)
    return kind, number


def decode_id(global_id: str, type_name: str, field: Sequence[str]) -> int:
    """The integer id inside ``global_id``, which must name a ``type_name``."""
    kind, number = decode_any_id(global_id, field)
    if kind != type_name:
        raise DomainError(ErrorCode.INVALID_ID, field=field)
    return number


def node_row_ids(node_ids: Iterable[str]) -> list[int]:
    """The ids a type's ``resolve_nodes`` is given, as row ids; 0 (no row) where malformed."""
    return [row_id(i) or 0 for i in node_ids]


def encode_id(type_name: str, node_id: int) -> str:
    """Relay's encoding, ``base64("<Type>:<id>")``, as ``relay.GlobalID`` writes it."""
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()
