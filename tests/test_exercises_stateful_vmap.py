"""The stateful vmap exercises' checks: each typical mistake gets a specific message."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brainstate.transform import vmap2
from brainstate.util.filter import OfType

from hutchinson_course.estimators.core import sample_probes
from hutchinson_course.exercises import exercise_set
from hutchinson_course.grading.hidden import stateful_vmap as hidden

import scoring

q1, q2, q3, q4 = exercise_set("stateful_vmap")


def outcome(exercise, answer, check=None):
    return scoring.outcome(exercise, answer, check=check)


# q1 -------------------------------------------------------------------------------------

def tanh_dense(weight_kind=brainstate.ParamState, draw="brainstate", divide_by_root=True, cache_weight=False):
    """A TanhDense class with one deliberate mistake, chosen by the arguments."""

    class TanhDense(brainstate.nn.Module):
        def __init__(self, in_size, out_size):
            super().__init__()
            if draw == "brainstate":
                weight = brainstate.random.normal(size=(in_size, out_size))
            else:
                weight = jax.random.normal(jax.random.key(0), (in_size, out_size))
            if divide_by_root:
                weight = weight / jnp.sqrt(in_size)
            self.weight = weight_kind(weight)
            self.bias = weight_kind(jnp.zeros(out_size))
            self.cached = weight

        def __call__(self, h):
            weight = self.cached if cache_weight else self.weight.value
            return jnp.tanh(h @ weight + self.bias.value)

    return TanhDense


def test_q1_messages():
    assert outcome(q1, tanh_dense()).passed
    assert "should be a class" in outcome(q1, tanh_dense()(2, 2)).message

    class NotAModule:
        pass

    assert "subclass brainstate.nn.Module" in outcome(q1, NotAModule).message
    assert "wrap the array" in outcome(q1, tanh_dense(weight_kind=lambda value: value)).message
    assert "belongs in brainstate.ParamState" in outcome(q1, tanh_dense(weight_kind=brainstate.ShortTermState)).message
    assert "not from a fixed jax.random.key" in outcome(q1, tanh_dense(draw="fixed key")).message
    assert "divide them by sqrt(in_size)" in outcome(q1, tanh_dense(divide_by_root=False)).message
    assert "not an array saved in __init__" in outcome(q1, tanh_dense(cache_weight=True)).message


def test_q1_stub_is_not_attempted():
    class TanhDense(brainstate.nn.Module):
        def __init__(self, in_size, out_size):
            super().__init__()
            raise NotImplementedError

    assert outcome(q1, TanhDense).status == "not attempted"


def test_q1_check_restores_the_learners_random_state():
    brainstate.random.seed(123)
    key_before = jax.random.key_data(brainstate.random.get_key())
    outcome(q1, tanh_dense())
    assert bool(jnp.all(jax.random.key_data(brainstate.random.get_key()) == key_before))


# q2 -------------------------------------------------------------------------------------

def tracked_scaler(state_in_axes="seen", policy="raise", mapper=vmap2, read_scale_once=False):
    """A make_tracked_scaler with one deliberate mistake, chosen by the arguments."""

    def make_tracked_scaler(scale, seen, calls):
        fixed_scale = scale.value

        def step(x):
            seen.value = seen.value + (x > 0)
            calls.value = calls.value + 1
            return (fixed_scale if read_scale_once else scale.value) * x

        if mapper is jax.vmap:
            return jax.vmap(step)
        axes = {"seen": {0: seen}, "by type": OfType(brainstate.ShortTermState), "none": None}[state_in_axes]
        return vmap2(step, state_in_axes=axes, unexpected_out_state_mapping=policy)

    return make_tracked_scaler


def test_q2_messages():
    assert outcome(q2, tracked_scaler()).passed
    assert "StatefulMapping" in outcome(q2, tracked_scaler(mapper=jax.vmap)).message
    assert "unexpected_out_state_mapping='raise'" in outcome(q2, tracked_scaler(policy="auto")).message
    assert "Select `seen` by instance" in outcome(q2, tracked_scaler(state_in_axes="by type")).message
    assert "put `seen` in state_in_axes" in outcome(q2, tracked_scaler(state_in_axes="none")).message
    assert "Read scale.value inside the mapped function" in outcome(q2, tracked_scaler(read_scale_once=True)).message


def test_q2_only_out_axes_changes_the_shape():
    def make_tracked_scaler(scale, seen, calls):
        def step(x):
            seen.value = seen.value + (x > 0)
            calls.value = calls.value + 1
            return scale.value * x

        return vmap2(step, state_out_axes={0: seen}, unexpected_out_state_mapping="raise")

    message = outcome(q2, make_tracked_scaler).message
    assert "keep its shape (4,), found (4, 4)" in message and "state_in_axes" in message


# q3 and q4 ------------------------------------------------------------------------------

def estimator(mapper=vmap2, probes="brainstate", probe_kind="rademacher", use_num_probes=True):
    """A batch_trace_estimates with one deliberate mistake, chosen by the arguments."""

    def batch_trace_estimates(matrices, num_probes):
        count = num_probes if use_num_probes else 1

        def one_estimate(A):
            eps = sample_probes(brainstate.random.split_key(), count, A.shape[0], probe_kind, A.dtype)
            return jnp.einsum("pi,ij,pj->p", eps, A, eps).mean()

        def one_estimate_with(A, key):
            eps = sample_probes(key, count, A.shape[0], probe_kind, A.dtype)
            return jnp.einsum("pi,ij,pj->p", eps, A, eps).mean()

        if probes == "one fixed key":
            return mapper(one_estimate_with, in_axes=(0, None))(matrices, jax.random.key(0))
        if probes == "fixed keys split per element":
            return mapper(one_estimate_with)(matrices, jax.random.split(jax.random.key(0), matrices.shape[0]))
        return mapper(one_estimate)(matrices)

    return batch_trace_estimates


def bernoulli_estimator(matrices, num_probes):
    """A correct answer that draws with brainstate.random.bernoulli instead of sample_probes."""

    def one_estimate(A):
        eps = jnp.where(brainstate.random.bernoulli(0.5, (num_probes, A.shape[0])), 1.0, -1.0)
        return jnp.einsum("pi,ij,pj->p", eps, A, eps).mean()

    return vmap2(one_estimate)(matrices)


def test_q3_messages():
    assert outcome(q3, estimator()).passed
    assert outcome(q3, bernoulli_estimator).passed
    assert "brainstate.transform.vmap2" in outcome(q3, estimator(mapper=jax.vmap)).message
    assert "every Rademacher probe" in outcome(q3, estimator(probe_kind="gaussian")).message
    assert "a fixed jax.random.key gives the same probes" in outcome(q3, estimator(probes="one fixed key")).message
    assert "not from a fixed jax.random.key" in outcome(q3, estimator(probes="fixed keys split per element")).message
    assert "num_probes Rademacher probes" in outcome(q3, estimator(use_num_probes=False)).message


def paired(shared=True, mapper=vmap2):
    """A paired_trace_differences, right or with its probes drawn twice, or mapped by jax.vmap."""

    def paired_trace_differences(matrices_a, matrices_c, num_probes):
        def one_difference(A, C):
            draw = lambda: sample_probes(brainstate.random.split_key(), num_probes, A.shape[0], "rademacher", A.dtype)
            eps_a = draw()
            eps_c = eps_a if shared else draw()
            return (jnp.einsum("pi,ij,pj->p", eps_a, A, eps_a) - jnp.einsum("pi,ij,pj->p", eps_c, C, eps_c)).mean()

        return mapper(one_difference, in_axes=(0, 0))(matrices_a, matrices_c)

    return paired_trace_differences


def test_q4_messages():
    assert outcome(q4, paired()).passed
    assert "Draw the probes once per pair" in outcome(q4, paired(shared=False)).message
    assert "brainstate.transform.vmap2" in outcome(q4, paired(mapper=jax.vmap)).message


def test_answers_that_are_not_functions():
    for exercise, name in ((q2, "make_tracked_scaler"), (q3, "batch_trace_estimates"), (q4, "paired_trace_differences")):
        assert f"`{name}` should be a function, found int" in outcome(exercise, 3).message


# hidden tests ---------------------------------------------------------------------------

ANSWERS = {"q1": tanh_dense(), "q2": tracked_scaler(), "q3": estimator(), "q4": paired()}
HIDDEN_TESTS = sorted(name for name in dir(hidden) if name.startswith("test_"))


@pytest.mark.parametrize("name", HIDDEN_TESTS)
def test_hidden_tests_pass_the_reference_answers(name):
    exercise_id = name.split("_")[1]
    exercise = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}[exercise_id]
    result = outcome(exercise, ANSWERS[exercise_id], check=getattr(hidden, name))
    assert result.passed, result.message


def test_hidden_tests_catch_numpy_probes():
    def numpy_probes(matrices, num_probes):
        def one_estimate(A):
            eps = jnp.asarray(np.random.choice([-1.0, 1.0], size=(num_probes, A.shape[0])), dtype=A.dtype)
            return jnp.einsum("pi,ij,pj->p", eps, A, eps).mean()

        return vmap2(one_estimate)(matrices)

    result = outcome(q3, numpy_probes, check=hidden.test_q3_compiled_draws_fresh_probes)
    assert result.status == "failed" and "become constants of the compiled program" in result.message


def test_q1_uniform_weights_with_the_right_spread_are_not_normal():
    class UniformDense(brainstate.nn.Module):
        def __init__(self, in_size, out_size):
            super().__init__()
            half_width = np.sqrt(3 / in_size)  # the spread of normal / sqrt(in_size)
            self.weight = brainstate.ParamState(brainstate.random.uniform(-half_width, half_width, (in_size, out_size)))
            self.bias = brainstate.ParamState(jnp.zeros(out_size))

        def __call__(self, h):
            return jnp.tanh(h @ self.weight.value + self.bias.value)

    assert "not a normal distribution" in outcome(q1, UniformDense).message


def by_hand(pairs: bool):
    """Keys split by hand from brainstate's random state and mapped with jax.vmap: not a vmap2."""
    def estimates(*args):
        *matrices, num_probes = args
        keys = jax.random.split(brainstate.random.split_key(), matrices[0].shape[0])

        def one(key, A, C=None):
            eps = sample_probes(key, num_probes, A.shape[0], "rademacher", A.dtype)
            return jnp.einsum("pi,ij,pj->p", eps, A if C is None else A - C, eps).mean()

        return jax.vmap(one)(keys, *matrices)
    return estimates


def test_q3_and_q4_keys_split_by_hand_for_jax_vmap_are_not_a_vmap2():
    assert "does not call vmap2" in outcome(q3, by_hand(pairs=False)).message
    assert "does not call vmap2" in outcome(q4, by_hand(pairs=True)).message


def test_keys_split_by_hand_lose_most_of_the_marks():
    for exercise_id, pairs in (("q3", False), ("q4", True)):
        got, most, scored = scoring.points("stateful_vmap", exercise_id, by_hand(pairs=pairs))
        assert got < most / 2, scored
        assert any(t["weight"] >= 3 and t["status"] == "failed" and "does not call vmap2" in t["message"]
                   and not t["message"].startswith("The estimates look right") for t in scored["tests"][1:])
