"""A Starlette app served by uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Self

import uvicorn
from starlette.applications import Starlette


class BackgroundServer:
    """Serves ``app`` on 127.0.0.1 until ``stop``; ``url`` is where it listens."""

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name=f"fake-{type(app).__name__}-{self.port}",
            daemon=True,
        )

    def start(self) -> Self:
        self._thread.start()
        while not self._server.started:  # readiness: uvicorn says it is listening
            if not self._thread.is_alive():
                raise RuntimeError("the fake server did not start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
