"""Limits on what a request may carry, before GraphQL sees it: the size of an HTTP body
or a WebSocket message (middleware) and how deep its JSON may nest (the decoder)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Arrays and objects nested in one JSON body or message. Inputs nest a few levels; the
# decoder recurses per level, so a body of brackets alone must stop well before the stack.
MAX_JSON_DEPTH = 64


class JsonTooDeep(json.JSONDecodeError):
    def __init__(self) -> None:
        super().__init__(f"nested more than {MAX_JSON_DEPTH} levels deep", "", 0)


def decode_json(data: str | bytes) -> object:
    """JSON as Python's decoder reads it (NaN too: variables refuse it with a GraphQL
    error), nested at most MAX_JSON_DEPTH levels; anything else it cannot decode is a
    JSONDecodeError (bytes that are not UTF-8, integers of thousands of digits)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep() from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from None
    if _nested_deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    return value


def _nested_deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _BodyTooLarge(Exception):
    pass


class SizeLimitMiddleware:
    """Bounds an HTTP request's body and a WebSocket message, before either is decoded.

    A body whose Content-Length is too large is refused unread; one without (chunked) is
    counted as it arrives and refused as soon as it passes the limit, so it is never held
    whole. A WebSocket message too large closes the socket with 1009 (message too big);
    `dinegraph serve` also tells uvicorn the limit, which then refuses it unbuffered.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_ws_message_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_ws_message_bytes = max_ws_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._too_large(send)
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": f"The request body is larger than {self.max_body_bytes} bytes.",
                        "extensions": {"code": "REQUEST_TOO_LARGE"},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and not closed:
                text, data = message.get("text"), message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > self.max_ws_message_bytes:
                    closed = True
                    await send({"type": "websocket.close", "code": 1009, "reason": "Too big"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
