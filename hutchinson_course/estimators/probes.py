"""Probe vectors for Hutchinson's estimator: random eps with E[eps eps^T] = I."""

from __future__ import annotations

import jax
import jax.numpy as jnp

PROBE_KINDS = ("rademacher", "gaussian")


def sample_probes(key: jax.Array, num_probes: int, dim: int, probe_kind: str = "rademacher",
                  dtype=jnp.float32) -> jax.Array:
    """Draw ``num_probes`` probe vectors of length ``dim``.

    Returns probes: (num_probes, dim). Rademacher entries are +1 or -1 with equal
    probability; Gaussian entries are standard normal. Both have E[eps eps^T] = I.
    ``num_probes``, ``dim`` and ``probe_kind`` decide the shape and the program, so
    under ``jax.jit`` they must be static.
    """
    if probe_kind == "rademacher":
        return jax.random.rademacher(key, (num_probes, dim), dtype=dtype)
    if probe_kind == "gaussian":
        return jax.random.normal(key, (num_probes, dim), dtype=dtype)
    raise ValueError(f"probe_kind must be one of {PROBE_KINDS}, found {probe_kind!r}")
