"""The cyclic garbage collector of a server process.

Python's defaults suit a short script: a collection of the young generation every 700
objects allocated net, and a full one whenever the survivors have grown by a quarter. A
server keeps a large heap for its whole life (the modules, the schema, the caches, every
open subscription) and allocates tens of thousands of objects a second. With the defaults,
the full collections walk all of it every couple of seconds, and each one stops every
request and every push for as long as the walk takes: about 220 ms on a busy two-core
node, and 14-16 % of the server's CPU in all (BENCHMARKS.md, "The collector").

A serving process therefore freezes what start-up made (it is never garbage: the
collector leaves frozen objects alone), and collects the young generation less often.
"""

from __future__ import annotations

import gc

__all__ = ["tune_collector"]


def tune_collector(young_threshold: int) -> None:
    """Freeze everything alive now out of later collections, and collect the young
    generation after ``young_threshold`` net allocations (0: Python's default)."""
    if young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
    gc.collect()
    gc.freeze()
