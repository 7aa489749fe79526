"""The grad exercises' checks and hidden tests: each typical mistake gets a specific message."""


import jax
import jax.numpy as jnp
import pytest

from hutchinson_course.estimators.fields import vector_field
from hutchinson_course.estimators.matrix_free import batch_traces
from hutchinson_course.exercises import exercise_set
from hutchinson_course.grading.hidden import grad as hidden

import scoring

q1, q2, q3, q4 = exercise_set("grad")
EXERCISES = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}


def outcome(exercise, answer):
    return scoring.outcome(exercise, answer)


def jvp_form(f, x, eps):
    return eps @ jax.jvp(f, (x,), (eps,))[1]


def vjp_form(f, x, eps):
    (eps_J,) = jax.vjp(f, x)[1](eps)
    return eps_J @ eps


def jacfwd_divergence(params, x, z, t):
    return jnp.trace(jax.jacfwd(vector_field, argnums=1)(params, x, z, t))


def loss_and_grad(params, x_t, z, t, mask, key, num_probes):
    def loss_fn(p):
        return jnp.sum(batch_traces(p, x_t, z, t, mask, key, num_probes=num_probes)) / jnp.sum(mask)
    return jax.value_and_grad(loss_fn)(params)


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [q1, q2, q3, q4])
def test_stubs_are_not_attempted(exercise):
    assert outcome(exercise, stub).status == "not attempted"


@pytest.mark.parametrize("exercise", [q1, q2, q3, q4])
def test_an_answer_that_is_not_a_function(exercise):
    found = outcome(exercise, 3.0)
    assert found.status == "failed" and f"`{exercise.answer}` should be a function, found float" in found.message


def test_q1_messages():
    assert outcome(q1, jvp_form).passed
    through_jacobian = lambda f, x, eps: eps @ jax.jacfwd(f)(x) @ eps
    assert "the full Jacobian" in outcome(q1, through_jacobian).message
    assert "that is J eps" in outcome(q1, lambda f, x, eps: jax.jvp(f, (x,), (eps,))[1]).message
    assert "tangent output" in outcome(q1, lambda f, x, eps: eps @ jax.jvp(f, (x,), (eps,))[0]).message
    off = outcome(q1, lambda f, x, eps: 2 * jvp_form(f, x, eps))
    assert off.status == "failed" and "expected" in off.message and "found" in off.message


def test_q2_messages():
    assert outcome(q2, jacfwd_divergence).passed
    jacrev_divergence = lambda params, x, z, t: jnp.trace(jax.jacrev(vector_field, argnums=1)(params, x, z, t))
    assert "asks for jax.jacfwd" in outcome(q2, jacrev_divergence).message
    hidden_verdict = scoring.outcome(q2, jacrev_divergence, check=hidden.test_q2_forward_mode)
    assert hidden_verdict.status == "failed" and "asks for jax.jacfwd" in hidden_verdict.message
    wrong_argument = lambda params, x, z, t: jax.jacfwd(vector_field)(params, x, z, t)
    assert "argnums=1" in outcome(q2, wrong_argument).message
    whole_jacobian = lambda params, x, z, t: jax.jacfwd(vector_field, argnums=1)(params, x, z, t)
    assert "return its trace" in outcome(q2, whole_jacobian).message
    summed = lambda params, x, z, t: jnp.sum(jax.jacfwd(vector_field, argnums=1)(params, x, z, t))
    assert "sums only the diagonal" in outcome(q2, summed).message


def test_q3_messages():
    assert outcome(q3, vjp_form).passed
    assert "reverse mode only" in outcome(q3, jvp_form).message
    tuple_times_eps = lambda f, x, eps: jax.vjp(f, x)[1](eps) @ eps
    assert "unpack it" in outcome(q3, tuple_times_eps).message
    returns_tuple = lambda f, x, eps: jax.vjp(f, x)[1](eps)
    assert "returned a tuple" in outcome(q3, returns_tuple).message
    returns_row = lambda f, x, eps: jax.vjp(f, x)[1](eps)[0]
    assert "dot product with eps" in outcome(q3, returns_row).message
    through_jacobian = lambda f, x, eps: eps @ jax.jacrev(f)(x) @ eps
    assert "the full Jacobian" in outcome(q3, through_jacobian).message


def test_q4_messages():
    assert outcome(q4, loss_and_grad).passed
    only_grads = lambda *args: loss_and_grad(*args)[1]
    assert "pair (loss, grads)" in outcome(q4, only_grads).message

    def plain_mean(params, x_t, z, t, mask, key, num_probes):
        loss_fn = lambda p: jnp.mean(batch_traces(p, x_t, z, t, mask, key, num_probes=num_probes))
        return jax.value_and_grad(loss_fn)(params)
    assert "padding included" in outcome(q4, plain_mean).message

    def gradient_in_points(params, x_t, z, t, mask, key, num_probes):
        loss_fn = lambda x: jnp.sum(batch_traces(params, x, z, t, mask, key, num_probes=num_probes)) / jnp.sum(mask)
        return jax.value_and_grad(loss_fn)(x_t)
    assert "with respect to the points" in outcome(q4, gradient_in_points).message

    def other_key(params, x_t, z, t, mask, key, num_probes):
        return loss_and_grad(params, x_t, z, t, mask, jax.random.key(123), num_probes)
    assert "with the key" in outcome(q4, other_key).message


@pytest.mark.parametrize("name,answer", [
    ("q1", jvp_form), ("q2", jacfwd_divergence), ("q3", vjp_form), ("q4", loss_and_grad)])
def test_hidden_tests_pass_the_reference_answers(name, answer):
    tests = [getattr(hidden, test) for test in dir(hidden) if test.startswith(f"test_{name}_")]
    assert len(tests) >= 2
    for test in tests:
        found = scoring.outcome(EXERCISES[name], answer, check=test)
        assert found.passed, (test.__name__, found)


def test_hidden_tests_catch_a_biased_gradient():
    def biased(params, x_t, z, t, mask, key, num_probes):
        loss, grads = loss_and_grad(params, x_t, z, t, mask, key, num_probes)
        return loss, jax.tree.map(lambda g: 1.3 * g, grads)
    found = scoring.outcome(q4, biased, check=hidden.test_q4_gradient_is_unbiased_over_keys)
    assert found.status == "failed" and "biased" in found.message


def test_q1_one_jvp_not_a_vjp_nor_two_jvps():
    assert "Use one jax.jvp" in outcome(q1, vjp_form).message
    twice = lambda f, x, eps: eps @ jax.jvp(f, (x,), (eps,))[1] + 0 * jnp.sum(jax.jvp(f, (x,), (eps,))[0])
    assert "evaluated 2 times" in outcome(q1, twice).message
    for answer in (vjp_form, twice):
        assert scoring.outcome(q1, answer, check=hidden.test_q1_one_forward_pass).status == "failed"


def test_q4_must_trace_under_jit():
    def boolean_index(params, x_t, z, t, mask, key, num_probes):
        return jax.value_and_grad(lambda p: batch_traces(p, x_t, z, t, mask, key, num_probes=num_probes)[
            mask == 1].mean())(params)

    def python_count(params, x_t, z, t, mask, key, num_probes):
        return jax.value_and_grad(lambda p: jnp.sum(batch_traces(p, x_t, z, t, mask, key, num_probes=num_probes))
                                  / float(mask.sum()))(params)

    assert "mask == 1" in outcome(q4, boolean_index).message
    assert "Python number" in outcome(q4, python_count).message
