"""Hidden tests of the stateful vmap exercises: cases the notebook's checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails. Every use of the answer, and every read of a state
it changed, is inside ``observe`` (see ``hutchinson_course.exercises.stateful_vmap.made``).
"""

from __future__ import annotations

import brainstate
import jax.numpy as jnp
import numpy as np

from hutchinson_course.estimators.variance import probe_variance
from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches
from hutchinson_course.exercises.stateful_vmap import (
    build_layer,
    call_explaining_state_errors,
    copies,
    describe_param,
    describe_params,
    estimates_of,
    made,
    param_state,
    require_vmap2,
    state_values,
    symmetric_matrix,
    tracked_states,
)


def test_q1_other_sizes(TanhDense):
    for in_size, out_size in ((1, 5), (7, 1)):
        layer, described = made(lambda: build_layer(TanhDense, in_size, out_size, seed=3),
                                describe_params("weight", "bias"))
        param_state(described["weight"], "weight", (in_size, out_size))
        expect_close(param_state(described["bias"], "bias", (out_size,)), np.zeros(out_size),
                     what=f"the bias of TanhDense({in_size}, {out_size})")
        expect_array(observe(lambda: layer()(jnp.ones(in_size))),
                     what=f"TanhDense({in_size}, {out_size}) on ones({in_size})", shape=(out_size,))


def test_q1_shared_under_vmap2(TanhDense):
    inputs = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), dtype=jnp.float32)

    def mapped_and_one_by_one():
        layer = build_layer(TanhDense, 4, 3, seed=4)
        mapped = brainstate.transform.vmap2(layer)(inputs)
        one_by_one = np.stack([np.asarray(layer(row)) for row in inputs])
        return mapped, one_by_one, describe_param(layer, "weight")

    mapped, one_by_one, weight = observe(mapped_and_one_by_one)
    expect_close(mapped, one_by_one, what="vmap2(layer) over 5 inputs", rtol=1e-5, atol=1e-6,
                 why="The layer's parameters should be read, the same for every element.")
    param_state(weight, "weight", (4, 3))


def test_q1_compiled_layer_sees_new_weights(TanhDense):
    h = jnp.array([1.0, -0.5])

    def weight_and_second_call():
        layer = build_layer(TanhDense, 2, 2, seed=5)
        compiled = brainstate.transform.jit(layer)
        compiled(h)
        layer.bias.value = jnp.array([0.25, -0.25])
        weight = np.asarray(layer.weight.value)
        return weight, compiled(h)

    weight, output = observe(weight_and_second_call)
    expected = np.tanh(np.asarray(h) @ np.asarray(weight) + np.array([0.25, -0.25]))
    expect_close(output, expected, what="the compiled layer after changing bias.value", rtol=1e-5,
                 why="__call__ should read the states' values, so brainstate.transform.jit passes them in.")


def test_q2_other_batch_size(make_tracked_scaler):
    scale, seen, calls = tracked_states(6, scale_value=0.5)
    mapped, _ = made(lambda: make_tracked_scaler(scale, seen, calls))
    xs = jnp.array([-1.0, 2.0, 3.0, -4.0, 5.0, 0.0])
    for _ in range(3):
        output = call_explaining_state_errors(mapped, xs)
    expect_close(output, 0.5 * np.asarray(xs), what="the mapped scaler (scale 0.5) on xs = [-1, 2, 3, -4, 5, 0]")
    seen, calls = state_values(seen, calls)
    if np.asarray(seen).tolist() != [0, 3, 3, 0, 3, 0] or int(calls) != 3:
        raise Incorrect(f"After three calls on six elements, seen should be [0, 3, 3, 0, 3, 0] and calls 3; "
                        f"found {np.asarray(seen).tolist()} and {np.asarray(calls).tolist()}.")


def test_q2_runs_under_brainstate_jit(make_tracked_scaler):
    scale, seen, calls = tracked_states(3)
    xs = jnp.array([1.0, 1.0, -1.0])

    def compiled_twice():
        compiled = brainstate.transform.jit(make_tracked_scaler(scale, seen, calls))
        compiled(xs)
        compiled(xs)
        return seen.value, calls.value

    seen, calls = observe(compiled_twice)
    if np.asarray(seen).tolist() != [2, 2, 0] or int(calls) != 2:
        raise Incorrect(f"Compiled with brainstate.transform.jit and called twice, seen should be [2, 2, 0] and "
                        f"calls 2; found {np.asarray(seen).tolist()} and {np.asarray(calls).tolist()}.")


def test_q2_mappings_keep_their_own_states(make_tracked_scaler):
    first_states, second_states = tracked_states(2), tracked_states(2)

    def seen_after_three_calls():
        first, second = make_tracked_scaler(*first_states), make_tracked_scaler(*second_states)
        first(jnp.array([1.0, 1.0]))
        second(jnp.array([-1.0, 1.0]))
        first(jnp.array([1.0, -1.0]))
        return first_states[1].value, second_states[1].value

    first_seen, second_seen = observe(seen_after_three_calls)
    if np.asarray(first_seen).tolist() != [2, 1] or np.asarray(second_seen).tolist() != [0, 1]:
        raise Incorrect("Two mappings built from different states should each update their own states.")


@teaches(3)
def test_q3_maps_with_vmap2(batch_trace_estimates):
    # The exercise's point: brainstate's vmap2 gives each element its own key, no keys by hand.
    require_vmap2(batch_trace_estimates, "batch_trace_estimates", found_so_far="")


def test_q3_other_shapes_and_matrices(batch_trace_estimates):
    diagonals = jnp.stack([jnp.diag(jnp.array([1.0, 2.0, 3.0]) * k) for k in (1.0, -2.0, 0.5)])
    found = estimates_of(batch_trace_estimates, "batch_trace_estimates for three different diagonal matrices",
                         diagonals, num_probes=3, seed=0)
    expect_close(found, [6.0, -12.0, 3.0], what="batch_trace_estimates for three different diagonal matrices",
                 rtol=1e-5, why="Each element should estimate the trace of its own matrix.")
    single = estimates_of(batch_trace_estimates, "batch_trace_estimates for one (1, 1) matrix",
                          jnp.full((1, 1, 1), 2.5), num_probes=1, seed=0)
    expect_close(single, [2.5], what="batch_trace_estimates for one (1, 1) matrix", rtol=1e-5)


def test_q3_probe_count_sets_the_variance(batch_trace_estimates):
    S = symmetric_matrix(5, seed=7)
    one = estimates_of(batch_trace_estimates, "batch_trace_estimates", copies(S, 2000), num_probes=1, seed=1)
    eight = estimates_of(batch_trace_estimates, "batch_trace_estimates", copies(S, 2000), num_probes=8, seed=2)
    # The variance ratio is 8 in expectation; each sample variance of 2000 draws is within about
    # 10% of its value, so the ratio stays well inside [5, 13].
    ratio = one.var() / eight.var()
    if not 5 < ratio < 13:
        raise Incorrect(f"Eight probes should divide the variance by 8, found a ratio of {ratio:.2f}.")
    if abs(eight.var() - probe_variance(S, "rademacher") / 8) > 0.25 * probe_variance(S, "rademacher") / 8:
        raise Incorrect("With eight probes the variance differs from that of Rademacher probes.")


def test_q3_compiled_draws_fresh_probes(batch_trace_estimates):
    S = copies(symmetric_matrix(4, seed=8), 6)

    def two_compiled_calls():
        compiled = brainstate.transform.jit(batch_trace_estimates, static_argnums=1)
        with brainstate.random.seed_context(9):
            return np.asarray(compiled(S, 2)), np.asarray(compiled(S, 2))

    first, second = observe(two_compiled_calls)
    if np.array_equal(first, second):
        raise Incorrect("Compiled with brainstate.transform.jit, two calls gave the same estimates: probes drawn "
                        "with numpy (or a fixed key) become constants of the compiled program. Draw them from "
                        "brainstate.random.")


@teaches(3)
def test_q4_maps_with_vmap2(paired_trace_differences):
    require_vmap2(paired_trace_differences, "paired_trace_differences", found_so_far="")


@teaches(2)  # the exercise's point: A[b] and C[b] see the same probes, so shifts come out exactly
def test_q4_each_pair_its_own_matrices(paired_trace_differences):
    A = jnp.stack([jnp.asarray(symmetric_matrix(4, seed=s)) for s in range(3)])
    shifts = jnp.array([0.5, -1.0, 2.0])
    C = A - shifts[:, None, None] * jnp.eye(4)
    found = estimates_of(paired_trace_differences, "paired_trace_differences for three different pairs", A, C,
                         num_probes=2, seed=0)
    expect_close(found, 4 * np.asarray(shifts), what="paired_trace_differences for three different pairs",
                 rtol=1e-4, atol=1e-4, why="Element b should compare A[b] with C[b].")


def test_q4_compiled_draws_fresh_probes(paired_trace_differences):
    S, T = copies(symmetric_matrix(4, seed=10), 6), copies(symmetric_matrix(4, seed=11), 6)

    def two_compiled_calls():
        compiled = brainstate.transform.jit(paired_trace_differences, static_argnums=2)
        with brainstate.random.seed_context(12):
            return np.asarray(compiled(S, T, 2)), np.asarray(compiled(S, T, 2))

    first, second = observe(two_compiled_calls)
    if np.array_equal(first, second):
        raise Incorrect("Compiled with brainstate.transform.jit, two calls gave the same estimates: draw the "
                        "probes from brainstate.random.")


check_test_names(__name__)  # every test above belongs to an exercise of this set
