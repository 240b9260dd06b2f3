"""Text a client sends: characters every database can store, and a length that fits.

Both databases must answer alike: PostgreSQL refuses NUL in text and neither can encode a
lone UTF-16 surrogate (half of a pair, as broken JSON escapes produce), so such text is
refused with ``INVALID_CHARACTERS`` wherever it arrives, before anything is read or written.
Each rule that takes text keeps its own length limit next to it and checks it here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dinegraph.domain.errors import DomainError, ErrorCode

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(value: str) -> bool:
    """No NUL and no lone surrogate: text both databases store and give back unchanged."""
    return _UNSTORABLE.search(value) is None


def check_characters(value: str, field: Sequence[str]) -> str:
    if not is_storable(value):
        raise DomainError(ErrorCode.INVALID_CHARACTERS, field=field)
    return value


def check_length(value: str, field: Sequence[str], max_length: int) -> str:
    if len(value) > max_length:
        raise DomainError(ErrorCode.TOO_LONG, field=field, max=max_length)
    return value


def clean_text(value: str, field: Sequence[str], *, max_length: int, required: bool = True) -> str:
    """``value`` stripped: storable, present when ``required``, at most ``max_length`` long."""
    text = check_characters(value, field).strip()
    if required and not text:
        raise DomainError(ErrorCode.REQUIRED, field=field)
    return check_length(text, field, max_length)
