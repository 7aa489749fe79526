"""Hidden tests of the jit exercises: cases the notebook's checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hutchinson_course.estimators.variance import probe_variance
from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.jit import (
    DispatchRecorder,
    timed_calls,
    _estimate_and_error,
    _test_matrix,
    call_explaining_tracer_errors,
    check_time_jax_call_median,
    check_time_jax_call_pytree,
    check_time_jax_call_warm_up,
    clip_by_norm_reference,
    power_sum_reference,
)
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches


def test_q1_other_inputs(power_sum_jit):
    # n is passed by keyword only, as the statement calls it: `def f(x, *, n)` is allowed.
    x = jnp.linspace(-1.5, 1.5, 7)
    for n in (2, 5):
        expect_close(call_explaining_tracer_errors(power_sum_jit, x, n=n), power_sum_reference(x, n),
                     what=f"power_sum_jit(x, n={n}) on seven points", rtol=1e-4)


@teaches(2)
def test_q1_one_program_per_n(power_sum_jit):
    x = jnp.ones((2, 3))
    jaxpr = observe(lambda: str(jax.make_jaxpr(lambda v: power_sum_jit(v, n=6))(x)))
    if "while" in jaxpr or "scan" in jaxpr:
        raise Incorrect("The loop over n should be unrolled at trace time (n static), not a traced loop.")
    expect_array(observe(lambda: power_sum_jit(x, n=6)), what="power_sum_jit on a (2, 3) array", shape=(2, 3))


def test_q2_many_vectors_and_limits(clip_by_norm):
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = jnp.asarray(rng.normal(size=5) * 3, dtype=jnp.float32)
        max_norm = float(rng.uniform(0.5, 6.0))
        found = call_explaining_tracer_errors(clip_by_norm, x, jnp.float32(max_norm))
        expect_close(found, clip_by_norm_reference(x, max_norm), what=f"clip_by_norm(x, {max_norm:.3f})",
                     rtol=1e-4)


def test_q2_max_norm_is_traced(clip_by_norm):
    x = jnp.array([3.0, 4.0])
    found = observe(lambda: jax.vmap(clip_by_norm, in_axes=(None, 0))(x, jnp.array([1.0, 5.0, 10.0])))
    expect_close(found, np.stack([clip_by_norm_reference(x, m) for m in (1.0, 5.0, 10.0)]),
                 what="clip_by_norm mapped over three max_norm values")


def test_q3_honours_repeats(time_jax_call):
    _, calls = timed_calls(time_jax_call, DispatchRecorder([0.01] * 5), repeats=3)
    if calls != 4:
        raise Incorrect(f"With repeats=3 the function should be called 4 times, found {calls}.")


def test_q3_waits_for_a_pytree_of_results(time_jax_call):
    check_time_jax_call_pytree(time_jax_call)


@teaches(3)
def test_q3_warm_up_then_median_of_blocked_calls(time_jax_call):
    found = float(observe(lambda: time_jax_call(DispatchRecorder([0.03] * 8), repeats=4)))
    if not 0.025 <= found:
        raise Incorrect(f"Each call's work takes 0.03 s once you block on its result, but you measured "
                        f"{found:.4f} s: block with jax.block_until_ready(result) inside the timed region.")
    check_time_jax_call_warm_up(time_jax_call)
    check_time_jax_call_median(time_jax_call)


def test_q3_times_real_jax_work(time_jax_call):
    found = observe(lambda: time_jax_call(jax.jit(lambda a: a @ a), jnp.ones((64, 64)), repeats=3))
    if not 0 < float(found) < 1:
        raise Incorrect(f"Timing a small matrix product gave {found!r} s.")


@teaches(2)
def test_q4_gaussian_on_a_diagonal_is_not_exact(hutchinson_with_error):
    A = jnp.diag(jnp.arange(1.0, 5.0))
    estimate, error = _estimate_and_error(hutchinson_with_error, A, jax.random.key(3), 2000, "gaussian")
    theory = np.sqrt(probe_variance(A, "gaussian") / 2000)
    if not 0.85 * theory < error < 1.15 * theory:
        raise Incorrect(f"Gaussian probes on a diagonal matrix: standard error should be near {theory:.4f}, "
                        f"found {error:.4f}.")


def test_q4_unbiased_over_keys(hutchinson_with_error):
    A = _test_matrix(seed=4, dim=5)
    estimates = [_estimate_and_error(hutchinson_with_error, A, jax.random.key(s), 16, "rademacher")[0]
                 for s in range(300)]
    standard_error = np.sqrt(probe_variance(A, "rademacher") / 16 / len(estimates))
    if abs(np.mean(estimates) - float(jnp.trace(A))) > 5 * standard_error:
        raise Incorrect("Averaged over 300 keys, the estimates are biased away from the trace.")


check_test_names(__name__)  # every test above belongs to an exercise of this set
