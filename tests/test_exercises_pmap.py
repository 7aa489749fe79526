"""The pmap exercises' checks: typical mistakes get specific messages (8 devices: see conftest)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from hutchinson_course.exercises import exercise_set

import scoring

q1, q2, q3 = exercise_set("pmap")


def outcome(exercise, answer):
    return scoring.outcome(exercise, answer)


def test_q1_messages():
    def transposed(a, d):
        return a.reshape((a.shape[0] // d, d) + a.shape[1:]).swapaxes(0, 1)

    def no_check(a, d):
        return a[: (a.shape[0] // d) * d].reshape((d, a.shape[0] // d) + a.shape[1:])

    def vague(a, d):
        if a.shape[0] % d:
            raise ValueError("bad shape")
        return a.reshape((d, a.shape[0] // d) + a.shape[1:])

    assert "a reshape, not a transpose" in outcome(q1, transposed).message
    assert "raise ValueError instead of returning" in outcome(q1, no_check).message
    assert "should name both numbers" in outcome(q1, vague).message


def test_q2_messages():
    def mean_of_means(traces, mask):
        return jax.lax.pmean(jnp.sum(jnp.where(mask, traces, 0.0)) / jnp.sum(mask), "devices")

    def wrong_axis(traces, mask):
        return jax.lax.psum(jnp.sum(traces), "batch")

    def local_only(traces, mask):
        return jnp.sum(jnp.where(mask, traces, 0.0)) / jnp.sum(mask)

    assert "psum the sums and the counts" in outcome(q2, mean_of_means).message
    assert "must name the pmapped axis" in outcome(q2, wrong_axis).message
    assert outcome(q2, local_only).status == "failed"


def test_q3_messages():
    def without_shard_map(traces, mask, mesh):
        return jnp.sum(jnp.where(mask, traces, 0.0)) / jnp.sum(mask)

    def per_device_results(traces, mask, mesh):
        def body(t, m):
            return (jax.lax.psum(jnp.sum(jnp.where(m, t, 0.0)), "devices") / jax.lax.psum(jnp.sum(m), "devices"))[None]
        return jax.shard_map(body, mesh=mesh, in_specs=P("devices"), out_specs=P("devices"))(traces, mask)

    assert "asks for jax.shard_map" in outcome(q3, without_shard_map).message
    assert "should have shape ()" in outcome(q3, per_device_results).message


def test_q3_needs_a_psum_in_the_shard_map_and_a_replicated_result():
    from hutchinson_course.grading.hidden import pmap as hidden

    def mean_outside(traces, mask, mesh):
        # A shard_map that does nothing, and the mean computed on the global arrays.
        passed = jax.shard_map(lambda t: t, mesh=mesh, in_specs=P("devices"), out_specs=P("devices"))(traces)
        return jnp.sum(jnp.where(mask, passed, 0.0)) / jnp.sum(mask)

    message = outcome(q3, mean_outside).message
    assert "no psum" in message
    found = scoring.outcome(q3, mean_outside, check=hidden.test_q3_a_psum_inside_and_a_replicated_result)
    assert found.status == "failed" and "no psum" in found.message, "the grader test passed an answer without a psum"


def split_reference(a, num_devices):
    if a.shape[0] % num_devices:
        raise ValueError(f"B={a.shape[0]} is not a multiple of the {num_devices} devices")
    return a.reshape((num_devices, a.shape[0] // num_devices) + a.shape[1:])


def mean_reference(traces, mask):
    return (jax.lax.psum(jnp.sum(jnp.where(mask, traces, 0.0)), "devices")
            / jax.lax.psum(jnp.sum(mask), "devices"))


def shard_map_reference(traces, mask, mesh):
    return jax.shard_map(mean_reference, mesh=mesh, in_specs=P("devices"), out_specs=P())(traces, mask)


def test_reference_answers_pass_every_check_and_grader_test():
    from hutchinson_course.grading.hidden import pmap as hidden

    for exercise, answer in ((q1, split_reference), (q2, mean_reference), (q3, shard_map_reference)):
        assert outcome(exercise, answer).passed
        tests = [getattr(hidden, name) for name in dir(hidden) if name.startswith(f"test_{exercise.id}_")]
        assert tests
        for test in tests:
            found = scoring.outcome(exercise, answer, check=test)
            assert found.passed, (test.__name__, found)


def test_q1_keys_must_stay_typed_and_q3_must_be_a_jax_array():
    from hutchinson_course.grading.hidden import pmap as hidden

    def raw_keys(a, d):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return a.reshape((d, a.shape[0] // d) + a.shape[1:])

    found = scoring.outcome(q1, raw_keys, check=hidden.test_q1_other_shapes_and_typed_keys)
    assert found.status == "failed" and "typed keys" in found.message

    def as_numpy(traces, mask, mesh):  # a NumPy array when called, the shard_map's program when traced
        result = shard_map_reference(traces, mask, mesh)
        return result if isinstance(result, jax.core.Tracer) else np.asarray(result)

    assert "not a ndarray" in outcome(q3, as_numpy).message
