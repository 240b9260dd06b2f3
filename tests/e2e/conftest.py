"""A real `dinegraph serve` process on the run's demo database, on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dinegraph.settings import Settings
from tests.conftest import PRODUCTION_ADAPTER_ENV

DINEGRAPH = str(Path(sys.executable).with_name("dinegraph"))

# How long a server may take to come up and a CLI command to finish. Generous: on a loaded
# machine (CI, two cores) start-up alone has taken over 30 s. Readiness is polled, so a
# quick start is not slowed down.
PATIENCE_SECONDS = float(os.environ.get("DINEGRAPH_TEST_PATIENCE_SECONDS", "120"))
# How long past a deadline a server may take to act on it (its sweeps), on a loaded machine.
SETTLE = timedelta(seconds=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    assert settings.secret_key is not None
    production = extra.get("DINEGRAPH_MODE") == "production"
    return {
        **os.environ,
        **(PRODUCTION_ADAPTER_ENV if production else {}),
        "DINEGRAPH_DATABASE_URL": settings.database_url,
        "DINEGRAPH_SECRET_KEY": settings.secret_key.get_secret_value(),
        **_personal_data_keys(settings),
        **extra,
    }


def _personal_data_keys(settings: Settings) -> dict[str, str]:
    """The keys the tests' databases were written with, so servers and commands read them."""
    keys = {}
    if settings.data_keys is not None:
        keys["DINEGRAPH_DATA_KEYS"] = settings.data_keys.get_secret_value()
    if settings.blind_index_key is not None:
        keys["DINEGRAPH_BLIND_INDEX_KEY"] = settings.blind_index_key.get_secret_value()
    return keys


def run_cli(settings: Settings, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DINEGRAPH, *args],
        env=cli_env(settings, **extra),
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
    )


class ServerClock:
    """A server's clock, from a time it wrote in an answer (an order's placedAt, say). A demo
    clock starts when its server does, so a client cannot work it out from its own. It runs
    on from that answer at the real rate, so it is never ahead of the server's."""

    def __init__(self, written: str) -> None:
        self._written = datetime.fromisoformat(written)
        self._read = time.monotonic()

    def now(self) -> datetime:
        return self._written + timedelta(seconds=time.monotonic() - self._read)


SERVER_LOGS: dict[str, Path] = {}
"""Where each running server's output goes, by its URL (the SMS adapter logs codes there)."""


def stop(process: subprocess.Popen[Any]) -> None:
    """Ask a process to end; kill it when it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(settings: Settings, *, port: int | None = None, **env: str) -> Iterator[str]:
    """A `dinegraph serve` process on a loopback port (a free one unless given); stopped on exit.
    Its URL is yielded (``server_process`` yields the process too)."""
    with server_process(settings, port=port, **env) as (url, _):
        yield url


@contextmanager
def server_process(
    settings: Settings, *, port: int | None = None, **env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A `dinegraph serve` process and its URL; stopped on exit (a test may kill it first).

    Given the port of a server that has stopped, it restarts it where its clients reconnect.
    It is yielded once /health answers; a server that exits first, or is not up within
    PATIENCE_SECONDS, fails the test with its log. A free port another test process took
    between our look and the server's bind is given up for another one.
    """
    for attempt in range(3):
        chosen = port or free_port()
        log = Path(tempfile.mkstemp(prefix="dinegraph-serve-", suffix=".log")[1])
        output = log.open("w")
        process = subprocess.Popen(
            [DINEGRAPH, "serve", "--host", "127.0.0.1", "--port", str(chosen)],
            env=cli_env(settings, PYTHONUNBUFFERED="1", **env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{chosen}"
        SERVER_LOGS[url] = log
        try:
            if _up(process, url, log, port_taken_is_fatal=port is not None or attempt == 2):
                yield url, process
                return
        finally:
            stop(process)
            output.close()
            SERVER_LOGS.pop(url, None)
            log.unlink(missing_ok=True)


def _up(process: subprocess.Popen[Any], url: str, log: Path, *, port_taken_is_fatal: bool) -> bool:
    """Whether the server answers /health; False when its port was taken (to try another)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            output = log.read_text()
            if "address already in use" in output and not port_taken_is_fatal:
                return False
            pytest.fail(f"dinegraph serve exited ({process.returncode}) early:\n{output}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"dinegraph serve was not up within {PATIENCE_SECONDS:.0f} s "
                f"(DINEGRAPH_TEST_PATIENCE_SECONDS):\n{log.read_text()}"
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[str]:
    with running_server(settings) as url:
        yield url
