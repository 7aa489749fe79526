"""The program every process runs: one global mesh, each process's own rows, the sharded estimator.

    python -m hutchinson_course.distributed.worker --coordinator 127.0.0.1:PORT --num-processes 2
        --process-id 0 --out DIR [--batch-size 10 --num-points 6 ...]

Every process runs this same script (multi-controller JAX). Its simulated CPU devices are set
before jax is imported, by the environment the launcher gives it
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``). After ``jax.distributed.initialize``,
``jax.devices()`` lists the devices of all processes and ``jax.local_devices()`` this process's
own; the mesh spans all of them, each process builds only its own rows of the batch, and the
pmap chapter's block estimator runs under ``jax.shard_map`` exactly as on one process. Each
process writes its own rows of the traces; process 0 alone writes what is shared.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
import time

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from ..estimators import core, sharded
from .rows import batch_rows, padded_size, process_rows

PROBLEM = dict(batch_size=10, num_points=6, dim=3, context_dim=2, num_probes=8, seed=0)


def say(message: str) -> None:
    """One line of progress, prefixed by the process's index: what the launcher shows if it fails."""
    print(f"process {jax.process_index()}: {message}", flush=True)


def initialize(coordinator_address: str, num_processes: int, process_id: int, *, timeout: int,
               heartbeat_timeout: int) -> None:
    """Join the other processes: returns once all ``num_processes`` have connected (or raises after
    ``timeout`` seconds). A process silent for ``heartbeat_timeout`` seconds is declared dead.

    The three arguments are given, so nothing is read from a cluster's environment (a SLURM job
    around this machine would otherwise supply its own); on a cluster, ``initialize()`` alone.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across processes on CPU
    jax.distributed.initialize(coordinator_address, num_processes, process_id, cluster_detection_method="deactivate",
                               initialization_timeout=timeout, heartbeat_timeout_seconds=heartbeat_timeout)


def global_batch(mesh, *, batch_size: int, num_points: int, dim: int, context_dim: int, seed: int):
    """This process's rows of the padded global batch, assembled into global arrays sharded over ``mesh``.

    Returns (rows, arrays): the row numbers this process built, and x_t, z, t, mask and the
    per-point key data, each a jax.Array of the global shape of which this process holds its rows.
    """
    global_size = padded_size(batch_size, mesh.size)
    rows = process_rows(jax.process_index(), jax.process_count(), global_size)
    sharding = NamedSharding(mesh, PartitionSpec(sharded.DEVICE_AXIS))
    held = sorted({i[0].indices(global_size) for i in sharding.addressable_devices_indices_map((global_size,)).values()})
    if (held[0][0], held[-1][1]) != (rows[0], rows[-1] + 1):
        raise RuntimeError(f"process {jax.process_index()} builds rows {rows[0]}..{rows[-1]} but its devices hold "
                           f"{held[0][0]}..{held[-1][1] - 1}")
    local = batch_rows(rows, batch_size=batch_size, num_points=num_points, dim=dim, context_dim=context_dim, seed=seed)
    # The keys are split for the whole (B, N) grid, as on one process; padding rows reuse row 0's.
    grid_keys = jax.random.key_data(core.point_keys(jax.random.key(seed), (batch_size, num_points)))
    local["key_data"] = np.asarray(grid_keys)[np.where(rows < batch_size, rows, 0)]
    arrays = {name: jax.make_array_from_process_local_data(sharding, part, (global_size,) + part.shape[1:])
              for name, part in local.items()}
    return rows, arrays


@functools.partial(jax.jit, static_argnames=("mesh", "num_probes", "probe_kind"))
def traces_and_mean(x_t, z, t, mask, key_data, *, mesh, num_probes: int, probe_kind: str = "rademacher"):
    """The pmap chapter's block estimator on every device of every process: traces (B', N) sharded
    like the batch, and the mean over the real points of all blocks (a psum of sums and counts)."""
    block = functools.partial(sharded.local_traces_and_mean, num_probes=num_probes, probe_kind=probe_kind)
    mapped = jax.shard_map(block, mesh=mesh, in_specs=PartitionSpec(sharded.DEVICE_AXIS),
                           out_specs=(PartitionSpec(sharded.DEVICE_AXIS), PartitionSpec()))
    return mapped(x_t, z, t, mask, jax.random.wrap_key_data(key_data))


def local_rows(array: jax.Array) -> np.ndarray:
    """The rows of a batch-sharded global array that live on this process's devices, in order."""
    shards = sorted(array.addressable_shards, key=lambda shard: shard.index[0].start)
    return np.concatenate([np.asarray(shard.data) for shard in shards])


def run(out: pathlib.Path, *, batch_size: int, num_points: int, dim: int, context_dim: int, num_probes: int,
        seed: int) -> None:
    """Build this process's rows, run the estimator across all processes, write this process's results."""
    index = jax.process_index()
    say(f"connected, {jax.local_device_count()} of {jax.device_count()} devices are mine")
    mesh = sharded.batch_mesh()  # every device of every process
    rows, arrays = global_batch(mesh, batch_size=batch_size, num_points=num_points, dim=dim,
                                context_dim=context_dim, seed=seed)
    say(f"built rows {rows[0]}..{rows[-1]} of {arrays['mask'].shape[0]}; running the estimator")
    traces, mean = traces_and_mean(*arrays.values(), mesh=mesh, num_probes=num_probes)
    np.savez(out / f"process_{index}.npz", rows=rows, traces=local_rows(traces))
    summary = {"process_index": index, "process_count": jax.process_count(),
               "local_device_count": jax.local_device_count(), "device_count": jax.device_count(),
               "rows": [int(rows[0]), int(rows[-1]) + 1], "mean": float(mean.addressable_data(0))}
    (out / f"process_{index}.json").write_text(json.dumps(summary))
    all_traces = multihost_utils.process_allgather(traces, tiled=True)  # a collective: every process calls it
    if index == 0:  # shared outputs: one writer
        np.save(out / "traces.npy", all_traces[:batch_size])
        (out / "problem.json").write_text(json.dumps(dict(batch_size=batch_size, num_points=num_points, dim=dim,
                                                          context_dim=context_dim, num_probes=num_probes,
                                                          seed=seed)))
    say(f"done, mean over all processes' real points {summary['mean']:.6f}")



def fail_on_purpose(how: str) -> None:
    """What the launcher's tests make one process do: die at once, or hang before the next collective."""
    if how == "exit":
        say("exiting on purpose")
        os._exit(3)  # like a crash: no cleanup, no goodbye to the coordinator
    if how == "hang":
        say("hanging on purpose")
        time.sleep(3600)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", required=True, help="host:port of process 0's coordination service")
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for the results")
    parser.add_argument("--init-timeout", type=int, default=60, help="seconds to wait for the other processes")
    parser.add_argument("--heartbeat-timeout", type=int, default=10)
    for name, value in PROBLEM.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--fail", choices=("exit", "hang"), help="make --fail-process fail on purpose")
    parser.add_argument("--fail-process", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    initialize(args.coordinator, args.num_processes, args.process_id, timeout=args.init_timeout,
               heartbeat_timeout=args.heartbeat_timeout)
    if args.fail and args.process_id == args.fail_process:
        fail_on_purpose(args.fail)
    run(args.out, **{name: getattr(args, name) for name in PROBLEM})


if __name__ == "__main__":
    main(sys.argv[1:])
