"""The jit chapter's layer: the matrix-vector product of an explicit matrix, jitted."""

from __future__ import annotations

import functools

import jax

from .core import hutchinson, sample_probes


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind"))
def hutchinson_trace(A: jax.Array, key: jax.Array, num_probes: int,
                     probe_kind: str = "rademacher") -> jax.Array:
    """Estimate tr(A) as the mean of eps^T A eps over ``num_probes`` random probes.

    A: (D, D); key: a typed key from ``jax.random.key``; returns a scalar.
    ``num_probes`` and ``probe_kind`` are static: each new value compiles a new program.
    """
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix (D, D), found shape {A.shape}")
    probes = sample_probes(key, num_probes, A.shape[0], probe_kind, A.dtype)  # (P, D)
    return hutchinson(lambda v: A @ v, probes)
