"""The cyclic garbage collector of a server process, and memory handed back after start-up.

Python's defaults suit a short script: a collection of the young generation every 700
objects allocated net, and a full one whenever the survivors have grown by a quarter. A
server keeps a large heap for its whole life (the modules, the schema, the caches, every
open subscription) and allocates tens of thousands of objects a second. With the defaults,
the full collections walk all of it every couple of seconds, and each one stops every
request and every push for as long as the walk takes: about 220 ms on a busy two-core
node, and 14-16 % of the server's CPU in all (BENCHMARKS.md, "The collector").

A serving process therefore freezes what start-up made (it is never garbage: the
collector leaves frozen objects alone), and collects the young generation less often.

Work done once after start (search's dictionaries built into tries) frees far more than it
keeps; glibc's allocator holds what C code freed for its next allocations, which an idle
server may never make. ``return_freed_memory`` gives it back to the system.
"""

from __future__ import annotations

import ctypes
import gc

__all__ = ["return_freed_memory", "tune_collector"]


def tune_collector(young_threshold: int) -> None:
    """Freeze everything alive now out of later collections, and collect the young
    generation after ``young_threshold`` net allocations (0: Python's default)."""
    if young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
    gc.collect()
    gc.freeze()


def return_freed_memory() -> bool:
    """Hand the memory the C allocator holds free back to the system (glibc's
    ``malloc_trim``); False where the C library has no such call."""
    # The symbols the process has loaded already: its C library's among them.
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:  # not glibc (musl, macOS)
        return False
    trim(0)
    return True
