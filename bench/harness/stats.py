"""Percentiles and the rounding every JSON line uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence.

    The rank is ``round(q / 100 * n + 0.5)`` clamped to [1, n], and Python rounds halves to
    even: where ``q / 100 * n`` is a whole number the rank may be one above the textbook
    ``ceil`` (p99 of 100 values is the 100th). Every recorded figure was computed so.
    """
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def ms(seconds: float) -> float:
    """Seconds as milliseconds, to 0.01 ms."""
    return round(seconds * 1000, 2)


def mb(kb: int | None) -> float | None:
    """KiB (as /proc counts memory) as MiB, to 0.1."""
    return None if kb is None else round(kb / 1024, 1)


def pct_ms(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile of latencies in seconds, in ms; None when there are none."""
    ordered = sorted(values)
    return ms(percentile(ordered, q)) if ordered else None


def latency_figures(values: Iterable[float]) -> dict[str, float | None]:
    """p50, p99 and max of latencies in seconds, in ms."""
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": ms(percentile(ordered, 50)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]),
    }


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    """a / b, rounded; None when either is missing or b is 0."""
    return round(a / b, digits) if a is not None and b else None


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` shares as even as can be, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
