"""Relay pagination over an ordered list: ``first`` capped, opaque offset cursors."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.resolvers import ids

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
_PREFIX = "offset:"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"]) from exc
    number = raw.removeprefix(_PREFIX)
    if not raw.startswith(_PREFIX) or not (number == "0" or ids.row_id(number) is not None):
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"])
    return int(number)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None


def page_of(
    items: Sequence[T], *, first: int | None, after: str | None, max_page_size: int
) -> Page[T]:
    """One page of ``items`` after the ``after`` cursor."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["first"], min=0, max=max_page_size)
    if size > max_page_size:
        raise DomainError(ErrorCode.PAGE_SIZE_TOO_LARGE, field=["first"], max=max_page_size)
    start = 0 if after is None else decode_cursor(after) + 1
    chosen = items[start : start + size]
    return Page(
        items=[(encode_cursor(start + i), item) for i, item in enumerate(chosen)],
        has_next_page=start + size < len(items),
        has_previous_page=start > 0,
        total_count=len(items),
    )


def page_size(first: int | None, max_page_size: int) -> int:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= max_page_size:
        raise DomainError(ErrorCode.PAGE_SIZE_TOO_LARGE, field=["first"], max=max_page_size)
    return size


def encode_key_cursor(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode()


def decode_key_cursor(kind: str, cursor: str | None) -> int | None:
    """The row id inside a keyset cursor of ``kind``; pages by id never shift as rows arrive."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"]) from exc
    prefix = f"{kind}:"
    number = ids.row_id(raw.removeprefix(prefix))
    if not raw.startswith(prefix) or number is None:
        raise DomainError(ErrorCode.INVALID_CURSOR, field=["after"])
    return number


def keyset_page(
    rows: Sequence[T], *, size: int, kind: str, key: Callable[[T], int], after: int | None
) -> Page[T]:
    """A page from ``size + 1`` rows fetched newest first: the extra one tells of a next page."""
    return Page(
        items=[(encode_key_cursor(kind, key(r)), r) for r in rows[:size]],
        has_next_page=len(rows) > size,
        has_previous_page=after is not None,
        total_count=None,
    )
