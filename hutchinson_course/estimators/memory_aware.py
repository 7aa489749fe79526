"""The tiling chapter's layer: the same estimator, memory-aware.

The grad chapter's field applies its first layer to the concatenation [x, z, t]. Split into its
x, z and t parts, with the same weights, the first layer reads

    [x, z, t] @ w0 + b0  =  x @ W_x  +  (z @ W_z + t w_t + b0),

and the bracket, the *context projection* (H0,), depends on the batch element only. The
estimator here computes it once per batch element instead of once per point and hands it to the
grad chapter's ``per_point.point_trace`` in place of the context, shared by the N points
(``in_axes=None``), and, when asked, evaluates the points in chunks
(``jax.lax.map`` with ``batch_size``) so that B * N points need not fit in memory at once, with
``jax.checkpoint`` recomputing each chunk in the backward pass instead of storing it.

The chapter compares it with the three strategies of the vmap chapter (tile, ``in_axes=None``,
flatten) applied to either field: ``strategy_traces``. With the same key all of them draw the
same probes and agree up to float32 rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import per_point
from .core import point_keys
from .fields import context_summary
from .fields import vector_field as concatenated_field
from .matrix_free import jvp_matvec

FIELDS = ("concatenated", "split")


def first_layer_parts(params: dict[str, jax.Array], context_dim: int):
    """The rows of w0: (D + Dc + 1, H0) that multiply x, z and t: W_x (D, H0), W_z (Dc, H0), w_t (H0,)."""
    w0 = params["w0"]
    dim = w0.shape[0] - context_dim - 1
    return w0[:dim], w0[dim:dim + context_dim], w0[dim + context_dim]


def context_projection(params: dict[str, jax.Array], z_ctx: jax.Array, t_val: jax.Array) -> jax.Array:
    """z @ W_z + t w_t + b0: the part of the first layer that depends only on the batch element.

    z_ctx: (Dc,) or (K, Dc) (mean-pooled, as the field does), t_val: () or (1,). Returns (H0,).
    """
    summary = context_summary(z_ctx)
    _, w_z, w_t = first_layer_parts(params, summary.shape[0])
    return summary @ w_z + jnp.reshape(t_val, ()) * w_t + params["b0"]


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
    layers. x: (D,), z: (Dc,) or (K, Dc), t: () or (1,). Returns (D,), equal to ``concatenated_field`` up to
    float32 rounding (the first layer adds its terms in another order)."""
    return field_from_projection(params, x, context_projection(params, z, t))


FIELD_FUNCTIONS = {"concatenated": concatenated_field, "split": split_field}


def projected_matvec(params: dict[str, jax.Array]):
    """The ``jacobian_matvec`` of the split field when the point's context is its projection (H0,):
    (x_point, projection, t_val) -> (v -> J v). t_val is already inside the projection."""
    return jvp_matvec(lambda x, projection, t_val: field_from_projection(params, x, projection))


@functools.partial(jax.jit, static_argnames=("field", "strategy", "num_probes", "probe_kind"))
def strategy_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                    field: str, strategy: str, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Traces (B, N) with one of the vmap chapter's strategies ("tile", "in_axes_none", "flatten")
    applied to one of the two fields ("concatenated", "split").

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), key: one key, split into one
    key per point. ``strategy="tile"`` with ``field="concatenated"`` is the design the chapter starts from.
    """
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, found {field!r}")
    field_fn = functools.partial(FIELD_FUNCTIONS[field], params)
    point_fn = functools.partial(per_point.point_trace, num_probes=num_probes, probe_kind=probe_kind,
                                 jacobian_matvec=jvp_matvec(field_fn))
    return per_point.map_points(point_fn, x_t, z, t, mask, point_keys(key, mask.shape), strategy=strategy)


def traces_from_keys(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, keys: jax.Array, *,
                     num_probes: int, probe_kind: str = "rademacher", chunk_size: int | None = None,
                     checkpoint: bool = False) -> jax.Array:
    """``batch_traces`` given the per-point keys (B, N) instead of one key: the block a device runs
    when the grid is sharded, its keys split for the whole grid beforehand. Returns (B, N)."""
    jacobian_matvec = projected_matvec(params)

    def batch_element(x_points, z_ctx, t_val, mask_points, element_keys):  # (N, D), (Dc,), (), (N,), (N,)
        projection = context_projection(params, z_ctx, t_val)  # (H0,): once per batch element

        def one_point(point):  # point: (x_point (D,), mask_val (), key ())
            x_point, mask_val, point_key = point
            return per_point.point_trace(x_point, projection, t_val, mask_val, point_key, num_probes=num_probes,
                                         probe_kind=probe_kind, jacobian_matvec=jacobian_matvec)

        if checkpoint:  # under vmap (and inside lax.map's steps) this covers every point mapped at once
            one_point = jax.checkpoint(one_point)
        points = (x_points, mask_points, element_keys)
        if chunk_size is None:
            return jax.vmap(one_point)(points)
        return jax.lax.map(one_point, points, batch_size=chunk_size)  # vmap over each chunk, a loop over chunks

    return jax.vmap(batch_element)(x_t, z, t[:, 0], mask, keys)


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind", "chunk_size", "checkpoint"))
def batch_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                 num_probes: int, probe_kind: str = "rademacher", chunk_size: int | None = None,
                 checkpoint: bool = False) -> jax.Array:
    """Hutchinson estimates of the divergence of the split field for every point of every batch.

    x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N), key: one key, split into one
    key per point exactly as ``strategy_traces`` does, so both draw the same probes. Returns (B, N).

    The context projection is computed once per batch element and shared by its N points
    (``in_axes=None``). With ``chunk_size`` the points of each batch element are evaluated
    ``chunk_size`` at a time (``jax.lax.map``): each step holds B * chunk_size points.
    ``checkpoint=True`` makes the backward pass recompute each chunk's forward pass instead of
    storing it (it changes memory only when the estimate is differentiated). All four keywords
    are static.
    """
    return traces_from_keys(params, x_t, z, t, mask, point_keys(key, mask.shape), num_probes=num_probes,
                            probe_kind=probe_kind, chunk_size=chunk_size, checkpoint=checkpoint)


@jax.jit
def exact_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact tr(df/dx) at every point (D jvps), the context projection once per batch element.
    Shapes as in ``batch_traces``; returns (B, N)."""
    point_fn = functools.partial(per_point.exact_point_trace, jacobian_matvec=projected_matvec(params))

    def batch_element(x_points, z_ctx, t_val, mask_points):
        projection = context_projection(params, z_ctx, t_val)
        return jax.vmap(point_fn, in_axes=(0, None, None, 0))(x_points, projection, t_val, mask_points)

    return jax.vmap(batch_element)(x_t, z, t[:, 0], mask)
