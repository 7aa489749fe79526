"""The pmap chapter's estimator: across 8 devices with pmap, shard_map and jit with shardings, the
(B, N) traces and the mean divergence equal the single-device results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import per_point, sharded


def inputs(B, N=5, D=3, Dc=4, seed=0, context="global"):
    keys = jax.random.split(jax.random.key(seed), 4)
    x_t = jax.random.normal(keys[0], (B, N, D))
    z = jax.random.normal(keys[1], (B, Dc) if context == "global" else (B, 2, Dc))
    t = jax.random.uniform(keys[2], (B, 1))
    mask = jax.random.uniform(keys[3], (B, N)) > 0.3
    return x_t, z, t, mask


def single_device(x_t, z, t, mask, key):
    traces = per_point.batch_traces(x_t, z, t, mask, key)
    return traces, jnp.sum(jnp.where(mask, traces, 0.0)) / jnp.sum(mask)


def test_eight_devices_are_simulated():
    assert jax.device_count() == 8


@pytest.mark.parametrize("B, context", [(16, "global"), (13, "structured"), (3, "global")])
def test_three_ways_across_devices_equal_one_device(B, context):
    x_t, z, t, mask = inputs(B, context=context)
    key = jax.random.key(7)
    expected_traces, expected_mean = single_device(x_t, z, t, mask, key)
    mesh = sharded.batch_mesh()
    results = {
        "pmap": sharded.pmap_traces(x_t, z, t, mask, key),
        "shard_map": sharded.shard_map_traces(x_t, z, t, mask, key, mesh=mesh),
        "jit with shardings": sharded.jit_sharded_traces(x_t, z, t, mask, key, mesh=mesh),
    }
    for name, (traces, mean) in results.items():
        assert traces.shape == (B, 5), name
        # The same keys reach the same points; only float32 rounding may differ, since blocks of
        # another size compile to programs that may sum in another order.
        np.testing.assert_allclose(traces, expected_traces, rtol=1e-5, atol=1e-5, err_msg=name)
        assert float(mean) == pytest.approx(float(expected_mean), rel=1e-5), name
        assert np.all(np.asarray(traces)[~np.asarray(mask)] == 0.0), name


def test_padding_adds_masked_rows_only():
    x_t, z, t, mask = inputs(5)
    (x_padded,), mask_padded, batch_size = sharded.pad_batch((x_t,), mask, 8)
    assert batch_size == 5 and x_padded.shape == (8, 5, 3) and mask_padded.shape == (8, 5)
    assert not np.any(np.asarray(mask_padded[5:]))
    np.testing.assert_array_equal(mask_padded[:5], mask)


def test_a_batch_that_does_not_split_evenly_is_explained():
    with pytest.raises(ValueError, match="B=13 evenly across 8 devices; pad it to a multiple of 8"):
        sharded.device_blocks(jnp.ones((13, 2)), 8)
    assert sharded.device_blocks(jnp.ones((16, 2)), 8).shape == (8, 2, 2)


def test_the_jit_version_is_partitioned_and_sums_across_devices():
    x_t, z, t, mask = inputs(16)
    mesh = sharded.batch_mesh()
    traces, _ = sharded.jit_sharded_traces(x_t, z, t, mask, jax.random.key(0), mesh=mesh)
    assert len(traces.sharding.device_set) == 8
    keys = jax.random.split(jax.random.key(0), mask.shape)
    compiled = sharded._global_traces_and_mean.lower(
        *sharded.shard_batch((x_t, z, t, mask, keys), mesh), num_probes=16, probe_kind="rademacher").compile()
    assert "all-reduce" in compiled.as_text()
