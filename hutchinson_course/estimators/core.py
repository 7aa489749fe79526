"""Hutchinson's estimator from three small parts: a matrix-vector product, probes, a reduction.

    tr(A) = E[eps^T A eps]   when   E[eps eps^T] = I.

The estimator never needs A itself, only ``matvec(v) = A v``: an explicit matrix product in the
jit chapter, the Jacobian of a linear field in the vmap chapter, a Jacobian-vector product
(``jax.jvp``) of a neural field from the grad chapter on. Every chapter's module builds its
``matvec`` and its probes and hands them to ``hutchinson``; the mask, the mean over real points
and the per-point keys are made here and nowhere else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PROBE_KINDS = ("rademacher", "gaussian")


def sample_probes(key: jax.Array, num_probes: int, dim: int, probe_kind: str = "rademacher",
                  dtype=jnp.float32) -> jax.Array:
    """probes: (num_probes, dim), with E[eps eps^T] = I.

    Rademacher entries are +1 or -1 with equal probability; Gaussian entries are standard normal.
    ``num_probes``, ``dim`` and ``probe_kind`` decide the shape and the program, so under
    ``jax.jit`` they must be static.
    """
    if probe_kind == "rademacher":
        return jax.random.rademacher(key, (num_probes, dim), dtype=dtype)
    if probe_kind == "gaussian":
        return jax.random.normal(key, (num_probes, dim), dtype=dtype)
    raise ValueError(f"probe_kind must be one of {PROBE_KINDS}, found {probe_kind!r}")


def quadratic_forms(matvec, probes: jax.Array) -> jax.Array:
    """eps^T A eps for each probe: (P,). matvec: (D,) -> (D,), probes: (P, D).

    One ``jax.vmap`` over the probes: whatever ``matvec`` shares between probes (a matrix, the
    forward pass of a jvp) is computed once, not P times.
    """
    return jax.vmap(lambda eps: eps @ matvec(eps))(probes)


def hutchinson(matvec, probes: jax.Array) -> jax.Array:
    """Hutchinson's estimate of tr(A): the mean of eps^T A eps over the probes. Returns ()."""
    return quadratic_forms(matvec, probes).mean()


def exact_trace(matvec, dim: int, dtype=jnp.float32) -> jax.Array:
    """tr(A) = sum_i e_i^T A e_i: the same quadratic forms, with the D basis vectors as probes.

    D products instead of P; with a jvp as ``matvec`` this is what ``jax.jacfwd`` computes.
    Returns ().
    """
    return quadratic_forms(matvec, jnp.eye(dim, dtype=dtype)).sum()


def masked(value: jax.Array, mask_val: jax.Array) -> jax.Array:
    """``value`` where mask_val is nonzero, exactly 0.0 where it marks padding (0 or False).

    Under vmap a padding point is still computed; the mask selects its result, so padding adds
    nothing to a sum of traces.
    """
    return jnp.where(mask_val != 0, value, jnp.zeros_like(value))


def masked_sum_and_count(values: jax.Array, mask: jax.Array, axis=None) -> tuple[jax.Array, jax.Array]:
    """The sum of ``values`` over the real points (mask nonzero) and their number, along ``axis``.

    values, mask: (B, N). Sums and counts add across blocks (devices, processes), means do not:
    a collective sums both, then ``mean_of_real`` divides.
    """
    real = mask != 0
    return jnp.sum(jnp.where(real, values, 0.0), axis=axis), jnp.sum(real, axis=axis)


def mean_of_real(total: jax.Array, count: jax.Array) -> jax.Array:
    """total / count, and 0.0 where count is 0.

    The course's one policy for a batch that is all padding: its mean is 0, like its sum, so that
    it contributes nothing and never a NaN to a loss or a gradient.
    """
    return total / jnp.maximum(count, 1)


def masked_mean(values: jax.Array, mask: jax.Array, axis=None) -> jax.Array:
    """The mean of ``values`` over the real points, along ``axis`` (None: all of them).

    values, mask: (B, N). ``axis=1`` gives one mean per batch element, (B,); ``axis=None`` one
    scalar, (), the divergence term of a loss. All padding gives 0.0 (``mean_of_real``).
    """
    return mean_of_real(*masked_sum_and_count(values, mask, axis))


def point_keys(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """One key per point, split from one key: (B, N) typed keys, or (B, N, 2) from a legacy key.

    Split once for the whole grid, before any mapping, sharding or chunking divides it, so that
    every point draws the same probes however the work is divided.
    """
    return jax.random.split(key, shape)
