"""Money is integer fen everywhere inside the product."""

from __future__ import annotations


def display_fen(fen: int) -> str:
    """``5800`` → ``¥58.00``, as a price tag reads."""
    sign = "-" if fen < 0 else ""
    yuan, rest = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{rest:02d}"
