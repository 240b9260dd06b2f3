"""The cyclic collector's time in a ``dinegraph serve`` process, for the benchmarks.

Put this folder first on PYTHONPATH and name a folder in ``BENCH_GC_PROBE_DIR``: every
``dinegraph serve`` process started with that environment then writes, every 5 seconds
(``BENCH_GC_PROBE_SECONDS``), a line to ``<dir>/<pid>.txt`` with its CPU seconds so far,
the seconds and count of collections of each generation so far (start-up's included), the
collector's thresholds and how many objects are frozen. The last line of a server's file
is its totals. Python imports ``sitecustomize`` by itself at start-up; nothing else is changed.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path


def _watch(out: Path, every: float) -> None:
    started: dict[int, float] = {}
    seconds = [0.0, 0.0, 0.0]
    counts = [0, 0, 0]

    def timed(phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        now = time.perf_counter()
        if phase == "start":
            started[generation] = now
        elif generation in started:
            seconds[generation] += now - started.pop(generation)
            counts[generation] += 1

    gc.callbacks.append(timed)

    def write() -> None:
        while True:
            time.sleep(every)
            with out.open("a") as f:
                f.write(
                    f"cpu_s={time.process_time():.2f} "
                    f"gc_s={','.join(f'{s:.3f}' for s in seconds)} "
                    f"collections={','.join(map(str, counts))} "
                    f"threshold={','.join(map(str, gc.get_threshold()))} "
                    f"frozen={gc.get_freeze_count()}\n"
                )

    threading.Thread(target=write, name="bench-gc-probe", daemon=True).start()


if (where := os.environ.get("BENCH_GC_PROBE_DIR")) and "serve" in sys.argv[1:]:
    _watch(Path(where) / f"{os.getpid()}.txt", float(os.environ.get("BENCH_GC_PROBE_SECONDS", "5")))
