"""The final milestone: every layer in one call.

    traces = final.batch_traces(params, x_t, z, t, mask, key=None, num_probes=16,
                                chunk_size=128, checkpoint=True, mesh=sharded.batch_mesh())

- the neural field of the grad chapter (``fields.vector_field``), differentiable in ``params``;
- one Jacobian-vector product per probe, reduced by the core (``core.hutchinson``);
- the vmap chapter's per-point estimator and mask, with structured or global contexts;
- keys from brainstate's random state when ``key`` is None (stateful vmap), or from ``key``;
- the tiling chapter's context projection once per batch element, ``lax.map`` chunks and
  ``jax.checkpoint`` (``memory_aware.traces_from_keys``);
- the pmap chapter's sharding: the batch padded to a multiple of the devices, one block per
  device with ``jax.shard_map``, and the padding dropped again.

The per-point keys are split for the whole (B, N) grid before anything divides it, so the traces
are the same with or without the mesh, with or without chunks, up to float32 rounding.
"""

from __future__ import annotations

import functools

import brainstate
import jax
from jax.sharding import Mesh

from . import memory_aware, sharded
from .core import masked_mean, point_keys


@functools.partial(jax.jit, static_argnames=("mesh", "num_probes", "probe_kind", "chunk_size", "checkpoint"))
def _traces_from_keys(params, x_t, z, t, mask, keys, *, mesh, num_probes, probe_kind, chunk_size, checkpoint):
    block = functools.partial(memory_aware.traces_from_keys, num_probes=num_probes, probe_kind=probe_kind,
                              chunk_size=chunk_size, checkpoint=checkpoint)
    if mesh is None:
        return block(params, x_t, z, t, mask, keys)
    return sharded.shard_over_batch(block, mesh, num_replicated=1)(params, x_t, z, t, mask, keys)


def batch_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array | None = None,
                 *, num_probes: int = 16, probe_kind: str = "rademacher", chunk_size: int | None = None,
                 checkpoint: bool = False, mesh: Mesh | None = None) -> jax.Array:
    """Hutchinson estimates of tr(df/dx) for every point of every batch, with every layer of the course.

    params: the field's parameters (``fields.init_field_params``); x_t: (B, N, D); z: (B, Dc) or
    (B, K, Dc); t: (B, 1); mask: (B, N), 0 marking padding; key: one typed key, or None to take one
    from brainstate's random state (``brainstate.random.seed`` makes it reproducible, and each call
    draws new probes). ``mesh``: a one-axis mesh named "devices" (``sharded.batch_mesh``) to split
    the batch across its devices, any B allowed; None computes on one device. ``chunk_size`` and
    ``checkpoint`` as in ``memory_aware.batch_traces``. Returns traces: (B, N), 0.0 where mask is 0.
    """
    if key is None:
        key = brainstate.random.split_key()
    keys = point_keys(key, mask.shape)  # before padding and sharding: every point keeps its key
    options = dict(mesh=mesh, num_probes=num_probes, probe_kind=probe_kind, chunk_size=chunk_size,
                   checkpoint=checkpoint)
    if mesh is None:
        return _traces_from_keys(params, x_t, z, t, mask, keys, **options)
    (x_t, z, t, keys), padded_mask, batch_size = sharded.pad_batch((x_t, z, t, keys), mask, mesh.size)
    traces = _traces_from_keys(params, *sharded.shard_batch((x_t, z, t, padded_mask, keys), mesh), **options)
    return sharded.unpad(traces, batch_size, mesh)


def divergence_loss(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array,
                    key: jax.Array | None = None, **options) -> jax.Array:
    """The estimated divergence averaged over the real points: (). ``options`` as in ``batch_traces``.

    Differentiable in ``params``: its gradient is an unbiased estimate of the exact divergence's.
    """
    return masked_mean(batch_traces(params, x_t, z, t, mask, key, **options), mask)
