"""The vmap chapter's layer: Hutchinson's estimator for one point, mapped over N points and B batches.

``point_trace`` estimates the divergence at one point from the core (``core.hutchinson``) and a
``jacobian_matvec``: a function of (x_point, z_ctx, t_val) that returns v -> J v. Here it is the
explicit Jacobian of a linear field; the grad chapter passes the jvp of a neural field to the
same ``point_trace`` and the same mappings, and the tiling chapter a field whose context is
projected once per batch element.

The vector field here is linear in x, f(x, z, t) = M(z, t) x + b(z, t), so its Jacobian is the
explicit (D, D) matrix M(z, t) and the exact divergence is tr M(z, t). (The grad chapter
replaces it by a neural field whose Jacobian is only available through products.) M depends
on the context through a summary s: the context vector itself for a global context z_ctx: (Dc,),
the mean of the K vectors for a structured context z_ctx: (K, Dc). Its parameters are small,
fixed and drawn once per (D, Dc) from a fixed seed, like a trained network with frozen weights.

``point_trace`` is written for one point. Three strategies map it to (B, N). With the same
keys they draw the same probes and return the same traces up to float32 rounding (they are
different programs, which may sum in a different order):

- ``traces_tiled``: tile z and t to (B, N, ...) and map every argument over axis 0, twice;
- ``traces_in_axes_none``: map z and t over B only, with ``in_axes=None`` on the inner vmap;
- ``traces_flattened``: flatten B and N into one axis of B * N points and map once.

``strategy_shapes`` says, without running JAX, which shapes each strategy handles at each level.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .core import exact_trace, hutchinson, masked, masked_mean, point_keys, sample_probes
from .fields import context_summary

CONTEXT_KINDS = ("global", "structured")
STRATEGIES = ("tile", "in_axes_none", "flatten")
KEY_KINDS = ("typed", "legacy")
ARGUMENTS = ("x", "z", "t", "mask", "key")


class FieldParameters(NamedTuple):
    """M(z, t) = base + t * time + sum_c s_c context[c];  b(z, t) = bias + s @ bias_context."""

    base: np.ndarray  # (D, D)
    time: np.ndarray  # (D, D)
    context: np.ndarray  # (Dc, D, D)
    bias: np.ndarray  # (D,)
    bias_context: np.ndarray  # (Dc, D)


@functools.lru_cache(maxsize=None)
def field_parameters(dim: int, context_dim: int) -> FieldParameters:
    """The field's fixed parameters for points of dimension D = ``dim`` and contexts of Dc = ``context_dim``.

    The same numbers on every call (seed 0). The diagonal of ``base`` runs from 1 to 2 so that
    traces are not near zero; the off-diagonal entries make Rademacher probes inexact.
    """
    rng = np.random.default_rng(0)
    base = 0.5 * rng.normal(size=(dim, dim)) + np.diag(np.linspace(1.0, 2.0, dim))
    time = 0.5 * rng.normal(size=(dim, dim))
    context = rng.normal(size=(context_dim, dim, dim)) / np.sqrt(context_dim)
    bias = 0.1 * rng.normal(size=dim)
    bias_context = 0.1 * rng.normal(size=(context_dim, dim))
    return FieldParameters(*(a.astype(np.float32) for a in (base, time, context, bias, bias_context)))


def field_matrix(z_ctx: jax.Array, t_val: jax.Array, dim: int) -> jax.Array:
    """M(z, t): (D, D), the Jacobian of the field. z_ctx: (Dc,) or (K, Dc), t_val: (), dim: D."""
    summary = context_summary(z_ctx)
    params = field_parameters(dim, summary.shape[0])
    return params.base + t_val * params.time + jnp.einsum("c,cij->ij", summary, params.context)


def vector_field(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array) -> jax.Array:
    """f(x, z, t) = M(z, t) x + b(z, t) for one point.

    x_point: (D,), z_ctx: (Dc,) or (K, Dc), t_val: (). Returns (D,).
    """
    summary = context_summary(z_ctx)
    params = field_parameters(x_point.shape[0], summary.shape[0])
    return field_matrix(z_ctx, t_val, x_point.shape[0]) @ x_point + params.bias + summary @ params.bias_context


def check_point_shapes(x_point, z_ctx, t_val, mask_val, key) -> None:
    """Shapes are static under vmap and jit, so a per-point function can check them while tracing."""
    if jnp.ndim(x_point) != 1:
        raise ValueError(f"x_point must be one point (D,), found shape {jnp.shape(x_point)}: "
                         "map the per-point function over the points with jax.vmap")
    if jnp.ndim(z_ctx) not in (1, 2):
        raise ValueError(f"z_ctx must be one context (Dc,) or (K, Dc), found shape {jnp.shape(z_ctx)}")
    if jnp.ndim(t_val) != 0:
        raise ValueError(f"t_val must be a scalar (), found shape {jnp.shape(t_val)}. A time t of shape (B, 1) "
                         "mapped over B keeps its trailing axis of length 1; pass t[:, 0], of shape (B,)")
    if jnp.ndim(mask_val) != 0:
        raise ValueError(f"mask_val must be a scalar (), found shape {jnp.shape(mask_val)}")
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    one_typed_key = typed and key.shape == ()
    one_legacy_key = not typed and key.shape == (2,) and key.dtype == jnp.uint32
    if not (one_typed_key or one_legacy_key):
        raise ValueError(f"key must be one typed key (shape ()) or one legacy uint32 key (shape (2,)), "
                         f"found shape {key.shape} and dtype {key.dtype}: each point needs its own key")


def linear_matvec(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array):
    """v -> M(z, t) v: the Jacobian-vector product of the linear field at one point.

    x_point: (D,), z_ctx: (Dc,) or (K, Dc), t_val: (). The Jacobian of M x + b does not depend on
    x, so the matrix is formed once and every probe multiplies it.
    """
    M = field_matrix(z_ctx, t_val, x_point.shape[0])  # (D, D)
    return lambda v: M @ v


def point_trace(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array, mask_val: jax.Array, key: jax.Array, *,
                num_probes: int = 16, probe_kind: str = "rademacher", jacobian_matvec=linear_matvec) -> jax.Array:
    """Estimate the divergence tr J at one point: the mean of eps^T J eps over num_probes probes.

    x_point: (D,); z_ctx: (Dc,) or (K, Dc); t_val: (); mask_val: () with 0 (or False) marking a
    padding point; key: one typed key (shape ()), or one legacy uint32 key (shape (2,)).
    Returns (): the estimate, or exactly 0.0 where mask_val is 0.
    ``jacobian_matvec(x_point, z_ctx, t_val)`` returns v -> J v (default: the linear field's).
    The keywords are keyword-only: bind them with functools.partial before mapping, since vmap
    maps every keyword argument over axis 0.
    """
    check_point_shapes(x_point, z_ctx, t_val, mask_val, key)
    probes = sample_probes(key, num_probes, x_point.shape[0], probe_kind, x_point.dtype)  # (P, D)
    return masked(hutchinson(jacobian_matvec(x_point, z_ctx, t_val), probes), mask_val)


# The three strategies. Each takes a per-point function point_fn(x_point, z_ctx, t_val, *per_point)
# and the batched inputs x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), then the arrays
# mapped point by point like x_t, (B, N, ...) each: the mask and the keys (B, N) for the estimator,
# the mask alone for the exact trace. Each returns traces: (B, N).

def traces_tiled(point_fn, x_t, z, t, *point_args) -> jax.Array:
    """Tile z and t to (B, N, ...), then map every argument over axis 0: over B, then over N.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), point_args: (B, N, ...) each -> (B, N).
    """
    num_points = x_t.shape[1]
    z_tiled = jnp.repeat(z[:, None], num_points, axis=1)  # (B, N, Dc) or (B, N, K, Dc)
    t_tiled = jnp.repeat(t, num_points, axis=1)  # (B, 1) -> (B, N)
    over_points = jax.vmap(point_fn, in_axes=0)
    over_batches = jax.vmap(over_points, in_axes=0)
    return over_batches(x_t, z_tiled, t_tiled, *point_args)


def traces_in_axes_none(point_fn, x_t, z, t, *point_args) -> jax.Array:
    """Map z and t over B only: in_axes=None on the inner vmap shares them among the N points.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), point_args: (B, N, ...) each -> (B, N).
    """
    over_points = jax.vmap(point_fn, in_axes=(0, None, None) + (0,) * len(point_args))
    over_batches = jax.vmap(over_points, in_axes=0)
    return over_batches(x_t, z, t[:, 0], *point_args)  # t[:, 0]: (B,), so each point sees a scalar


def traces_flattened(point_fn, x_t, z, t, *point_args) -> jax.Array:
    """Flatten B and N into one axis of B * N points, map once, and reshape the traces to (B, N).

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), point_args: (B, N, ...) each -> (B, N).
    """
    batch_size, num_points = x_t.shape[:2]

    def flatten(a):  # (B, N, ...) -> (B * N, ...): row b * N + n is point n of batch b
        return a.reshape((batch_size * num_points,) + a.shape[2:])

    z_flat = jnp.repeat(z, num_points, axis=0)  # row b * N + n holds z[b], as flatten(x_t) needs
    t_flat = jnp.repeat(t[:, 0], num_points)  # (B * N,)
    traces = jax.vmap(point_fn)(flatten(x_t), z_flat, t_flat, *map(flatten, point_args))
    return traces.reshape((batch_size, num_points) + traces.shape[1:])


MAPPINGS = {"tile": traces_tiled, "in_axes_none": traces_in_axes_none, "flatten": traces_flattened}


def map_points(point_fn, x_t, z, t, *point_args, strategy: str = "in_axes_none") -> jax.Array:
    """Map ``point_fn`` to every point of every batch with one of the three strategies: (B, N)."""
    if strategy not in MAPPINGS:
        raise ValueError(f"strategy must be one of {STRATEGIES}, found {strategy!r}")
    return MAPPINGS[strategy](point_fn, x_t, z, t, *point_args)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind", "strategy"))
def batch_traces(x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                 num_probes: int = 16, probe_kind: str = "rademacher", strategy: str = "in_axes_none") -> jax.Array:
    """Hutchinson estimates of the divergence of the linear field for every point of every batch.

    x_t: (B, N, D); z: (B, Dc) or (B, K, Dc); t: (B, 1); mask: (B, N); key: one key, split into
    one key per point (``core.point_keys``). Returns traces: (B, N), exactly 0.0 where mask is 0.
    ``num_probes``, ``probe_kind`` and ``strategy`` are static.
    """
    point_fn = functools.partial(point_trace, num_probes=num_probes, probe_kind=probe_kind)
    return map_points(point_fn, x_t, z, t, mask, point_keys(key, mask.shape), strategy=strategy)


def exact_point_trace(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array, mask_val: jax.Array, *,
                      jacobian_matvec=linear_matvec) -> jax.Array:
    """tr J at one point, from D products with the basis vectors (``core.exact_trace``); 0.0 where
    mask_val is 0. Shapes as in ``point_trace``."""
    matvec = jacobian_matvec(x_point, z_ctx, t_val)
    return masked(exact_trace(matvec, x_point.shape[0], x_point.dtype), mask_val)


@jax.jit
def exact_traces(x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """The exact divergence tr M(z_b, t_b) at every point: (B, N), 0.0 where mask is 0. Shapes as in
    ``batch_traces``."""
    return map_points(exact_point_trace, x_t, z, t, mask)


def batch_means(traces: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of each batch element's traces over its real points: (B,). traces, mask: (B, N).

    Padding counts neither in the sum nor in the number of points; all padding gives 0
    (``core.masked_mean``).
    """
    return masked_mean(traces, mask, axis=1)


def strategy_shapes(*, B: int, N: int, D: int, Dc: int, K: int | None = None, context_kind: str = "global",
                    strategy: str = "in_axes_none", key_kind: str = "typed") -> tuple[dict, ...]:
    """The shapes each level of a strategy handles, as plain data (no JAX is run).

    Returns five levels, each ``{"level": name, "shapes": {argument: shape tuple}}``, with the
    arguments x, z, t, mask, key (the last level has only "traces"):
    the inputs; what enters the outer vmap (the only vmap for "flatten"); what the function
    mapped by the outer vmap receives; what the per-point function receives (for "flatten",
    the vmap's output (B * N,) instead, before the reshape); and the output (B, N).
    """
    if context_kind not in CONTEXT_KINDS:
        raise ValueError(f"context_kind must be one of {CONTEXT_KINDS}, found {context_kind!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, found {strategy!r}")
    if key_kind not in KEY_KINDS:
        raise ValueError(f"key_kind must be one of {KEY_KINDS}, found {key_kind!r}")
    if context_kind == "structured" and K is None:
        raise ValueError("a structured context (B, K, Dc) needs K")
    context = (Dc,) if context_kind == "global" else (K, Dc)
    key = () if key_kind == "typed" else (2,)
    inputs = {"x": (B, N, D), "z": (B, *context), "t": (B, 1), "mask": (B, N), "key": (B, N, *key)}
    point = {"x": (D,), "z": context, "t": (), "mask": (), "key": key}

    def level(name, shapes):
        return {"level": name, "shapes": shapes}

    if strategy == "flatten":
        flat = {"x": (B * N, D), "z": (B * N, *context), "t": (B * N,), "mask": (B * N,), "key": (B * N, *key)}
        return (level("inputs", inputs), level("before the vmap", flat), level("inside the vmap", point),
                level("output of the vmap", {"traces": (B * N,)}), level("output", {"traces": (B, N)}))
    if strategy == "tile":
        entering = {**inputs, "z": (B, N, *context), "t": (B, N)}
        per_batch = {"x": (N, D), "z": (N, *context), "t": (N,), "mask": (N,), "key": (N, *key)}
    else:
        entering = {**inputs, "t": (B,)}
        per_batch = {"x": (N, D), "z": context, "t": (), "mask": (N,), "key": (N, *key)}
    return (level("inputs", inputs), level("before the outer vmap", entering),
            level("inside the outer vmap", per_batch), level("inside the inner vmap", point),
            level("output", {"traces": (B, N)}))
