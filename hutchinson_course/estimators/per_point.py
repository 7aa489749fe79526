"""The vmap chapter's milestone: a per-point Hutchinson estimator, mapped over N points and B batches.

The vector field is linear in x, f(x, z, t) = M(z, t) x + b(z, t), so its Jacobian is the
explicit (D, D) matrix M(z, t) and the exact divergence is tr M(z, t). (The grad chapter
replaces it by a neural field whose Jacobian is only available through products.) M depends
on the context through a summary s: the context vector itself for a global context z_ctx: (Dc,),
the mean of the K vectors for a structured context z_ctx: (K, Dc). Its parameters are small,
fixed and drawn once per (D, Dc) from a fixed seed, like a trained network with frozen weights.

``hutchinson_trace`` is written for one point. Three strategies map it to (B, N). With the same
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

from .probes import sample_probes

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


def context_summary(z_ctx: jax.Array) -> jax.Array:
    """s: (Dc,). A global context z_ctx: (Dc,) is its own summary; a structured one, (K, Dc), is mean-pooled."""
    if z_ctx.ndim == 1:
        return z_ctx
    if z_ctx.ndim == 2:
        return z_ctx.mean(axis=0)
    raise ValueError(f"z_ctx must be one context (Dc,) or (K, Dc), found shape {z_ctx.shape}")


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


def quadratic_form(M: jax.Array, eps: jax.Array) -> jax.Array:
    """eps^T M eps for one probe. M: (D, D), eps: (D,). Returns ()."""
    return eps @ M @ eps


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


def hutchinson_trace(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array, mask_val: jax.Array,
                     key: jax.Array, *, num_probes: int = 16, probe_kind: str = "rademacher") -> jax.Array:
    """Estimate the divergence tr M(z, t) at one point: the mean of eps^T M eps over num_probes probes.

    x_point: (D,); z_ctx: (Dc,) or (K, Dc); t_val: (); mask_val: () with 0 (or False) marking a
    padding point; key: one typed key (shape ()), or one legacy uint32 key (shape (2,)).
    Returns (): the estimate, or exactly 0.0 where mask_val is 0, so that padding adds nothing to
    a sum of traces. (Under vmap a masked point is still computed: the mask selects the result.)
    num_probes and probe_kind are keyword-only: bind them with functools.partial before mapping,
    since vmap maps every keyword argument over axis 0.
    """
    check_point_shapes(x_point, z_ctx, t_val, mask_val, key)
    M = field_matrix(z_ctx, t_val, x_point.shape[0])  # (D, D); for this field it does not depend on x
    probes = sample_probes(key, num_probes, x_point.shape[0], probe_kind, M.dtype)  # (P, D)
    samples = jax.vmap(quadratic_form, in_axes=(None, 0))(M, probes)  # (P,): the same M for every probe
    return jnp.where(mask_val != 0, samples.mean(), 0.0)


# The three strategies. Each takes the per-point function and the batched inputs
#   x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N),
#   keys: (B, N) typed keys (or (B, N, 2) legacy uint32 keys),
# and returns traces: (B, N).

def traces_tiled(per_point_fn, x_t, z, t, mask, keys) -> jax.Array:
    """Tile z and t to (B, N, ...), then map every argument over axis 0: over B, then over N.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), keys: (B, N) -> (B, N).
    """
    num_points = x_t.shape[1]
    z_tiled = jnp.repeat(z[:, None], num_points, axis=1)  # (B, N, Dc) or (B, N, K, Dc)
    t_tiled = jnp.repeat(t, num_points, axis=1)  # (B, 1) -> (B, N)
    over_points = jax.vmap(per_point_fn, in_axes=(0, 0, 0, 0, 0))
    over_batches = jax.vmap(over_points, in_axes=(0, 0, 0, 0, 0))
    return over_batches(x_t, z_tiled, t_tiled, mask, keys)


def traces_in_axes_none(per_point_fn, x_t, z, t, mask, keys) -> jax.Array:
    """Map z and t over B only: in_axes=None on the inner vmap shares them among the N points.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), keys: (B, N) -> (B, N).
    """
    over_points = jax.vmap(per_point_fn, in_axes=(0, None, None, 0, 0))
    over_batches = jax.vmap(over_points, in_axes=(0, 0, 0, 0, 0))
    return over_batches(x_t, z, t[:, 0], mask, keys)  # t[:, 0]: (B,), so each point sees a scalar


def traces_flattened(per_point_fn, x_t, z, t, mask, keys) -> jax.Array:
    """Flatten B and N into one axis of B * N points, map once, and reshape the traces to (B, N).

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), keys: (B, N) -> (B, N).
    """
    batch_size, num_points = x_t.shape[:2]

    def flatten(a):  # (B, N, ...) -> (B * N, ...): row b * N + n is point n of batch b
        return a.reshape((batch_size * num_points,) + a.shape[2:])

    z_flat = jnp.repeat(z, num_points, axis=0)  # row b * N + n holds z[b], as flatten(x_t) needs
    t_flat = jnp.repeat(t[:, 0], num_points)  # (B * N,)
    traces = jax.vmap(per_point_fn)(flatten(x_t), z_flat, t_flat, flatten(mask), flatten(keys))
    return traces.reshape((batch_size, num_points) + traces.shape[1:])


MAPPINGS = {"tile": traces_tiled, "in_axes_none": traces_in_axes_none, "flatten": traces_flattened}


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind", "strategy"))
def batched_hutchinson_trace(x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                             num_probes: int = 16, probe_kind: str = "rademacher",
                             strategy: str = "in_axes_none") -> jax.Array:
    """Hutchinson estimates of the divergence for every point of every batch.

    x_t: (B, N, D); z: (B, Dc) or (B, K, Dc); t: (B, 1); mask: (B, N); key: one key, split into
    one key per point with jax.random.split(key, (B, N)). Returns traces: (B, N), exactly 0.0
    where mask is 0. ``num_probes``, ``probe_kind`` and ``strategy`` are static.
    """
    if strategy not in MAPPINGS:
        raise ValueError(f"strategy must be one of {STRATEGIES}, found {strategy!r}")
    keys = jax.random.split(key, x_t.shape[:2])  # (B, N) typed keys, or (B, N, 2) from a legacy key
    per_point_fn = functools.partial(hutchinson_trace, num_probes=num_probes, probe_kind=probe_kind)
    return MAPPINGS[strategy](per_point_fn, x_t, z, t, mask, keys)


def field_matrices(z: jax.Array, t: jax.Array, dim: int) -> jax.Array:
    """M(z_b, t_b) for each batch: (B, D, D). z: (B, Dc) or (B, K, Dc), t: (B, 1), dim: D."""
    return jax.vmap(lambda z_b, t_b: field_matrix(z_b, t_b, dim))(z, t[:, 0])


def exact_traces(x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """The exact divergence tr M(z_b, t_b) at every point: (B, N), 0.0 where mask is 0. Shapes as in
    ``batched_hutchinson_trace``."""
    per_batch = jnp.trace(field_matrices(z, t, x_t.shape[-1]), axis1=1, axis2=2)  # (B,)
    return jnp.where(mask != 0, per_batch[:, None], 0.0)


def mean_divergence(traces: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of each batch's traces over its real points: (B,). traces, mask: (B, N).

    Padding points (mask 0) count neither in the sum nor in the number of points; a batch
    without real points has mean divergence 0.
    """
    real = mask != 0
    total = jnp.sum(jnp.where(real, traces, 0.0), axis=1)
    return total / jnp.maximum(jnp.sum(real, axis=1), 1)


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
