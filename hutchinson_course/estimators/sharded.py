"""The pmap chapter's layer: the (B, N) traces computed across devices, three ways.

Each device runs the vmap chapter's estimator (``per_point.point_trace`` mapped with
``per_point.traces_in_axes_none``) on its block of batch elements. The per-point keys are split
from one key for the whole (B, N) grid (``core.point_keys``) before the batch is divided, so every point gets the key it would get on one device and the traces equal
the single-device result exactly.

When B is not a multiple of the device count, the batch is padded with points whose mask is 0:
their traces are exactly 0, the padding is dropped from the result, and sums of traces and counts
of real points are unchanged. (The other choice, refusing such a B, is ``device_blocks``'s error.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .core import masked_sum_and_count, mean_of_real, point_keys
from .per_point import point_trace, traces_in_axes_none

DEVICE_AXIS = "devices"


def device_blocks(a: jax.Array, num_devices: int) -> jax.Array:
    """(B, ...) -> (num_devices, B // num_devices, ...): the leading axis pmap maps over devices."""
    if a.shape[0] % num_devices:
        raise ValueError(f"cannot split a batch of B={a.shape[0]} evenly across {num_devices} devices; "
                         f"pad it to a multiple of {num_devices} (see pad_batch) or choose another B")
    return a.reshape((num_devices, a.shape[0] // num_devices) + a.shape[1:])


def pad_batch(arrays: tuple[jax.Array, ...], mask: jax.Array, multiple: int):
    """Pad the batch axis of ``arrays`` and ``mask`` (B, N) up to a multiple of ``multiple``.

    Padded rows repeat batch element 0 (any valid values would do, typed keys included) and have
    mask 0, so their traces are exactly 0. Returns (padded arrays, padded mask, B).
    """
    batch_size = mask.shape[0]
    padding = -batch_size % multiple
    rows = jnp.concatenate([jnp.arange(batch_size), jnp.zeros(padding, dtype=int)])
    padded = tuple(a[rows] for a in arrays)
    padded_mask = jnp.concatenate([mask, jnp.zeros((padding,) + mask.shape[1:], mask.dtype)])
    return padded, padded_mask, batch_size


def local_traces(x_t, z, t, mask, keys, num_probes, probe_kind):
    """One device's block: x_t (b, N, D), z (b, Dc) or (b, K, Dc), t (b, 1), mask (b, N), keys (b, N) -> (b, N)."""
    point_fn = functools.partial(point_trace, num_probes=num_probes, probe_kind=probe_kind)
    return traces_in_axes_none(point_fn, x_t, z, t, mask, keys)


def local_traces_and_mean(x_t, z, t, mask, keys, num_probes, probe_kind):
    """A device's traces, and the mean divergence over the real points of *all* devices' blocks.

    Each device sums its own traces and counts its own real points; ``psum`` adds both across
    the devices. (A ``pmean`` of per-device means would weigh a block with padding like a full one.)
    """
    traces = local_traces(x_t, z, t, mask, keys, num_probes, probe_kind)
    total, count = jax.lax.psum(masked_sum_and_count(traces, mask), DEVICE_AXIS)
    return traces, mean_of_real(total, count)


@functools.partial(jax.pmap, axis_name=DEVICE_AXIS, static_broadcasted_argnums=(5, 6))
def pmapped_traces_and_mean(x_t, z, t, mask, keys, num_probes, probe_kind):
    """``local_traces_and_mean`` on every device: blocks (devices, b, ...) -> traces (devices, b, N), mean (devices,)."""
    return local_traces_and_mean(x_t, z, t, mask, keys, num_probes, probe_kind)


def pmap_traces(x_t, z, t, mask, key, *, num_probes: int = 16, probe_kind: str = "rademacher"):
    """The (B, N) traces and the mean divergence over all real points, with ``jax.pmap``.

    x_t (B, N, D), z (B, Dc) or (B, K, Dc), t (B, 1), mask (B, N), key: one typed key.
    Uses every local device; B need not be a multiple of their number (the batch is padded).
    Returns (traces (B, N), mean divergence ()).
    """
    num_devices = jax.local_device_count()
    keys = point_keys(key, mask.shape)  # (B, N): the keys one device would use
    (x_t, z, t, keys), mask, batch_size = pad_batch((x_t, z, t, keys), mask, num_devices)
    blocks = [device_blocks(a, num_devices) for a in (x_t, z, t, mask, keys)]
    traces, mean = pmapped_traces_and_mean(*blocks, num_probes, probe_kind)
    return traces.reshape(mask.shape)[:batch_size], mean[0]


def batch_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh named ``devices`` over the first ``num_devices`` devices (default: all)."""
    return jax.make_mesh((num_devices or jax.device_count(),), (DEVICE_AXIS,))


@functools.partial(jax.jit, static_argnames=("mesh", "num_probes", "probe_kind"))
def _shard_mapped(x_t, z, t, mask, keys, *, mesh, num_probes, probe_kind):
    body = functools.partial(local_traces_and_mean, num_probes=num_probes, probe_kind=probe_kind)
    mapped = jax.shard_map(body, mesh=mesh, in_specs=PartitionSpec(DEVICE_AXIS),
                           out_specs=(PartitionSpec(DEVICE_AXIS), PartitionSpec()))
    return mapped(x_t, z, t, mask, keys)


def shard_batch(arrays, mesh: Mesh):
    """Place each array's batch axis across the mesh: NamedSharding(mesh, P("devices"))."""
    sharding = NamedSharding(mesh, PartitionSpec(DEVICE_AXIS))
    return tuple(jax.device_put(a, sharding) for a in arrays)


def unpad(traces: jax.Array, batch_size: int, mesh: Mesh) -> jax.Array:
    """Drop the padding rows. With explicit shardings an uneven slice has no sharding JAX can
    choose for it, so the traces are first replicated (gathered onto every device)."""
    if traces.shape[0] == batch_size:
        return traces
    return jax.reshard(traces, NamedSharding(mesh, PartitionSpec()))[:batch_size]


def shard_map_traces(x_t, z, t, mask, key, *, mesh: Mesh, num_probes: int = 16, probe_kind: str = "rademacher"):
    """The same result as ``pmap_traces``, with ``jax.shard_map`` over ``mesh`` inside ``jax.jit``."""
    keys = point_keys(key, mask.shape)
    (x_t, z, t, keys), mask, batch_size = pad_batch((x_t, z, t, keys), mask, mesh.size)
    sharded = shard_batch((x_t, z, t, mask, keys), mesh)
    traces, mean = _shard_mapped(*sharded, mesh=mesh, num_probes=num_probes, probe_kind=probe_kind)
    return unpad(traces, batch_size, mesh), mean


@functools.partial(jax.jit, static_argnames=("num_probes", "probe_kind"))
def _global_traces_and_mean(x_t, z, t, mask, keys, *, num_probes, probe_kind):
    traces = local_traces(x_t, z, t, mask, keys, num_probes, probe_kind)
    return traces, mean_of_real(*masked_sum_and_count(traces, mask))


def jit_sharded_traces(x_t, z, t, mask, key, *, mesh: Mesh, num_probes: int = 16, probe_kind: str = "rademacher"):
    """The same result again, from the single-device program: the inputs carry shardings, and XLA
    partitions the computation (and inserts the cross-device sum the mean needs)."""
    keys = point_keys(key, mask.shape)
    (x_t, z, t, keys), mask, batch_size = pad_batch((x_t, z, t, keys), mask, mesh.size)
    traces, mean = _global_traces_and_mean(*shard_batch((x_t, z, t, mask, keys), mesh),
                                           num_probes=num_probes, probe_kind=probe_kind)
    return unpad(traces, batch_size, mesh), mean


def shard_over_batch(fn, mesh: Mesh, num_replicated: int = 0):
    """``jax.shard_map`` of ``fn`` over the batch axis of ``mesh``, for any block estimator.

    ``fn(*replicated, *batched)`` is called on each device with the first ``num_replicated``
    arguments whole (parameters, P()) and the rest cut into blocks of batch elements
    (P("devices")); its output, (b, N) per device, is the (B, N) traces sharded the same way.
    No collective is needed: every point is computed where its batch element lives (a gradient
    sums the replicated arguments' cotangents over the devices, once).
    """
    def specs(*args):
        return tuple(PartitionSpec() if i < num_replicated else PartitionSpec(DEVICE_AXIS) for i in range(len(args)))

    def block(*args):
        # The replicated arguments become device-varying once, at the start: so the gradient's sum
        # of their cotangents over the devices (the transpose of this cast) is one all-reduce at the
        # end, not one per step of a loop inside fn (lax.map's chunks). Inside a loop, 8 simulated
        # devices on a busy CPU could miss XLA's 40-second rendezvous and abort the process.
        replicated = jax.lax.pcast(args[:num_replicated], DEVICE_AXIS, to="varying")
        return fn(*replicated, *args[num_replicated:])

    def mapped(*args):
        return jax.shard_map(block, mesh=mesh, in_specs=specs(*args), out_specs=PartitionSpec(DEVICE_AXIS))(*args)
    return mapped
