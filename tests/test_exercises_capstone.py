"""The capstone exercises' checks and hidden tests: solved, unsolved and wrong answers get the right verdicts."""

import jax
import jax.numpy as jnp

from hutchinson_course.estimators import core
from hutchinson_course.exercises import exercise_set
from hutchinson_course.grading.hidden import capstone as hidden

import scoring

q1, q2, q3 = exercise_set("capstone")


def outcome(exercise, answer):
    return scoring.outcome(exercise, answer)


def hidden_outcome(exercise, test, answer):
    """A grader test's outcome on ``answer``, through the split (the judge must agree)."""
    return scoring.outcome(exercise, answer, test)


def stub(*args):
    raise NotImplementedError


# q1 -------------------------------------------------------------------------------------

def mean_estimate(matvec, probes):
    return jnp.mean(jax.vmap(lambda eps: eps @ matvec(eps))(probes))


def test_q1_accepts_every_correct_form():
    for answer in (mean_estimate, core.hutchinson, lambda m, p: core.quadratic_forms(m, p).sum() / p.shape[0]):
        assert outcome(q1, answer).passed, outcome(q1, answer).message
        assert hidden_outcome(q1, hidden.test_q1_many_gaussian_probes, answer).passed
        assert hidden_outcome(q1, hidden.test_q1_under_jit, answer).passed


def test_q1_wrong_answers_are_explained():
    summed = lambda matvec, probes: jnp.sum(jax.vmap(lambda eps: eps @ matvec(eps))(probes))
    by_dim = lambda matvec, probes: summed(matvec, probes) / probes.shape[1]
    negated = lambda matvec, probes: -mean_estimate(matvec, probes)
    vector = lambda matvec, probes: jax.vmap(lambda eps: eps @ matvec(eps))(probes)
    assert "not their sum" in outcome(q1, summed).message
    assert "divided the sum by D" in outcome(q1, by_dim).message
    assert "minus the expected" in outcome(q1, negated).message
    assert "should have shape ()" in outcome(q1, vector).message
    assert outcome(q1, summed).status == "failed"
    assert outcome(q1, stub).status == "not attempted"
    assert hidden_outcome(q1, hidden.test_q1_many_gaussian_probes, summed).status == "failed"


# q2 -------------------------------------------------------------------------------------

def once(a0, a1, key, num_probes):
    probes = core.sample_probes(key, num_probes, a0.shape[0])

    def rhs(t, state, args):
        a_t = a0 + t * a1
        return a_t @ state[0], core.hutchinson(lambda v: a_t @ v, probes)
    return rhs


def same_key_inside(a0, a1, key, num_probes):  # draws inside rhs, but from the same key: the same probes
    def rhs(t, state, args):
        probes = core.sample_probes(key, num_probes, a0.shape[0])
        return (a0 + t * a1) @ state[0], jnp.mean(jnp.einsum("pi,ij,pj->p", probes, a0 + t * a1, probes))
    return rhs


def test_q2_accepts_every_correct_form():
    for answer in (once, same_key_inside):
        assert outcome(q2, answer).passed, outcome(q2, answer).message
        assert hidden_outcome(q2, hidden.test_q2_other_sizes, answer).passed
        assert hidden_outcome(q2, hidden.test_q2_unbiased_over_keys, answer).passed


def test_q2_wrong_answers_are_explained():
    def redrawn_with_t(a0, a1, key, num_probes):
        def rhs(t, state, args):
            step_key = jax.random.fold_in(key, jnp.asarray(t * 1e7, jnp.int32))
            a_t = a0 + t * a1
            return a_t @ state[0], core.hutchinson(lambda v: a_t @ v, core.sample_probes(step_key, num_probes, a0.shape[0]))
        return rhs

    def redrawn_each_call(a0, a1, key, num_probes):
        keys = iter(jax.random.split(key, 1000))

        def rhs(t, state, args):
            a_t = a0 + t * a1
            return a_t @ state[0], core.hutchinson(lambda v: a_t @ v, core.sample_probes(next(keys), num_probes,
                                                                                         a0.shape[0]))
        return rhs

    def exact(a0, a1, key, num_probes):
        return lambda t, state, args: ((a0 + t * a1) @ state[0], jnp.trace(a0 + t * a1))

    def negated(a0, a1, key, num_probes):
        rhs = once(a0, a1, key, num_probes)
        return lambda t, state, args: (rhs(t, state, args)[0], -rhs(t, state, args)[1])

    def no_pair(a0, a1, key, num_probes):
        return lambda t, state, args: once(a0, a1, key, num_probes)(t, state, args)[1]

    assert "the probes change with t" in outcome(q2, redrawn_with_t).message
    assert "draws new probes at every call" in outcome(q2, redrawn_each_call).message
    assert "the exact trace" in outcome(q2, exact).message
    assert "+tr(df/dx)" in outcome(q2, negated).message
    assert "should return a pair" in outcome(q2, no_pair).message
    assert outcome(q2, stub).status == "not attempted"
    assert hidden_outcome(q2, hidden.test_q2_other_sizes, redrawn_with_t).status == "failed"


# q3 -------------------------------------------------------------------------------------

def test_q3_accepts_every_correct_form():
    answers = (lambda g, q: g - (g @ q) @ q.T, lambda g, q: g - jnp.einsum("pk,dk->pd", g @ q, q),
               lambda g, q: ((jnp.eye(q.shape[0]) - q @ q.T) @ g.T).T)
    for answer in answers:
        assert outcome(q3, answer).passed, outcome(q3, answer).message
        assert hidden_outcome(q3, hidden.test_q3_one_probe_and_a_wide_sketch, answer).passed
        assert hidden_outcome(q3, hidden.test_q3_under_jit, answer).passed


def test_q3_wrong_answers_are_explained():
    projection = lambda g, q: (g @ q) @ q.T
    sketch_coordinates = lambda g, q: g @ q
    half = lambda g, q: g - 0.5 * (g @ q) @ q.T
    assert "inside the sketch's range" in outcome(q3, projection).message
    assert "should have shape" in outcome(q3, sketch_coordinates).message
    assert "orthogonal to every column of Q" in outcome(q3, half).message
    assert outcome(q3, stub).status == "not attempted"
    assert hidden_outcome(q3, hidden.test_q3_one_probe_and_a_wide_sketch, projection).status == "failed"


def test_answers_that_are_not_functions_or_do_not_make_one():
    for exercise, name in ((q1, "divergence_estimate"), (q2, "make_right_hand_side"), (q3, "deflate")):
        assert outcome(exercise, 3).message == f"`{name}` should be a function, found int."
    made = outcome(q2, lambda a0, a1, key, num_probes: 3)
    assert made.status == "failed" and "should return the function rhs(t, state, args), found int" in made.message
