"""The tiling chapter's memory explorer: logical bytes beside the memory XLA reports for the compiled program.

For B, N and Dc (sliders), each of the vmap chapter's strategies shows

- its *logical* bytes: the arrays it builds and hands to vmap (its "before the vmap" level, counted
  as in the shape explorer; tiling and flattening copy z and t to every point), computed in the
  browser by ``shapes.js``, so they follow the sliders on the static website too;
- what ``jax.jit(...).lower(...).compile().memory_analysis()`` reports for
  ``per_point.batch_traces`` with those settings: arguments, output and temporaries.

Compiling takes seconds, so ``compiled_memory`` is cached on the settings: returning to settings
already seen compiles nothing. Compiled figures need a kernel; the static website shows those
computed when the page was built.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import anywidget
import jax
import jax.numpy as jnp
import traitlets

from ..estimators import per_point
from . import assets

CHOICES = {"B": (1, 2, 4, 8, 16, 32, 64), "N": (4, 16, 64, 256, 1024), "Dc": (1, 4, 16, 64, 256)}
DIM = 4  # D, fixed: the strategies differ in how they handle the context, not the points
NUM_PROBES = 16


class CompiledMemory(NamedTuple):
    """Bytes reported by ``Compiled.memory_analysis()``."""

    arguments: int
    output: int
    temporaries: int


def input_structs(B: int, N: int, D: int, Dc: int) -> tuple:
    """Shapes and dtypes of the estimator's inputs, with a global context: x_t (B, N, D), z (B, Dc) and
    t (B, 1) float32, mask (B, N) bool, and one typed key (the estimator splits it per point)."""
    return (jax.ShapeDtypeStruct((B, N, D), jnp.float32), jax.ShapeDtypeStruct((B, Dc), jnp.float32),
            jax.ShapeDtypeStruct((B, 1), jnp.float32), jax.ShapeDtypeStruct((B, N), jnp.bool_),
            jax.eval_shape(jax.random.key, 0))


@functools.lru_cache(maxsize=256)
def compiled_memory(strategy: str, B: int, N: int, Dc: int, D: int = DIM,
                    num_probes: int = NUM_PROBES) -> CompiledMemory | None:
    """Compile ``per_point.batch_traces`` for these settings (once: the result is cached)
    and return its memory analysis, or None on a backend that reports none."""
    lowered = per_point.batch_traces.lower(*input_structs(B, N, D, Dc), num_probes=num_probes,
                                                       strategy=strategy)
    stats = lowered.compile().memory_analysis()
    if stats is None:
        return None
    return CompiledMemory(stats.argument_size_in_bytes, stats.output_size_in_bytes, stats.temp_size_in_bytes)


def settings_key(B: int, N: int, Dc: int) -> str:
    return f"{B},{N},{Dc}"


class MemoryExplorer(anywidget.AnyWidget):
    """Sliders for B, N and Dc; per strategy, logical bytes beside compiled memory.
    ``MemoryExplorer(B=4, N=64, Dc=16)``."""

    _esm = assets.module("shapes.js", "memory_explorer.js")
    _css = assets.stylesheet()

    B = traitlets.Int(4).tag(sync=True)  # each one of CHOICES (validated below)
    N = traitlets.Int(64).tag(sync=True)
    Dc = traitlets.Int(16).tag(sync=True)
    D = traitlets.Int(DIM, read_only=True).tag(sync=True)
    num_probes = traitlets.Int(NUM_PROBES, read_only=True).tag(sync=True)
    choices = traitlets.Dict(CHOICES, read_only=True).tag(sync=True)
    backend = traitlets.Unicode(read_only=True).tag(sync=True)
    # {"B,N,Dc": {strategy: {"arguments": bytes, "output": bytes, "temporaries": bytes} or None}}
    compiled = traitlets.Dict(read_only=True).tag(sync=True)

    @traitlets.default("backend")
    def _backend(self) -> str:
        return jax.default_backend()

    @traitlets.validate("B", "N", "Dc")
    def _one_of_the_choices(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        if value not in CHOICES[name]:
            raise traitlets.TraitError(f"{name} must be one of {CHOICES[name]}, found {value}")
        return value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.measure()

    @traitlets.observe("B", "N", "Dc")
    def _settings_changed(self, change) -> None:
        self.measure()

    def measure(self) -> dict:
        """The compiled figures for the current settings (compiled on first use, then cached)."""
        figures = {}
        for strategy in per_point.STRATEGIES:
            memory = compiled_memory(strategy, self.B, self.N, self.Dc, self.D, self.num_probes)
            figures[strategy] = None if memory is None else memory._asdict()
        key = settings_key(self.B, self.N, self.Dc)
        if self.compiled.get(key) != figures:
            self.set_trait("compiled", {**self.compiled, key: figures})
        return figures

    def __repr__(self) -> str:
        return f"MemoryExplorer(B={self.B}, N={self.N}, Dc={self.Dc}, D={self.D}, num_probes={self.num_probes})"
