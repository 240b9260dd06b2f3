"""CPU and memory, from /proc: of the machine, of one process, of every process of a name.

The figures the scenarios report are shares of one core over a measured window:
``server_cpu_pct`` 100 is one core busy all along. ``other_cpu_pct`` is what the rest of
the machine did meanwhile (its busy time less everything the benchmark knows it ran); a
run that others disturbed is measured again (``runs.least_disturbed``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .report import log
from .stats import mb

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
QUIET = 0.15  # the machine's busy share under which it counts as quiet


# --- reading /proc -----------------------------------------------------------------------


@dataclass(frozen=True)
class MachineStat:
    """Jiffies of all cores together since boot, from the first line of /proc/stat."""

    busy: int  # everything but idle and iowait
    total: int
    steal: int  # time the hypervisor gave other guests (counted in busy)


def parse_machine_stat(text: str) -> MachineStat | None:
    try:
        values = [int(v) for v in text.split("\n", 1)[0].split()[1:]]
    except ValueError:
        return None
    if len(values) < 4:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values)
    return MachineStat(total - idle, total, values[7] if len(values) > 7 else 0)


def read_machine() -> MachineStat | None:
    try:
        return parse_machine_stat(Path("/proc/stat").read_text())
    except OSError:
        return None


def parse_pid_times(text: str) -> tuple[int, int, int, int]:
    """(utime, stime, cutime, cstime) in clock ticks from /proc/<pid>/stat. The command
    name (in parentheses) may hold spaces, so the fields are counted from its end."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12]), int(fields[13]), int(fields[14])


def pid_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process; None once it is gone."""
    try:
        utime, stime, _, _ = parse_pid_times(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None
    return (utime + stime) / CLOCK_TICKS


def command_cpu_seconds(command: str) -> float:
    """CPU seconds of every process named ``command`` (e.g. PostgreSQL's), with what its
    reaped children used (cutime, cstime): backends that closed mid-window still count."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if text.partition("(")[2].rpartition(")")[0] == command:
                ticks += sum(parse_pid_times(text))
        except (OSError, IndexError, ValueError):
            continue
    return ticks / CLOCK_TICKS


def proc_status_kb(pid: int, key: str) -> int | None:
    """A memory figure of /proc/<pid>/status in KiB: VmRSS now, VmHWM its peak."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb(pid: int, key: str = "VmRSS") -> float | None:
    return mb(proc_status_kb(pid, key))


# --- arithmetic --------------------------------------------------------------------------


def cores() -> int:
    """Every core /proc/stat adds up (not only those this process may use)."""
    return os.cpu_count() or 1


def busy_share(before: MachineStat | None, after: MachineStat | None) -> float | None:
    """The share of all cores' time that was busy between two readings."""
    if before is None or after is None or after.total <= before.total:
        return None
    return (after.busy - before.busy) / (after.total - before.total)


def steal_share(before: MachineStat | None, after: MachineStat | None) -> float | None:
    if before is None or after is None or after.total <= before.total:
        return None
    return (after.steal - before.steal) / (after.total - before.total)


def other_cpu_s(
    busy: float | None,
    seconds: float,
    known_s: float,
    *,
    steal: float | None = None,
    cores_: int | None = None,
) -> float | None:
    """CPU seconds the machine spent on work the benchmark does not know of: its busy
    time over ``seconds`` (less the hypervisor's steal, when given) less ``known_s``."""
    if busy is None:
        return None
    spent = (busy - (steal or 0.0)) * (cores_ or cores()) * seconds
    return max(0.0, spent - known_s)


def pct_of_core(cpu_s: float | None, seconds: float) -> float | None:
    """CPU seconds over ``seconds`` of wall time, in % of one core."""
    return None if cpu_s is None else round(100 * cpu_s / seconds, 1)


# --- a window of CPU ---------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSnapshot:
    client_s: float  # this process
    machine: MachineStat | None
    servers_s: tuple[float | None, ...]
    database_s: float | None


def snapshot(server_pids: Sequence[int] = (), database: Sequence[str] = ()) -> CpuSnapshot:
    """What this process, the given server processes and the processes named in
    ``database`` (e.g. ``postgres``) have used so far, and the machine's counters."""
    return CpuSnapshot(
        time.process_time(),
        read_machine(),
        tuple(pid_cpu_seconds(pid) for pid in server_pids),
        sum(command_cpu_seconds(c) for c in database) if database else None,
    )


@dataclass(frozen=True)
class CpuUsage:
    """CPU used between two snapshots."""

    client_s: float
    servers_s: tuple[float | None, ...]
    database_s: float | None
    machine_busy: float | None
    steal: float | None

    @property
    def server_s(self) -> float | None:
        """The first (usually the only) server's."""
        return self.servers_s[0] if self.servers_s else None

    def known_s(self) -> float:
        return sum(s or 0.0 for s in self.servers_s) + self.client_s + (self.database_s or 0.0)

    def other_s(
        self, seconds: float, *, extra_known_s: float = 0.0, without_steal: bool = False
    ) -> float | None:
        return other_cpu_s(
            self.machine_busy,
            seconds,
            self.known_s() + extra_known_s,
            steal=self.steal if without_steal else None,
        )


def usage(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    servers = tuple(
        None if a is None or b is None else b - a
        for a, b in zip(before.servers_s, after.servers_s, strict=True)
    )
    database = (
        None
        if before.database_s is None or after.database_s is None
        else after.database_s - before.database_s
    )
    return CpuUsage(
        after.client_s - before.client_s,
        servers,
        database,
        busy_share(before.machine, after.machine),
        steal_share(before.machine, after.machine),
    )


# --- a quiet machine ---------------------------------------------------------------------


def busy_over(seconds: float, *, count_steal: bool = True) -> float | None:
    """The machine's busy share over the next ``seconds`` (sleeping meanwhile)."""
    before = read_machine()
    time.sleep(seconds)
    after = read_machine()
    busy = busy_share(before, after)
    if busy is None or count_steal:
        return busy
    return max(0.0, busy - (steal_share(before, after) or 0.0))


def wait_for_quiet(
    max_wait: float, threshold: float = QUIET, *, count_steal: bool = True
) -> float | None:
    """Wait (up to ``max_wait`` s) until the machine is mostly idle; returns the last busy
    share. Other jobs on a small machine (a test run, another benchmark) would take CPU
    from the servers under test. ``count_steal=False`` leaves the hypervisor's steal out:
    a VM that reports steal even while idle would otherwise never look quiet."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_over(1.0, count_steal=count_steal)
        if busy is None or busy <= threshold:
            return busy
        if time.monotonic() >= deadline:
            log(f"WARNING: the machine is still {busy:.0%} busy; the figures will suffer")
            return busy
        log(f"the machine is {busy:.0%} busy with other work; waiting for it to quieten")
        time.sleep(4.0)


def busy_pct(busy: float | None) -> float | None:
    """A busy share (of ``wait_for_quiet``) as the ``machine_busy_before_pct`` figure."""
    return None if busy is None else round(100 * busy, 1)
