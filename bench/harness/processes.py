"""Processes a benchmark runs: servers on free loopback ports, the ``dinegraph`` CLI, and
subscriber processes it drives over their stdin and stdout."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson

from .report import BenchError, log

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0
BENCH_DIR = Path(__file__).resolve().parents[1]
PIPE_LIMIT = 1 << 28  # a subscriber process may hand over every receipt in one line


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def dinegraph_command() -> list[str]:
    beside = Path(sys.executable).parent / "dinegraph"
    found = str(beside) if beside.exists() else shutil.which("dinegraph")
    if found is None:
        raise BenchError("the `dinegraph` command is not installed next to this Python")
    return [found]


# --- servers -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/graphql"

    def _log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log_lines()[-lines:]) or "(no log)"

    def log_problems(self) -> list[str]:
        """Tracebacks and ERROR lines in the server's log (access lines are ignored)."""
        return [
            line
            for line in self._log_lines()
            if " ERROR " in line or line.startswith("Traceback") or " CRITICAL " in line
        ]

    def log_warnings(self) -> list[str]:
        """WARNING lines (uvicorn's dropped or invalid requests show here)."""
        return [line for line in self._log_lines() if " WARNING " in line]


def start_server(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    """Start ``command --host 127.0.0.1 --port <free>``, its output to ``<name>.log``."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", LOOPBACK, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    log(f"{name}: pid {process.pid} on {LOOPBACK}:{port} (log {log_path})")
    return Server(name, process, port, log_path)


def start_product(name: str, env: dict[str, str], workdir: Path) -> Server:
    """``dinegraph serve --workers 1``: one process, as every scenario measures it."""
    return start_server(name, [*dinegraph_command(), "serve", "--workers", "1"], env, workdir)


def start_floor(name: str, script: str, env: dict[str, str], workdir: Path) -> Server:
    """A floor server, ``bench/<script>``, run by this Python."""
    return start_server(name, [sys.executable, str(BENCH_DIR / script)], env, workdir)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    log(f"{server.name}: stopped (exit {server.process.returncode})")


@contextlib.contextmanager
def stopping(*servers: Server) -> Iterator[None]:
    """Stop the servers on the way out, whatever happened."""
    try:
        yield
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                stop_server(server)


async def wait_ready(server: Server, path: str = "/health") -> None:
    """Until ``path`` answers 200; fails with the log's tail if the server exits or does
    not answer within STARTUP_TIMEOUT_S."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{server.base_url}{path}")).status_code == 200:
                    log(f"{server.name}: ready")
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} not ready in time:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


# --- the CLI -------------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str]) -> str:
    """``dinegraph <args>``; its stdout, or BenchError with everything it printed."""
    done = subprocess.run(
        [*dinegraph_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"dinegraph {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise BenchError("the command printed nothing")
    return lines[-1]


def cli_value(args: list[str], env: dict[str, str]) -> str:
    """What a credential command prints last: the token or the key."""
    return last_line(run_cli(args, env))


# --- this process --------------------------------------------------------------------------


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so that servers and the scratch database go."""

    def raise_exit(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, raise_exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_open_files(needed: int) -> None:
    """Each socket is one open file on either side; servers started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise BenchError(f"need {needed} open files, the limit is {soft} (ulimit -n)")


def open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- subscriber processes ------------------------------------------------------------------


class WorkerPool:
    """Child processes (one Python can read only so many sockets quickly), each answering
    one JSON line on stdout to every JSON line on its stdin (see ``worker_commands``)."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.labels: list[str] = []  # e.g. the server each one's subscribers are on

    async def spawn(self, argv: Sequence[str], label: str, first: Any = None) -> None:
        """Start ``this Python argv``; ``first``, when given, is its first stdin line (a
        spec too long for a command line)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=PIPE_LIMIT,
        )
        if first is not None:
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(first) + b"\n")
            await proc.stdin.drain()
        self.procs.append(proc)
        self.labels.append(label)

    async def ask(
        self, command: dict[str, Any] | list[dict[str, Any]], within: float
    ) -> list[dict[str, Any]]:
        """Send the command (or one per process) to every process; one reply from each."""
        each = command if isinstance(command, list) else [command] * len(self.procs)
        for proc, one in zip(self.procs, each, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(one) + b"\n")
            await proc.stdin.drain()

        async def reply(proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), within)
            if not line:
                raise BenchError(f"worker process {proc.pid} exited ({proc.returncode})")
            answer: dict[str, Any] = orjson.loads(line)
            return answer

        return list(await asyncio.gather(*(reply(p) for p in self.procs)))

    async def cpu_s(self) -> float:
        """CPU seconds the processes have used so far (each answers ``cpu``)."""
        if not self.procs:
            return 0.0
        return float(sum(r["cpu_s"] for r in await self.ask({"cmd": "cpu"}, 60)))

    async def close(self) -> list[dict[str, Any]]:
        """``close`` to each, then wait for them (kill one that hangs)."""
        replies: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):
            replies = await self.ask({"cmd": "close"}, 60)
        for proc in self.procs:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        return replies


async def worker_commands() -> asyncio.StreamReader:
    """In a worker process: its stdin, one JSON command a line."""
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader(limit=PIPE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    return commands


def say(answer: dict[str, Any]) -> None:
    """In a worker process: one JSON line to the bench."""
    sys.stdout.write(orjson.dumps(answer).decode() + "\n")
    sys.stdout.flush()


def cpu_reply() -> dict[str, Any]:
    """A worker's answer to ``cpu``."""
    return {"cpu_s": round(time.process_time(), 3)}


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def answer_commands(
    commands: asyncio.StreamReader,
    handlers: Mapping[str, Handler],
    close: Callable[[], Awaitable[None]],
) -> None:
    """A worker's loop: the handler named by each command's ``cmd`` answers it, one line
    each; ``cpu`` and ``close`` (which ends the loop) are answered here."""
    while line := await commands.readline():
        command: dict[str, Any] = orjson.loads(line)
        if command["cmd"] == "cpu":
            say(cpu_reply())
        elif command["cmd"] == "close":
            await close()
            say({"closed": True, **cpu_reply()})
            return
        else:
            say(await handlers[command["cmd"]](command))
