"""The tiling chapter's milestone: a memory-aware Hutchinson estimator for a neural vector field.

The grad chapter's field applies its first layer to the concatenation [x, z, t]. Split into its
x, z and t parts, with the same weights, the first layer reads

    [x, z, t] @ w0 + b0  =  x @ W_x  +  (z @ W_z + t w_t + b0),

and the bracket, the *context projection* (H0,), depends on the batch element only. The
estimator here computes it once per batch element instead of once per point, passes it to the
N points unbatched (``in_axes=None``), and, when asked, evaluates the points in chunks
(``jax.lax.map`` with ``batch_size``) so that B * N points need not fit in memory at once, with
``jax.checkpoint`` recomputing each chunk in the backward pass instead of storing it.

The chapter compares it with the three strategies of the vmap chapter (tile, ``in_axes=None``,
flatten) applied to either field: ``strategy_traces``. With the same key all of them draw the
same probes and agree up to float32 rounding.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from .fields import vector_field as concatenated_field
from .per_point import MAPPINGS, STRATEGIES
from .probes import sample_probes

FIELDS = ("concatenated", "split")


def first_layer_parts(params: dict[str, jax.Array], context_dim: int):
    """The rows of w0: (D + Dc + 1, H0) that multiply x, z and t: W_x (D, H0), W_z (Dc, H0), w_t (H0,)."""
    w0 = params["w0"]
    dim = w0.shape[0] - context_dim - 1
    return w0[:dim], w0[dim:dim + context_dim], w0[dim + context_dim]


def context_projection(params: dict[str, jax.Array], z_ctx: jax.Array, t_val: jax.Array) -> jax.Array:
    """z @ W_z + t w_t + b0: the part of the first layer that depends only on the batch element.

    z_ctx: (Dc,), t_val: () or (1,). Returns (H0,).
    """
    _, w_z, w_t = first_layer_parts(params, z_ctx.shape[0])
    return z_ctx @ w_z + jnp.reshape(t_val, ()) * w_t + params["b0"]


def field_from_projection(params: dict[str, jax.Array], x_point: jax.Array, projection: jax.Array) -> jax.Array:
    """f(x, z, t) for one point, given its batch element's context projection. x_point: (D,),
    projection: (H0,). Returns (D,)."""
    w_x = params["w0"][:x_point.shape[0]]
    hidden = x_point @ w_x + projection
    num_layers = len(params) // 2
    for layer in range(1, num_layers):
        hidden = jnp.tanh(hidden) @ params[f"w{layer}"] + params[f"b{layer}"]
    return hidden


def split_field(params: dict[str, jax.Array], x: jax.Array, z: jax.Array, t: jax.Array) -> jax.Array:
    """The concatenated field with its first layer split: W_x x + W_z z + w_t t + b0, then the same
    layers. x: (D,), z: (Dc,), t: () or (1,). Returns (D,), equal to ``concatenated_field`` up to
    float32 rounding (the first layer adds its terms in another order)."""
    return field_from_projection(params, x, context_projection(params, z, t))


FIELD_FUNCTIONS = {"concatenated": concatenated_field, "split": split_field}


def point_trace(field_at: Callable[[jax.Array], jax.Array], x_point: jax.Array, mask_val: jax.Array,
                key: jax.Array, *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Hutchinson's estimate of tr(d field_at / dx) at x_point: (D,), one jvp per probe.

    ``field_at`` maps (D,) to (D,); mask_val: () with 0 marking padding; key: one typed key.
    Returns (): the mean of eps^T J eps over ``num_probes`` probes, or 0 where mask_val is 0.
    """
    probes = sample_probes(key, num_probes, x_point.shape[0], probe_kind, x_point.dtype)  # (P, D)

    def quadratic_form(eps):  # x_point is shared by the probes: its forward pass runs once
        return eps @ jax.jvp(field_at, (x_point,), (eps,))[1]

    return jnp.where(mask_val != 0, jax.vmap(quadratic_form)(probes).mean(), 0.0)


@functools.partial(jax.jit, static_argnames=("field", "strategy", "num_probes", "probe_kind"))
def strategy_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                    field: str, strategy: str, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Traces (B, N) with one of the vmap chapter's strategies ("tile", "in_axes_none", "flatten")
    applied to one of the two fields ("concatenated", "split").

    x_t: (B, N, D), z: (B, Dc), t: (B, 1), mask: (B, N), key: one typed key, split into one key
    per point. ``strategy="tile"`` with ``field="concatenated"`` is the design the chapter starts from.
    """
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, found {field!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, found {strategy!r}")
    keys = jax.random.split(key, mask.shape)  # (B, N)
    field_fn = FIELD_FUNCTIONS[field]

    def per_point(x_point, z_ctx, t_val, mask_val, point_key):
        field_at = lambda x: field_fn(params, x, z_ctx, t_val)
        return point_trace(field_at, x_point, mask_val, point_key, num_probes=num_probes, probe_kind=probe_kind)

    return MAPPINGS[strategy](per_point, x_t, z, t, mask, keys)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind", "chunk_size", "checkpoint"))
def memory_aware_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                        num_probes: int, probe_kind: str = "rademacher", chunk_size: int | None = None,
                        checkpoint: bool = False) -> jax.Array:
    """Hutchinson estimates of the divergence of the split field for every point of every batch.

    x_t: (B, N, D), z: (B, Dc), t: (B, 1), mask: (B, N), key: one typed key, split into one key
    per point exactly as ``strategy_traces`` does, so both draw the same probes. Returns (B, N).

    The context projection is computed once per batch element and shared by its N points
    (``in_axes=None``). With ``chunk_size`` the points of each batch element are evaluated
    ``chunk_size`` at a time (``jax.lax.map``): each step holds B * chunk_size points.
    ``checkpoint=True`` makes the backward pass recompute each chunk's forward pass instead of
    storing it (it changes memory only when the estimate is differentiated). All four keywords
    are static.
    """
    keys = jax.random.split(key, mask.shape)  # (B, N), the same keys as strategy_traces

    def batch_traces(x_points, z_ctx, t_val, mask_points, point_keys):  # (N, D), (Dc,), (1,), (N,), (N,)
        projection = context_projection(params, z_ctx, t_val)  # (H0,): once per batch element

        def one_point(point):  # point: (x_point (D,), mask_val (), key ())
            x_point, mask_val, point_key = point
            field_at = lambda x: field_from_projection(params, x, projection)
            return point_trace(field_at, x_point, mask_val, point_key, num_probes=num_probes,
                               probe_kind=probe_kind)

        if checkpoint:  # under vmap (and inside lax.map's steps) this covers every point mapped at once
            one_point = jax.checkpoint(one_point)
        points = (x_points, mask_points, point_keys)
        if chunk_size is None:
            return jax.vmap(one_point)(points)
        return jax.lax.map(one_point, points, batch_size=chunk_size)  # vmap over each chunk, a loop over chunks

    return jax.vmap(batch_traces)(x_t, z, t, mask, keys)
