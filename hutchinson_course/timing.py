"""Timing JAX code correctly: warm up first, block until the result is ready, take a median.

JAX dispatches work asynchronously: a call returns as soon as the computation is queued.
Without ``jax.block_until_ready`` a timer measures the dispatch, not the work.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of ``repeats`` runs, and their spread (max - min)."""

    median: float
    spread: float
    repeats: int

    def __str__(self) -> str:
        return f"{_human(self.median)} ± {_human(self.spread / 2)} (median of {self.repeats})"


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 7, warmup: int = 1) -> Timing:
    """Time ``fn(*args)``: ``warmup`` untimed calls (compilation happens there), then ``repeats`` timed ones."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, found repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        seconds.append(time.perf_counter() - start)
    return Timing(statistics.median(seconds), max(seconds) - min(seconds), repeats)


def speedup(slow: Timing, fast: Timing) -> float:
    """How many times faster ``fast`` ran than ``slow`` (median against median)."""
    return slow.median / fast.median


def _human(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"
