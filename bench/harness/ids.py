"""Global ids as the product prints them (no third-party import: floors use it)."""

from __future__ import annotations

import base64


def global_id(type_name: str, node_id: int) -> str:
    """What strawberry's ``relay.GlobalID`` prints: base64 of ``Type:id``."""
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()
