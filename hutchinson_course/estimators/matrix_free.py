"""The grad chapter's milestone: a matrix-free Hutchinson estimator for a neural vector field.

The Jacobian J = df/dx of ``fields.vector_field`` is never formed: each probe costs one
Jacobian-vector product (``jax.jvp``), and eps^T J eps is a dot product with it. The exact
trace, from the full Jacobian by ``jax.jacfwd``, is the reference. Everything is a pure
function of the field's parameters, so ``jax.grad`` differentiates the estimate with respect
to them, as training a continuous normalizing flow requires.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .fields import vector_field
from .probes import sample_probes


def quadratic_form_jvp(params, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array,
                       eps: jax.Array) -> jax.Array:
    """eps^T J eps by one forward-mode product J eps. x_point, eps: (D,), z_ctx: (Dc,), t_val: () or (1,)."""
    _, jacobian_times_eps = jax.jvp(lambda x: vector_field(params, x, z_ctx, t_val), (x_point,), (eps,))
    return eps @ jacobian_times_eps


def quadratic_form_vjp(params, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array,
                       eps: jax.Array) -> jax.Array:
    """eps^T J eps by one reverse-mode product eps^T J. Shapes as in ``quadratic_form_jvp``."""
    _, pullback = jax.vjp(lambda x: vector_field(params, x, z_ctx, t_val), x_point)
    (eps_times_jacobian,) = pullback(eps)  # the pullback returns one cotangent per input: a tuple
    return eps_times_jacobian @ eps


def field_jacobian(params, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array) -> jax.Array:
    """J = df/dx at one point, by forward mode (D Jacobian-vector products). Returns (D, D)."""
    return jax.jacfwd(vector_field, argnums=1)(params, x_point, z_ctx, t_val)


def exact_divergence(params, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array) -> jax.Array:
    """tr(J) at one point, from the full Jacobian. Returns ()."""
    return jnp.trace(field_jacobian(params, x_point, z_ctx, t_val))


def hutchinson_trace(params, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array, mask_val: jax.Array,
                     key: jax.Array, *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Estimate tr(J) at one point as the mean of eps^T J eps over ``num_probes`` probes.

    x_point: (D,), z_ctx: (Dc,), t_val: (), mask_val: () (0 marks padding), key: a typed key.
    Returns (): the estimate, or 0 where mask_val is 0.
    """
    probes = sample_probes(key, num_probes, x_point.shape[0], probe_kind, x_point.dtype)  # (P, D)
    samples = jax.vmap(quadratic_form_jvp, in_axes=(None, None, None, None, 0))(
        params, x_point, z_ctx, t_val, probes)  # (P,)
    return jnp.where(mask_val != 0, samples.mean(), 0.0)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind"))
def hutchinson_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array,
                      *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Hutchinson estimates of tr(J) for every point of every batch.

    x_t: (B, N, D), z: (B, Dc), t: (B, 1), mask: (B, N), key: one typed key, split into one
    key per point. Returns traces: (B, N), zero where mask is 0. ``num_probes`` and
    ``probe_kind`` are static: they decide the program.
    """
    keys = jax.random.split(key, mask.shape)  # (B, N)
    per_point = functools.partial(hutchinson_trace, num_probes=num_probes, probe_kind=probe_kind)
    over_points = jax.vmap(per_point, in_axes=(None, 0, None, None, 0, 0))  # z and t shared by N points
    over_batches = jax.vmap(over_points, in_axes=(None, 0, 0, 0, 0, 0))
    return over_batches(params, x_t, z, t[:, 0], mask, keys)  # t[:, 0]: (B,), so each point sees a scalar


@jax.jit
def exact_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact tr(J) for every point, by ``jax.jacfwd``. Shapes as in ``hutchinson_traces``; returns (B, N)."""
    over_points = jax.vmap(exact_divergence, in_axes=(None, 0, None, None))
    traces = jax.vmap(over_points, in_axes=(None, 0, 0, 0))(params, x_t, z, t[:, 0])
    return jnp.where(mask != 0, traces, 0.0)


def masked_mean(traces: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of traces: (B, N) over the points where mask: (B, N) is nonzero. Returns ()."""
    return jnp.sum(jnp.where(mask != 0, traces, 0.0)) / jnp.maximum(jnp.sum(mask != 0), 1)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind"))
def mean_divergence(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array,
                    *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """The estimated divergence averaged over the real points of a batch: a training loss term. Returns ()."""
    traces = hutchinson_traces(params, x_t, z, t, mask, key, num_probes=num_probes, probe_kind=probe_kind)
    return masked_mean(traces, mask)


@jax.jit
def exact_mean_divergence(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """The exact divergence averaged over the real points of a batch. Returns ()."""
    return masked_mean(exact_traces(params, x_t, z, t, mask), mask)


def gradient_z_scores(gradient_samples, exact_gradient):
    """|mean of sampled gradients - exact gradient| in standard errors of the mean, per entry.

    gradient_samples: a pytree whose leaves are (K, ...) (K stochastic gradients); exact_gradient: the
    same pytree with leaves (...). Entries that no probe moves have zero spread; they agree when they
    match to float32 rounding (the floor added to the standard error).
    """
    def z_scores(samples, exact):
        samples, exact = np.asarray(samples, np.float64), np.asarray(exact, np.float64)
        standard_error = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
        rounding = 1e-6 * (np.abs(exact) + np.abs(samples).mean(axis=0)) + 1e-12
        return np.abs(samples.mean(axis=0) - exact) / (standard_error + rounding)
    return jax.tree.map(z_scores, gradient_samples, exact_gradient)
