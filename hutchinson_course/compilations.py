"""Count what jax.jit really does, through JAX's public monitoring events.

Each time JAX traces a function to a jaxpr and compiles it with XLA, it records timed events
(``/jax/core/compile/jaxpr_trace_duration``, ``/jax/core/compile/backend_compile_duration``).
Listening to them counts traces and compilations without touching the function.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
from typing import Iterator

import jax

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class CompilationCount:
    traces: int = 0
    compilations: int = 0


@contextlib.contextmanager
def count_compilations() -> Iterator[CompilationCount]:
    """Count the traces and XLA compilations that happen inside the ``with`` block."""
    count = CompilationCount()

    def listener(event: str, duration_secs: float, **kwargs) -> None:
        if event == TRACE_EVENT:
            count.traces += 1
        elif event == COMPILE_EVENT:
            count.compilations += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def compile_together(lowered_programs):
    """Compile several lowered programs (``jax.jit(f).lower(...)``) at once, one thread each.

    XLA's compiler releases Python's lock while it works, so independent programs compile side by
    side on the machine's cores. Returns the compiled programs in the same order.
    """
    lowered_programs = list(lowered_programs)
    with concurrent.futures.ThreadPoolExecutor(max(len(lowered_programs), 1)) as pool:
        return list(pool.map(lambda program: program.compile(), lowered_programs))
