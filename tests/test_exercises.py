"""The jit exercises' checks: each typical mistake gets a specific message."""

import functools
import statistics
import time

import jax
import jax.numpy as jnp
import pytest

from hutchinson_course.estimators import sample_probes
from hutchinson_course.exercises import Incorrect, evaluate, exercise_set
from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.grading.scoring import collect_tests
from hutchinson_course.grading.hidden import weight_of

import scoring

q1, q2, q3, q4 = exercise_set("jit")


def power_sum(x, n):
    total, term = jnp.zeros_like(x), jnp.ones_like(x)
    for _ in range(n):
        term = term * x
        total = total + term
    return total


def outcome(exercise, answer):
    return scoring.outcome(exercise, answer)


def test_missing_and_ellipsis_are_not_attempted():
    assert q1.evaluate({}).status == "not attempted"
    assert "not defined" in q1.evaluate({}).message
    assert outcome(q1, ...).status == "not attempted"


def test_q1_messages():
    assert "plain Python function" in outcome(q1, power_sum).message
    assert "Mark it static" in outcome(q1, jax.jit(power_sum)).message
    assert outcome(q1, jax.jit(power_sum, static_argnames="n")).passed
    off_by_one = jax.jit(lambda x, n: power_sum(x, n + 1), static_argnames="n")
    assert outcome(q1, off_by_one).status == "failed"
    assert "expected" in outcome(q1, off_by_one).message and "found" in outcome(q1, off_by_one).message


def test_q2_messages():
    @jax.jit
    def with_python_if(x, max_norm):
        norm = jnp.linalg.norm(x)
        if norm > max_norm:
            return x * max_norm / norm
        return x

    @jax.jit
    def nan_at_zero(x, max_norm):
        norm = jnp.linalg.norm(x)
        return x / norm * jnp.minimum(norm, max_norm)

    @functools.partial(jax.jit, static_argnames="max_norm")
    def static_max_norm(x, max_norm):
        return x

    assert "jnp.where" in outcome(q2, with_python_if).message
    message = outcome(q2, nan_at_zero).message
    assert "zero vector" in message and "nan" in message
    assert "keep it traced" in outcome(q2, static_max_norm).message


def test_q3_messages():
    def no_warmup(fn, *args, repeats=5):
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            durations.append(time.perf_counter() - start)
        return statistics.median(durations)

    def no_block(fn, *args, repeats=5):
        fn(*args)
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            durations.append(time.perf_counter() - start)
        return statistics.median(durations)

    def mean_not_median(fn, *args, repeats=5):
        jax.block_until_ready(fn(*args))
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            durations.append(time.perf_counter() - start)
        return statistics.mean(durations)

    assert "6 times (1 warm-up + 5 timed), found 5" in outcome(q3, no_warmup).message
    assert "block_until_ready" in outcome(q3, no_block).message
    assert "median" in outcome(q3, mean_not_median).message


def reference_q4(A, key, num_probes, probe_kind="rademacher", ddof=1, root=True):
    probes = sample_probes(key, num_probes, A.shape[0], probe_kind, A.dtype)
    samples = jnp.einsum("pi,ij,pj->p", probes, A, probes)
    scale = jnp.sqrt(num_probes) if root else num_probes
    return samples.mean(), samples.std(ddof=ddof) / scale


def test_q4_messages():
    statics = ("num_probes", "probe_kind")
    assert outcome(q4, jax.jit(reference_q4, static_argnames=statics)).passed
    no_root = jax.jit(functools.partial(reference_q4, root=False), static_argnames=statics)
    assert "standard error should be near" in outcome(q4, no_root).message
    only_estimate = jax.jit(lambda *a, **k: reference_q4(*a, **k)[0], static_argnames=statics)
    assert "pair (estimate, standard_error)" in outcome(q4, only_estimate).message
    traced_count = jax.jit(reference_q4, static_argnames="probe_kind")
    assert "must be static" in outcome(q4, traced_count).message


def test_crash_in_learner_code_is_an_error_with_its_line():
    def crashes(x, n):
        return x[None] @ undefined_name  # noqa: F821

    result = evaluate("f", lambda f: f(jnp.ones(2), 1), {"f": crashes})
    assert result.status == "error"
    assert "NameError" in result.message and "undefined_name" in result.message


def test_expect_helpers_explain_shape_dtype_and_values():
    with pytest.raises(Incorrect, match=r"should have shape \(3,\), found \(3, 1\)"):
        expect_array(jnp.ones((3, 1)), what="traces", shape=(3,))
    with pytest.raises(Incorrect, match="should have dtype float32, found int32"):
        expect_array(jnp.ones(3, dtype=jnp.int32), what="traces", dtype="float32")
    with pytest.raises(Incorrect, match="forget `return`"):
        expect_array(None, what="traces")
    with pytest.raises(Incorrect, match=r"off at index \(1,\): expected 2, found 5"):
        expect_close(jnp.array([1.0, 5.0]), [1.0, 2.0], what="traces")


def test_check_prints_for_the_learner(capsys):
    estimate_trace = ...  # noqa: F841  (the check reads the caller's variables)
    q1_like = q1.__class__(**{**q1.__dict__, "answer": "estimate_trace"})
    q1_like.check()
    assert "not attempted" in capsys.readouterr().out


def test_hints_come_one_at_a_time(capsys):
    q2.hint(1)
    q2.hint()
    out = capsys.readouterr().out
    assert "hint 1 of 3" in out and "hint 2 of 3" in out
    with pytest.raises(ValueError, match="has hints 1 to 3, not 7"):
        q2.hint(7)


def verdicts(exercise, answer):
    """The outcome of the check and of every grader test of ``exercise`` on ``answer``, by name."""
    return {name: scoring.outcome(exercise, answer, check)
            for name, check, _ in scoring.tests_of(exercise.set_name, exercise.id)}


def failures(exercise, answer):
    return {name: outcome.message for name, outcome in verdicts(exercise, answer).items() if not outcome.passed}


def test_q1_allows_a_wrapper_around_a_jitted_function_and_a_keyword_only_n():
    jitted = jax.jit(power_sum, static_argnames="n")

    def wrapper(x, n):
        return jitted(x, n=n)

    @functools.partial(jax.jit, static_argnames="n")
    def keyword_only(x, *, n):
        return power_sum(x, n)

    assert failures(q1, wrapper) == {}
    assert failures(q1, keyword_only) == {}
    assert "plain Python function" in failures(q1, lambda x, n: power_sum(x, n))["check"]


def _timer(summary=statistics.median, warm_up=True, block=jax.block_until_ready, time_warm_up=False):
    def time_jax_call(fn, *args, repeats=5):
        if warm_up and not time_warm_up:
            block(fn(*args))
        durations = []
        for _ in range(repeats + time_warm_up):
            start = time.perf_counter()
            block(fn(*args))
            durations.append(time.perf_counter() - start)
        return float(summary(durations))
    return time_jax_call


def test_q3_the_median_of_blocked_calls_after_a_warm_up_and_nothing_else():
    assert failures(q3, _timer()) == {}
    assert "not the mean" in failures(q3, _timer(statistics.mean))["check"]
    too_fast = failures(q3, _timer(min))
    assert "minimum" in too_fast["check"] and "test_q3_warm_up_then_median_of_blocked_calls" in too_fast
    timed_warm_up = failures(q3, _timer(time_warm_up=True))
    assert "do not time that warm-up call" in timed_warm_up["check"]
    assert "test_q3_warm_up_then_median_of_blocked_calls" in timed_warm_up

    def hard_coded(fn, *args, repeats=5):
        for _ in range(repeats + 1):
            jax.block_until_ready(fn(*args))
        return 0.02

    assert {"check", "test_q3_warm_up_then_median_of_blocked_calls"} <= set(failures(q3, hard_coded))
    method = failures(q3, _timer(block=lambda result: result.block_until_ready()))
    assert "wait for all of them" in method["check"] and "jax.block_until_ready" in method["check"]


def test_q3_weighs_its_point_so_that_missing_it_loses_most_marks():
    tests = collect_tests("jit", None, {e.id: e for e in exercise_set("jit")})["q3"]
    total = 1 + sum(weight_of(t) for t in tests)
    taught = next(t for t in tests if t.__name__ == "test_q3_warm_up_then_median_of_blocked_calls")
    assert 1 + weight_of(taught) >= total / 2


def test_q4_needs_no_error_for_an_unknown_probe_kind():
    assert failures(q4, jax.jit(reference_q4, static_argnames=("num_probes", "probe_kind"))) == {}


def test_an_error_raised_inside_jax_quotes_the_learners_line_not_jax_source():
    def adds_mismatched_shapes(x, n):
        return jnp.ones(3) + jnp.ones(4)

    result = evaluate("f", lambda f: f(jnp.ones(2), 1), {"f": adds_mismatched_shapes})
    assert result.status == "error" and "TypeError" in result.message
    assert "jnp.ones(3) + jnp.ones(4)" in result.message and "raise " not in result.message
