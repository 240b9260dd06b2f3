"""graphql-transport-ws messages, as text frames (no third-party import: floors use it)."""

from __future__ import annotations

from typing import Any

import orjson

PROTOCOL = "graphql-transport-ws"
ACK = '{"type":"connection_ack"}'
PONG = '{"type":"pong"}'


def init_message(payload: dict[str, Any] | None = None) -> str:
    return orjson.dumps({"type": "connection_init", "payload": payload or {}}).decode()


def subscribe_message(op_id: str, query: str, variables: dict[str, Any]) -> str:
    return orjson.dumps(
        {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    ).decode()


def next_message(op_id: str, field: str, data: dict[str, Any]) -> str:
    """A ``next`` carrying ``{"data": {field: data}}``."""
    return orjson.dumps({"id": op_id, "type": "next", "payload": {"data": {field: data}}}).decode()
