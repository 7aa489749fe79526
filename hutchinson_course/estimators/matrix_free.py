"""The grad chapter's layer: the Jacobian-vector product of a neural field, in the same estimator.

The vmap chapter's ``per_point.point_trace`` takes a ``jacobian_matvec``; here it is
``jvp_matvec(field)``: each probe costs one Jacobian-vector product (``jax.jvp``) and the
Jacobian J = df/dx is never formed. The mappings, the mask and the keys are the vmap chapter's.
The exact trace uses the same products with the D basis vectors (what ``jax.jacfwd`` computes).
Everything is a pure function of the field's parameters, so ``jax.grad`` differentiates the
estimate with respect to them, as training a continuous normalizing flow requires.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np

from . import per_point
from .core import masked_mean, point_keys
from .fields import vector_field

PointField = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # f(x (D,), z (Dc,) or (K, Dc), t ()) -> (D,)


def jvp_matvec(field: PointField):
    """The ``jacobian_matvec`` of ``field``: (x_point, z_ctx, t_val) -> (v -> J v), J = df/dx at x_point.

    ``jax.jvp`` evaluates the field and its derivative along v in one forward pass. Mapped over
    probes by vmap, the primal part does not depend on v, so it runs once for all of them.
    """
    def jacobian_matvec(x_point, z_ctx, t_val):
        field_at = lambda x: field(x, z_ctx, t_val)
        return lambda v: jax.jvp(field_at, (x_point,), (v,))[1]
    return jacobian_matvec


def vjp_matvec(field: PointField):
    """The reverse-mode counterpart: (x_point, z_ctx, t_val) -> (v -> v^T J), one ``jax.vjp`` per probe.

    For Hutchinson v^T J v = v^T (J v), so either product serves; the grad chapter compares their cost.
    """
    def jacobian_matvec(x_point, z_ctx, t_val):
        _, pullback = jax.vjp(lambda x: field(x, z_ctx, t_val), x_point)
        return lambda v: pullback(v)[0]  # the pullback returns one cotangent per input: a tuple
    return jacobian_matvec


def neural_field(params) -> PointField:
    """The neural field with its parameters bound: (x, z, t) -> f(x, z, t) of ``fields.vector_field``."""
    return functools.partial(vector_field, params)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind", "strategy"))
def batch_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                 num_probes: int, probe_kind: str = "rademacher", strategy: str = "in_axes_none") -> jax.Array:
    """Hutchinson estimates of tr(df/dx) for every point of every batch: the vmap chapter's estimator
    with the neural field's jvp.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), key: one key, split into one
    key per point. Returns traces: (B, N), zero where mask is 0. ``num_probes``, ``probe_kind``
    and ``strategy`` are static: they decide the program.
    """
    point_fn = functools.partial(per_point.point_trace, num_probes=num_probes, probe_kind=probe_kind,
                                 jacobian_matvec=jvp_matvec(neural_field(params)))
    return per_point.map_points(point_fn, x_t, z, t, mask, point_keys(key, mask.shape), strategy=strategy)


@jax.jit
def exact_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact tr(df/dx) for every point, from D jvps with the basis vectors. Shapes as in
    ``batch_traces``; returns (B, N)."""
    point_fn = functools.partial(per_point.exact_point_trace, jacobian_matvec=jvp_matvec(neural_field(params)))
    return per_point.map_points(point_fn, x_t, z, t, mask)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind"))
def divergence_loss(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array,
                    *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """The estimated divergence averaged over the real points of a batch: a loss term. Returns ()."""
    traces = batch_traces(params, x_t, z, t, mask, key, num_probes=num_probes, probe_kind=probe_kind)
    return masked_mean(traces, mask)


@jax.jit
def exact_divergence_loss(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
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
