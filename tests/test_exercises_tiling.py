"""The tiling exercises' checks and hidden tests: each typical mistake gets a specific message."""

import functools
import re

import jax
import jax.numpy as jnp
import pytest

from hutchinson_course.estimators.fields import vector_field
from hutchinson_course.estimators.matrix_free import jvp_matvec
from hutchinson_course.estimators.memory_aware import context_projection as package_projection
from hutchinson_course.estimators.memory_aware import projected_matvec, split_field
from hutchinson_course.estimators.per_point import point_trace
from hutchinson_course.exercises import exercise_set
from hutchinson_course.grading.hidden import tiling as hidden

import scoring

q1, q2, q3, q4 = exercise_set("tiling")


EXERCISES = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}


def outcome(exercise, answer, check=None):
    return scoring.outcome(exercise, answer, check=check)


def hidden_outcome(name, answer):
    """The outcome of hidden test ``name`` on ``answer``, through the split (collect, then judge)."""
    return outcome(EXERCISES[name.split("_")[1]], answer, check=getattr(hidden, name))


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [q1, q2, q3, q4])
def test_stubs_are_not_attempted(exercise):
    assert outcome(exercise, stub).status == "not attempted"


@pytest.mark.parametrize("exercise", [q1, q2, q3, q4])
def test_an_answer_that_is_not_a_function(exercise):
    found = outcome(exercise, 3)
    assert found.status == "failed" and found.message == f"`{exercise.answer}` should be a function, found int."


# q1 -------------------------------------------------------------------------------------

def compiled_figures(fn, *args):
    compiled = jax.jit(fn).lower(*args).compile()
    return {"flops": compiled.cost_analysis()["flops"], "temp_bytes": compiled.memory_analysis().temp_size_in_bytes}


def test_q1_messages():
    assert outcome(q1, compiled_figures).passed

    def before_optimization(fn, *args):
        lowered = jax.jit(fn).lower(*args)
        return {"flops": lowered.cost_analysis()["flops"], "temp_bytes": compiled_figures(fn, *args)["temp_bytes"]}

    def argument_bytes(fn, *args):
        compiled = jax.jit(fn).lower(*args).compile()
        return {"flops": compiled.cost_analysis()["flops"],
                "temp_bytes": compiled.memory_analysis().argument_size_in_bytes}

    assert "before optimization" in outcome(q1, before_optimization).message
    assert "arguments" in outcome(q1, argument_bytes).message
    assert "keys 'flops' and 'temp_bytes'" in outcome(q1, lambda fn, *args: 1.0).message


# q2 -------------------------------------------------------------------------------------

def test_q2_messages():
    assert outcome(q2, package_projection).passed

    def first_rows(params, z, t):  # forgets that the D rows of x come first
        return z @ params["w0"][:z.shape[0]] + jnp.reshape(t, ()) * params["w0"][-1] + params["b0"]

    def without_bias(params, z, t):
        return package_projection(params, z, t) - params["b0"]

    def time_as_a_row(params, z, t):  # a (1,) time times a (1, H0) slice: shape (1, H0)
        dim = params["w0"].shape[0] - z.shape[0] - 1
        return (z @ params["w0"][dim:-1] + jnp.reshape(t, (1,)) * params["w0"][-1:] + params["b0"])

    assert "come after the D rows for x" in outcome(q2, first_rows).message
    assert "bias b0" in outcome(q2, without_bias).message
    message = outcome(q2, time_as_a_row).message
    assert "should have shape (16,), found (1, 16)" in message and "scalar" in message


# q3 -------------------------------------------------------------------------------------

def test_q3_messages():
    assert outcome(q3, lambda fn, xs, c: jax.lax.map(fn, xs, batch_size=c)).passed

    def python_loop(fn, xs, chunk_size):
        return jnp.concatenate([jax.vmap(fn)(xs[i:i + chunk_size]) for i in range(0, xs.shape[0], chunk_size)])

    assert "one element at a time" in outcome(q3, lambda fn, xs, c: jax.lax.map(fn, xs)).message
    assert "unrolled into 3 copies" in outcome(q3, python_loop).message
    assert "all 11 elements at once" in outcome(q3, lambda fn, xs, c: jax.vmap(fn)(xs)).message
    dropped = outcome(q3, lambda fn, xs, c: jax.lax.map(fn, xs[:xs.shape[0] // c * c], batch_size=c))
    assert dropped.status == "failed" and "should have shape (11, 4), found (8, 4)" in dropped.message


# q4 -------------------------------------------------------------------------------------

def hoisted(params, x_points, z_ctx, t_val, mask_points, keys, num_probes):
    projection = package_projection(params, z_ctx, t_val)
    one_point = lambda x, m, k: point_trace(x, projection, jnp.reshape(t_val, ()), m, k, num_probes=num_probes,
                                            jacobian_matvec=projected_matvec(params))
    return jax.vmap(one_point)(x_points, mask_points, keys)


def mapped_field(field):
    """A per-point estimator of ``field`` that receives z tiled to every point."""
    def batch_traces(params, x_points, z_ctx, t_val, mask_points, keys, num_probes):
        z_tiled = jnp.repeat(z_ctx[None], x_points.shape[0], axis=0)
        one_point = lambda x, z, m, k: point_trace(x, z, jnp.reshape(t_val, ()), m, k, num_probes=num_probes,
                                                   jacobian_matvec=jvp_matvec(functools.partial(field, params)))
        return jax.vmap(one_point)(x_points, z_tiled, mask_points, keys)
    return batch_traces


def test_q4_messages():
    assert outcome(q4, hoisted).passed
    assert "once per point" in outcome(q4, mapped_field(split_field)).message
    assert "concatenates the context" in outcome(q4, mapped_field(vector_field)).message
    unmasked = lambda params, x, z, t, mask, keys, p: hoisted(params, x, z, t, jnp.ones_like(mask), keys, p)
    assert "must get exactly 0.0" in outcome(q4, unmasked).message
    one_key = lambda params, x, z, t, mask, keys, p: hoisted(params, x, z, t, mask, jnp.repeat(keys[:1], len(keys)), p)
    assert "same probes as point_trace" in outcome(q4, one_key).message


# Hidden tests: the solutions pass them, a typical wrong answer does not ------------------

SOLUTIONS = {"q1": compiled_figures, "q2": package_projection,
             "q3": lambda fn, xs, c: jax.lax.map(fn, xs, batch_size=c), "q4": hoisted}


@pytest.mark.parametrize("name", [name for name in dir(hidden) if name.startswith("test_")])
def test_hidden_tests_pass_for_the_solutions(name):
    found = hidden_outcome(name, SOLUTIONS[name.split("_")[1]])
    assert found.passed, found.message


def test_hidden_tests_catch_answers_that_only_fit_the_visible_check():
    def arrays_only(fn, xs, chunk_size):  # reshapes by hand: fails on a pytree of inputs
        full = xs.shape[0] // chunk_size * chunk_size
        chunks = xs[:full].reshape(-1, chunk_size, *xs.shape[1:])
        head = jax.lax.map(jax.vmap(fn), chunks).reshape(full, -1)
        return jnp.concatenate([head, jax.vmap(fn)(xs[full:])]) if full < xs.shape[0] else head

    assert outcome(q3, arrays_only).passed
    assert not hidden_outcome("test_q3_pytrees_and_edge_chunks", arrays_only).passed

    eight_probes = lambda params, x, z, t, mask, keys, num_probes: hoisted(params, x, z, t, mask, keys, 8)
    assert outcome(q4, eight_probes).passed
    assert not hidden_outcome("test_q4_other_batches", eight_probes).passed


class _AlwaysEqual:
    """Equal to everything: a figure that is not a number."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def test_q1_an_object_equal_to_everything_is_not_a_figure():
    def always_equal(fn, *args):
        return {"flops": _AlwaysEqual(), "temp_bytes": _AlwaysEqual()}

    assert outcome(q1, always_equal).status == "failed"
    assert "should be a number" in outcome(q1, always_equal).message
    for name in (name for name in dir(hidden) if name.startswith("test_q1_")):
        found = hidden_outcome(name, always_equal)
        assert found.status == "failed" and re.search("should be (a number|numbers)", found.message), found.message


def test_q1_figures_that_are_not_a_dict_are_explained():
    class Figures:
        pass

    for answer in (lambda fn, *args: Figures(), lambda fn, *args: {"flops": 1.0}):
        found = hidden_outcome("test_q1_figures_are_numbers", answer)
        assert found.status == "failed" and "a dict with the keys 'flops' and 'temp_bytes'" in found.message, \
            found.message


def padded_chunks(fn, xs, chunk_size):
    """ceil(n / c) chunks, the last one padded, in one scan: allowed by the statement."""
    n = xs.shape[0]
    steps = -(-n // chunk_size)
    padded = jnp.concatenate([xs, jnp.zeros((steps * chunk_size - n,) + xs.shape[1:], xs.dtype)])
    chunks = padded.reshape((steps, chunk_size) + xs.shape[1:])
    out = jax.lax.map(jax.vmap(fn), chunks)
    return out.reshape((steps * chunk_size,) + out.shape[2:])[:n]


def fori_chunks(fn, xs, chunk_size):
    """Full chunks in a fori_loop with a traced bound (a while loop), the remainder after it."""
    n = xs.shape[0]
    full = n // chunk_size
    out = jnp.zeros((n,) + jax.eval_shape(fn, xs[0]).shape, xs.dtype)

    def step(i, out):
        chunk = jax.lax.dynamic_slice_in_dim(xs, i * chunk_size, chunk_size)
        return jax.lax.dynamic_update_slice_in_dim(out, jax.vmap(fn)(chunk), i * chunk_size, 0)

    out = jax.lax.fori_loop(0, jnp.asarray(full), step, out)
    if n % chunk_size:
        out = out.at[full * chunk_size:].set(jax.vmap(fn)(xs[full * chunk_size:]))
    return out


@pytest.mark.parametrize("answer", [padded_chunks, fori_chunks])
def test_q3_padded_chunks_and_while_loops_are_allowed(answer):
    assert outcome(q3, answer).passed, outcome(q3, answer).message


def test_q4_a_projection_of_z_and_t_together_is_the_projection():
    def z_and_t_together(params, x_points, z_ctx, t_val, mask_points, keys, num_probes):
        dim = x_points.shape[1]
        projection = jnp.concatenate([z_ctx, jnp.reshape(t_val, (1,))]) @ params["w0"][dim:] + params["b0"]
        one_point = lambda x, m, k: point_trace(x, projection, jnp.reshape(t_val, ()), m, k, num_probes=num_probes,
                                                jacobian_matvec=projected_matvec(params))
        return jax.vmap(one_point)(x_points, mask_points, keys)

    assert outcome(q4, z_and_t_together).passed, outcome(q4, z_and_t_together).message


def test_q1_lowered_flops_lose_most_of_the_marks():
    def before_optimization(fn, *args):
        lowered = jax.jit(fn).lower(*args)
        return {"flops": lowered.cost_analysis()["flops"], "temp_bytes": compiled_figures(fn, *args)["temp_bytes"]}

    found = hidden_outcome("test_q1_figures_of_the_optimized_program", before_optimization)
    assert found.status == "failed" and "before optimization" in found.message, found.message
    assert hidden.test_q1_figures_of_the_optimized_program.weight >= 3
