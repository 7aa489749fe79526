"""Hidden tests of the pmap exercises."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.exercises.pmap import (
    AXIS, DEVICES, masked_mean, require_devices, require_psum_in_shard_map, require_replicated, result_and_layout,
    run_across_devices, sharded_inputs, uneven_blocks,
)
from hutchinson_course.grading.hidden import check_test_names, teaches


def test_q1_other_shapes_and_typed_keys(split_for_devices):
    x = jnp.arange(8 * 3 * 5 * 2.0).reshape(8, 3, 5, 2)
    blocks = expect_array(observe(lambda: split_for_devices(x, 4)), what="split_for_devices((8, 3, 5, 2), 4)",
                          shape=(4, 2, 3, 5, 2))
    expect_close(blocks.reshape(x.shape), x, what="the blocks put back together")
    keys = jax.random.split(jax.random.key(0), (8, 5))
    key_blocks = observe(lambda: split_for_devices(keys, 8))
    if key_blocks.shape != (8, 1, 5) or not jnp.issubdtype(key_blocks.dtype, jax.dtypes.prng_key):
        raise Incorrect(f"(8, 5) typed keys on 8 devices should give (8, 1, 5) keys, found {key_blocks.shape}, "
                        f"{key_blocks.dtype}.")


def test_q1_one_device_and_zero_remainder(split_for_devices):
    expect_array(observe(lambda: split_for_devices(jnp.ones((6, 2)), 1)), what="split_for_devices((6, 2), 1)",
                 shape=(1, 6, 2))
    try:
        observe(lambda: split_for_devices(jnp.ones((4, 2)), 8))
    except ValueError:
        return
    raise Incorrect("B=4 on 8 devices should raise ValueError.")


def test_q2_a_device_without_real_points(mean_divergence_across_devices):
    require_devices()
    traces, mask = uneven_blocks(seed=3)
    mask = mask.at[5].set(False)
    found = run_across_devices(mean_divergence_across_devices, traces, mask)
    expect_close(found, np.full(8, masked_mean(traces, mask)),
                 what="the mean when device 5 holds only padding", rtol=1e-5,
                 why="A device without real points contributes 0 to both sums; divide only after the psum.")


def test_q3_on_a_smaller_mesh(shard_map_mean_divergence):
    require_devices()
    traces, mask = uneven_blocks(seed=4, devices=4, rows=3)
    traces, mask = traces.reshape(12, 5), mask.reshape(12, 5)
    mesh = jax.make_mesh((4,), (AXIS,), devices=jax.devices()[:4])
    args = sharded_inputs(mesh, traces, mask)
    found = observe(lambda: shard_map_mean_divergence(*args, mesh))
    expect_close(found, masked_mean(traces, mask), what="the mean divergence on a 4-device mesh", rtol=1e-5)


@teaches(3)
def test_q3_a_psum_inside_and_a_replicated_result(shard_map_mean_divergence):
    require_devices()
    traces, mask = uneven_blocks(seed=5)
    traces, mask = traces.reshape(16, 5), mask.reshape(16, 5)
    mesh = jax.make_mesh((DEVICES,), (AXIS,))
    args = sharded_inputs(mesh, traces, mask)
    require_psum_in_shard_map(shard_map_mean_divergence, mesh, args)
    require_replicated(*result_and_layout(shard_map_mean_divergence, args, mesh))


check_test_names(__name__)  # every test above belongs to an exercise of this set
