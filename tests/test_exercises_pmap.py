"""The pmap exercises' checks: typical mistakes get specific messages (8 devices: see conftest)."""

import jax
import jax.numpy as jnp
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
    try:
        hidden.test_q3_a_psum_inside_and_a_replicated_result(mean_outside)
    except AssertionError as error:
        assert "no psum" in str(error)
    else:
        raise AssertionError("the grader test passed an answer without a psum")
