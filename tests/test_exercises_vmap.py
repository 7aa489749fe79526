"""The vmap exercises' checks and hidden tests: each typical mistake gets a specific message."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import per_point
from hutchinson_course.exercises import exercise_set
from hutchinson_course.grading.hidden import vmap as hidden

import scoring

q1, q2, q3 = exercise_set("vmap")


def outcome(exercise, answer, check=None):
    return scoring.outcome(exercise, answer, check=check)


def stub(*args):
    raise NotImplementedError


def nested(in_axes_inner, *, time=lambda t: t[:, 0], key_map=lambda keys: keys, key_axis=0):
    """A q2 answer built from its parts, so that each test changes one of them."""
    def traces(per_point_fn, x_t, z, t, mask, keys):
        over_points = jax.vmap(per_point_fn, in_axes=in_axes_inner)
        return jax.vmap(over_points, in_axes=(0, 0, 0, 0, key_axis))(x_t, z, time(t), mask, key_map(keys))
    return traces


def flattened(*, repeat=lambda a, n: jnp.repeat(a, n, axis=0), flat_keys=lambda keys, bn: keys.reshape(
        (bn,) + keys.shape[2:]), reshape_output=True):
    """A q3 answer built from its parts."""
    def traces(per_point_fn, x_t, z, t, mask, keys):
        B, N = x_t.shape[:2]
        result = jax.vmap(per_point_fn)(x_t.reshape(B * N, -1), repeat(z, N), repeat(t, N)[:, 0],
                                        mask.reshape(B * N), flat_keys(keys, B * N))
        return result.reshape(B, N) if reshape_output else result
    return traces


@pytest.mark.parametrize("exercise", [q1, q2, q3])
def test_stubs_are_not_attempted(exercise):
    assert outcome(exercise, stub).status == "not attempted"
    assert outcome(exercise, ...).status == "not attempted"


@pytest.mark.parametrize("exercise", [q2, q3])
def test_a_non_function_is_named(exercise):
    result = outcome(exercise, 42)
    assert result.status == "failed" and f"`{exercise.answer}` should be a function, found int." in result.message


def test_q1_messages():
    right = lambda f: jax.vmap(f, in_axes=(None, 1), out_axes=1)  # noqa: E731
    assert outcome(q1, right).passed
    assert "Map axis 1" in outcome(q1, lambda f: jax.vmap(f, in_axes=(None, 0), out_axes=1)).message
    assert "in_axes=None" in outcome(q1, lambda f: jax.vmap(f, in_axes=1, out_axes=1)).message
    assert "as rows" in outcome(q1, lambda f: jax.vmap(f, in_axes=(None, 1))).message
    assert "should be a function" in outcome(q1, 42).message
    assert "`map_over_columns(matvec)` should be a function, found int." in outcome(q1, lambda f: 42).message


def test_q1_hidden_tests():
    right = lambda f: jax.vmap(f, in_axes=(None, 1), out_axes=1)  # noqa: E731
    for test in (hidden.test_q1_square_layout, hidden.test_q1_one_probe,
                 hidden.test_q1_one_vmap_no_loop_no_transposes):
        assert outcome(q1, right, check=test).passed
    # A loop over exactly five columns gives the check's values, but not with one vmap.
    def five_columns(f):
        return lambda M, probes: jnp.stack([f(M, probes[:, p]) for p in range(5)], axis=1)

    assert "probe by probe" in outcome(q1, five_columns).message
    square = outcome(q1, five_columns, check=hidden.test_q1_square_layout)
    assert square.status == "failed" and "should have shape (4, 4), found (4, 5)" in square.message
    sequential_map = outcome(q1, lambda f: lambda M, probes: jax.lax.map(lambda eps: f(M, eps), probes.T).T,
                             check=hidden.test_q1_one_vmap_no_loop_no_transposes)
    assert sequential_map.status == "failed" and "probe by probe" in sequential_map.message


def test_q1_transposes_are_not_the_answer():
    transposed = lambda f: lambda M, probes: jax.vmap(f, in_axes=(None, 0))(M, probes.T).T  # noqa: E731
    assert "transposes" in outcome(q1, transposed).message
    hidden_outcome = outcome(q1, transposed, check=hidden.test_q1_one_vmap_no_loop_no_transposes)
    assert hidden_outcome.status == "failed" and "transposes" in hidden_outcome.message


def test_q1_swapped_in_axes_are_named_as_such():
    message = outcome(q1, lambda f: jax.vmap(f, in_axes=(1, None), out_axes=1)).message
    assert "swapped" in message and "rows" not in message


def test_q2_messages():
    right = nested((0, None, None, 0, 0))
    assert outcome(q2, right).passed
    assert "z was copied to every point" in outcome(q2, per_point.traces_tiled).message
    message = outcome(q2, nested((0, None, None, 0, 0), time=lambda t: t)).message
    assert "t_val of shape (1,)" in message and "t[:, 0]" in message
    assert "other than one key" in outcome(q2, nested((0, None, None, 0, None))).message
    shared = nested((0, None, None, 0, None), key_map=lambda keys: keys[:, 0])
    assert "got the same estimate" in outcome(q2, shared).message
    assert "mask_val must be a scalar" in outcome(q2, nested((0, None, None, None, 0))).message
    with_numpy = nested((0, None, None, 0, 0), time=lambda t: np.asarray(t)[:, 0])
    assert "use the jnp functions" in outcome(q2, with_numpy).message
    transposed = lambda *args: right(*args).T  # noqa: E731
    assert "should have shape (2, 3), found (3, 2)" in outcome(q2, transposed).message


def test_q2_hidden_tests():
    right = nested((0, None, None, 0, 0))
    for test in (hidden.test_q2_other_sizes, hidden.test_q2_any_per_point_function, hidden.test_q2_legacy_keys,
                 hidden.test_q2_the_points_share_their_context):
        assert outcome(q2, right, check=test).passed
    # Hard-coding B = 2 passes the notebook's check, not the hidden tests.
    two_batches = nested((0, None, None, 0, 0), time=lambda t: t.reshape(2))
    assert outcome(q2, two_batches).passed
    assert "cannot reshape" in outcome(q2, two_batches, check=hidden.test_q2_other_sizes).message
    # The per-point function of the hidden test raises Incorrect inside the learner's mapping.
    unmapped_time = outcome(q2, nested((0, None, None, 0, 0), time=lambda t: t),
                            check=hidden.test_q2_any_per_point_function)
    assert unmapped_time.status == "failed" and "t_val reached the per-point function with shape (1,)" in \
        unmapped_time.message


def test_q3_messages():
    right = flattened()
    assert outcome(q3, right).passed
    message = outcome(q3, flattened(repeat=lambda a, n: jnp.tile(a, (n,) + (1,) * (a.ndim - 1)))).message
    assert "jnp.repeat(z, N, axis=0)" in message and "interleaving" in message
    message = outcome(q3, flattened(flat_keys=lambda keys, bn: keys.reshape(-1))).message
    assert "trailing axis of 2" in message and "keys.shape[2:]" in message
    assert "one vmap over the B * N points" in outcome(q3, per_point.traces_in_axes_none).message
    assert "should have shape (2, 3), found (6,)" in outcome(q3, flattened(reshape_output=False)).message


def test_q3_hidden_tests():
    right = flattened()
    for test in (hidden.test_q3_other_sizes_and_keys, hidden.test_q3_one_vmap_over_the_flattened_points):
        assert outcome(q3, right, check=test).passed
    # Hard-coding six points passes the notebook's check, not the hidden tests.
    six_points = flattened(flat_keys=lambda keys, bn: keys.reshape((6,) + keys.shape[2:]))
    assert outcome(q3, six_points).passed
    assert "cannot reshape" in outcome(q3, six_points, check=hidden.test_q3_other_sizes_and_keys).message


def test_incorrect_messages_name_expected_and_found():
    off = lambda f: lambda M, probes: 2 * jax.vmap(f, in_axes=(None, 1), out_axes=1)(M, probes)  # noqa: E731
    result = outcome(q1, off)
    assert result.status == "failed" and "expected" in result.message and "found" in result.message
    assert outcome(q1, off, check=hidden.test_q1_square_layout).status == "failed"


def sequential(map_points):
    """q2 and q3 answers that map the points with jax.lax.map instead of an inner vmap."""
    def traces(per_point_fn, x_t, z, t, mask, keys):
        def one_batch(x, z_b, t_b, m, k):
            return jax.lax.map(lambda args: per_point_fn(args[0], z_b, t_b[0], args[1], args[2]), (x, m, k))
        return map_points(one_batch)(x_t, z, t, mask, keys)
    return traces


@pytest.mark.parametrize("exercise_index", [1, 2])
def test_a_sequential_map_gives_the_same_traces(exercise_index):
    """The checks' keys are threefry's, whose bits do not depend on vmap against lax.map."""
    exercise = (q1, q2, q3)[exercise_index]
    answer = sequential(lambda one_batch: jax.vmap(one_batch))
    x_t, z, t, mask, keys = hidden.batch_inputs("global")
    found = hidden.run_mapping(answer, hidden.estimator(), x_t, z, t, mask, keys)
    np.testing.assert_allclose(found, hidden.reference_traces(x_t, z, t, mask, keys), rtol=1e-5, atol=1e-5)
    if exercise is q2:
        assert outcome(q2, answer).passed


def test_answers_missing_the_point_lose_most_of_the_marks():
    # z tiled to every point (q2) and a nested map instead of one over the flattened points (q3)
    # pass every grader test but the point's; the point's weight leaves them under half the marks.
    for exercise_id, right, missing_the_point, reason in (
            ("q2", nested((0, None, None, 0, 0)), per_point.traces_tiled, "copied to every point"),
            ("q3", flattened(), per_point.traces_in_axes_none, "(B * N, D) = (12, 2)")):
        full, most, _ = scoring.points("vmap", exercise_id, right)
        assert full == most
        got, most, scored = scoring.points("vmap", exercise_id, missing_the_point)
        assert got < most / 2, scored
        point = next(t for t in scored["tests"] if t["weight"] >= 3)
        assert point["status"] == "failed" and reason in point["message"]
