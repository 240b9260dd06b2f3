"""HTTP clients of the benchmarks: httpx for setting up and for the scenarios measured
through it, and a lean keep-alive connection where the load generator must stay cheap."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import httpx
import orjson

from .report import BenchError

REQUEST_TIMEOUT_S = 120.0
# Idle connections are dropped by the client well before uvicorn's 5 s keep-alive timeout:
# with httpx's default (also 5 s) a request can go out on a connection the server is
# closing at that moment, and fail with a ReadError that is nobody's fault but the race's.
KEEPALIVE_EXPIRY_S = 2.0
STATEMENTS = re.compile(r'db;desc="(\d+) statements"')
STATEMENTS_BYTES = re.compile(rb'db;desc="(\d+) statements"')


def pooled_client(connections: int, timeout: float = REQUEST_TIMEOUT_S) -> httpx.AsyncClient:
    """One httpx client whose pool keeps up to ``connections`` connections alive."""
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)


def graphql_body(query: str, variables: dict[str, Any], operation: str | None = None) -> bytes:
    """A GraphQL request's body (made once, sent many times)."""
    body: dict[str, Any] = {"query": query}
    if operation is not None:
        body["operationName"] = operation
    body["variables"] = variables
    return orjson.dumps(body)


async def graphql(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST /graphql; its ``data``, or BenchError on an HTTP or GraphQL error."""
    response = await client.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers or {},
    )
    body: dict[str, Any] = orjson.loads(response.content)
    if response.status_code != 200 or "errors" in body:
        raise BenchError(f"HTTP {response.status_code}: {body}")
    data: dict[str, Any] = body["data"]
    return data


def statement_count(text: str | bytes | None) -> int | None:
    """The SQL statement count of a ``Server-Timing`` header (or a whole response head)."""
    if not text:
        return None
    found = STATEMENTS_BYTES.search(text) if isinstance(text, bytes) else STATEMENTS.search(text)
    return int(found.group(1)) if found else None


class LeanConnection:
    """One keep-alive HTTP/1.1 connection: POST and read a Content-Length answer.

    Far cheaper on the CPU than httpx, whose pool costs several ms of client CPU per
    request with hundreds of connections (11.5 ms per request at 300 connections, 0.4 ms
    here, measured for bench/flash_sale.py), which would make the load generator, not the
    server, the bottleneck of a small machine. A request can be made beforehand
    (``request``) and sent as it is (``exchange``).
    """

    _LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
    _CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)

    def __init__(
        self,
        host: str,
        port: int,
        headers: dict[str, str] | None = None,
        *,
        keepalive_expiry: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """``keepalive_expiry``: open afresh a connection idle that long, so that no
        request races the server closing it; ``timeout``: of each exchange."""
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = (
            f"Host: {host}:{port}\r\ncontent-type: application/json\r\n{extra}content-length: "
        ).encode()
        self._keepalive_expiry = keepalive_expiry
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used_at = 0.0

    def request(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        """The bytes of one POST, with the connection's headers and these."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
        return (
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + extra
            + self._head
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes, bytes]:
        """(status, head, body) of one POST."""
        return await self.exchange(self.request(path, body))

    async def exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send a request made beforehand; (status, head, body) of the answer."""
        if (
            self._writer is not None
            and self._keepalive_expiry is not None
            and time.monotonic() - self._used_at > self._keepalive_expiry
        ):
            self.close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            async with asyncio.timeout(self._timeout):
                self._writer.write(request)
                head = await self._reader.readuntil(b"\r\n\r\n")
                length = self._LENGTH.search(head)
                if length is None:
                    raise BenchError(f"an answer without content-length: {head[:300]!r}")
                body = await self._reader.readexactly(int(length.group(1)))
        except BaseException:
            self.close()
            raise
        if self._CLOSE.search(head):
            self.close()
        self._used_at = time.monotonic()
        return int(head[9:12]), head, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None

    async def aclose(self) -> None:
        """Close, and wait until the socket is gone."""
        writer = self._writer
        self.close()
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
