"""Exercises of the pmap chapter: blocks for devices, a collective mean, and shard_map.

The checks need 8 devices (the set's ``devices`` in ``registry``), which the exercise notebook's
setup cell asks XLA for, and the grader's judge too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from . import registry
from .exercise import Exercise
from .expect import expect_array, expect_close
from .observe import observe, type_name
from .outcome import Incorrect

DEVICES = registry.lookup("pmap").devices
AXIS = "devices"


def require_devices(count: int = DEVICES) -> None:
    if jax.device_count() < count:
        raise Incorrect(f"This check needs {count} devices, found {jax.device_count()}: run the notebook's "
                        "first cell before anything imports jax (restart the kernel if needed).")


# q1 -------------------------------------------------------------------------------------

def check_split_for_devices(split_for_devices) -> None:
    x = jnp.arange(16 * 3.0).reshape(16, 3)
    blocks = expect_array(observe(lambda: split_for_devices(x, 8)), what="split_for_devices(x of shape (16, 3), 8)",
                          shape=(8, 2, 3), why_shape="The leading axis is the devices: (devices, B // devices, ...).")
    expect_close(blocks[1], np.asarray(x)[2:4], what="the block of device 1",
                 why="Device d should hold rows d * (B // devices) to (d + 1) * (B // devices): a reshape, "
                     "not a transpose.")
    try:
        observe(lambda: split_for_devices(jnp.ones((13, 3)), 8))
    except ValueError as error:
        if "13" not in str(error) or "8" not in str(error):
            raise Incorrect(f"The ValueError for B=13 on 8 devices should name both numbers, found: {error}") from None
        return
    except Exception as error:
        raise Incorrect(f"B=13 on 8 devices should raise ValueError with a clear message, found "
                        f"{getattr(error, 'learner_type', type(error).__name__)}: {error}") from None
    raise Incorrect("B=13 cannot be split into 8 equal blocks: raise ValueError instead of returning.")


# q2 -------------------------------------------------------------------------------------

def uneven_blocks(seed: int = 0, devices: int = DEVICES, rows: int = 2, points: int = 5):
    """traces and mask blocks (devices, rows, points) whose devices hold different numbers of real points."""
    rng = np.random.default_rng(seed)
    traces = rng.normal(3.0, 1.0, size=(devices, rows, points)).astype(np.float32)
    counts = rng.integers(1, rows * points + 1, size=devices)
    mask = np.arange(rows * points)[None, :] < counts[:, None]
    return jnp.asarray(traces), jnp.asarray(mask.reshape(devices, rows, points))


def masked_mean(traces, mask) -> float:
    traces, mask = np.asarray(traces, dtype=np.float64), np.asarray(mask, dtype=bool)
    return float(traces[mask].sum() / mask.sum())


def mean_of_means(traces, mask) -> float:
    traces, mask = np.asarray(traces, dtype=np.float64), np.asarray(mask, dtype=bool)
    return float(np.mean([t[m].sum() / m.sum() for t, m in zip(traces, mask)]))


def run_across_devices(fn, traces, mask):
    """``jax.pmap(fn)(traces, mask)``, observed; a collective over the wrong axis name explained."""
    try:
        return observe(lambda: jax.pmap(fn, axis_name=AXIS)(traces, mask))
    except NameError as error:
        raise Incorrect(f"Collectives must name the pmapped axis, \"{AXIS}\": {error}") from None


def check_mean_divergence_across_devices(mean_divergence_across_devices) -> None:
    require_devices()
    traces, mask = uneven_blocks()
    found = expect_array(run_across_devices(mean_divergence_across_devices, traces, mask),
                         what=f"the per-device results for traces of shape {traces.shape}", shape=(DEVICES,),
                         why_shape="Return one scalar per device: the mean over the whole batch.")
    expected, naive = masked_mean(traces, mask), mean_of_means(traces, mask)
    if np.allclose(found, naive, rtol=1e-5) and not np.isclose(naive, expected, rtol=1e-5):
        raise Incorrect(f"You averaged the per-device means ({naive:.4f}); the devices hold different numbers of "
                        f"real points, so the batch mean is {expected:.4f}: psum the sums and the counts.")
    expect_close(found, np.full(DEVICES, expected), what="the mean divergence on every device", rtol=1e-5)


# q3 -------------------------------------------------------------------------------------

def sharded_inputs(mesh, traces, mask):
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    return jax.device_put(traces, sharding), jax.device_put(mask, sharding)


def check_shard_map_mean_divergence(shard_map_mean_divergence) -> None:
    require_devices()
    traces, mask = uneven_blocks(seed=1)
    traces, mask = traces.reshape(16, 5), mask.reshape(16, 5)
    mesh = jax.make_mesh((DEVICES,), (AXIS,))
    args = sharded_inputs(mesh, traces, mask)
    result, layout = result_and_layout(shard_map_mean_divergence, args, mesh)
    found = expect_array(result, what=f"shard_map_mean_divergence on traces and mask of shape {traces.shape} sharded over {DEVICES} devices", shape=(),
                         why_shape="Return one scalar: out_specs=P() replicates the psum's result.")
    expect_close(found, masked_mean(traces, mask), what=f"the mean divergence of traces {traces.shape} sharded over {DEVICES} devices", rtol=1e-5)
    require_psum_in_shard_map(shard_map_mean_divergence, mesh, args)
    require_replicated(result, layout)


def result_and_layout(shard_map_mean_divergence, args, mesh):
    """(``shard_map_mean_divergence(*args, mesh)``, how that result lies on the devices), observed: the
    layout is None when the result has no sharding, else (whether it is fully replicated, the sharding)."""
    def run():
        result = shard_map_mean_divergence(*args, mesh)
        sharding = getattr(result, "sharding", None)
        return result, None if sharding is None else (bool(sharding.is_fully_replicated), str(sharding))
    return observe(run)


def require_replicated(result, layout) -> None:
    """``result`` and ``layout`` as ``result_and_layout`` returns them."""
    if layout is None:
        raise Incorrect(f"Return the jax array the shard_map gives, not a {type_name(result)}: its sharding "
                        "shows whether every device holds the result.")
    fully_replicated, sharding = layout
    if not fully_replicated:
        raise Incorrect(f"The value is right, but it is not replicated (its sharding is {sharding}): "
                        "out_specs=P() gives every device the psum's result.")


def require_psum_in_shard_map(shard_map_mean_divergence, mesh, args) -> None:
    """The program has a shard_map whose per-device body adds over the devices with psum."""
    psums = observe(lambda: psums_in_shard_maps(shard_map_mean_divergence, mesh, args))
    if not psums:
        raise Incorrect("The result is right, but the exercise asks for jax.shard_map with a psum inside.")
    if not any(psums):
        raise Incorrect("The result is right, but the shard_map's body has no psum: each device should add its "
                        "own block's sums and counts, and jax.lax.psum(..., \"devices\") combine them.")


def psums_in_shard_maps(shard_map_mean_divergence, mesh, args) -> list[bool]:
    """For each shard_map in the program of ``shard_map_mean_divergence``, whether its body has a psum."""
    program = jax.make_jaxpr(lambda t, m: shard_map_mean_divergence(t, m, mesh))(*args).jaxpr
    return ["psum" in str(eqn.params["jaxpr"]) for eqn in _equations(program) if eqn.primitive.name == "shard_map"]


def _equations(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in _inner(eqn):
            yield from _equations(sub)


def _inner(eqn):
    for param in eqn.params.values():
        for sub in param if isinstance(param, (tuple, list)) else (param,):
            inner = getattr(sub, "jaxpr", sub)
            if hasattr(inner, "eqns"):
                yield inner


EXERCISES = (
    Exercise("pmap", "q1", "blocks for devices", "split_for_devices", 1, check_split_for_devices, (
        "B must be a multiple of num_devices; check it first and raise ValueError naming both.",
        "a.reshape((num_devices, B // num_devices) + a.shape[1:]) keeps every row's trailing axes.",
    )),
    Exercise("pmap", "q2", "a collective mean", "mean_divergence_across_devices", 1,
             check_mean_divergence_across_devices, (
        "Inside pmap each call sees one device's block: traces (B/8, N) and mask (B/8, N).",
        "jax.lax.psum(value, \"devices\") adds value over all devices and gives every device the sum.",
        "Sum the masked traces and count the real points locally, psum both, then divide.",
    )),
    Exercise("pmap", "q3", "shard_map", "shard_map_mean_divergence", 2, check_shard_map_mean_divergence, (
        "Write the per-device body as in q2, then wrap it: jax.shard_map(body, mesh=mesh, in_specs=..., out_specs=...).",
        "in_specs=P(\"devices\") splits the leading axis of both inputs; out_specs=P() says the result is replicated.",
    )),
)
