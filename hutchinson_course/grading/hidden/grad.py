"""Hidden tests of the grad exercises: cases the notebook's checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hutchinson_course.estimators.fields import vector_field
from hutchinson_course.estimators.matrix_free import exact_divergence_loss, gradient_z_scores
from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.grad import (
    call_quadratic_form,
    check_exact_divergence,
    forward_mode_only,
    require_one_jvp,
    field_function,
    loss_and_grad_of,
    require_no_jacobian,
    reverse_mode_only,
    example_batch,
    example_field,
)
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches


def linear_map(seed: int, dim: int):
    """f(x) = A x for a random non-symmetric A, whose eps^T A eps is known exactly."""
    A = jax.random.normal(jax.random.key(seed), (dim, dim))
    return (lambda x: A @ x), np.asarray(A, dtype=np.float64)


def test_q1_exact_on_linear_maps_of_several_sizes(quadratic_form_jvp):
    for dim in (1, 3, 8):
        f, A = linear_map(dim, dim)
        eps = jax.random.normal(jax.random.key(10 + dim), (dim,))
        e = np.asarray(eps, dtype=np.float64)
        expect_close(observe(lambda: quadratic_form_jvp(f, jnp.zeros(dim), eps)), e @ A @ e,
                     what=f"eps^T A eps for D={dim}", rtol=1e-4, atol=1e-5)


@teaches(2)
def test_q1_one_forward_pass(quadratic_form_jvp):
    f, x = field_function(6, seed=11)
    eps = jax.random.rademacher(jax.random.key(12), (6,), dtype=jnp.float32)
    expected = float(eps @ jax.jvp(f, (x,), (eps,))[1])
    found = call_quadratic_form(quadratic_form_jvp, forward_mode_only(f), x, eps, "quadratic_form_jvp")
    expect_close(found, expected, what="eps^T J eps of a field that supports forward mode only", rtol=1e-4,
                 atol=1e-5)
    require_one_jvp(quadratic_form_jvp, f, x, eps)


def test_q1_maps_over_probes_without_a_jacobian(quadratic_form_jvp):
    f, x = field_function(9, seed=3)
    probes = jax.random.rademacher(jax.random.key(0), (6, 9), dtype=jnp.float32)
    found = observe(lambda: jax.jit(jax.vmap(lambda eps: quadratic_form_jvp(f, x, eps)))(probes))
    J = np.asarray(jax.jacfwd(f)(x), dtype=np.float64)
    P = np.asarray(probes, dtype=np.float64)
    expect_close(expect_array(found, what="quadratic forms for 6 probes", shape=(6,)),
                 np.einsum("pi,ij,pj->p", P, J, P), what="quadratic forms for 6 probes", rtol=1e-4, atol=1e-5)
    require_no_jacobian(quadratic_form_jvp, f, x, probes[0], "quadratic_form_jvp")


def test_q2_other_sizes_and_time_as_a_vector(exact_divergence):
    for dim in (1, 3):
        params, x, z, t = example_field(dim, seed=4)
        expected = float(jnp.trace(jax.jit(jax.jacrev(lambda y: vector_field(params, y, z, t)))(x)))
        found = observe(lambda: exact_divergence(params, x, z, jnp.reshape(t, (1,))))
        expect_close(expect_array(found, what=f"the divergence for D={dim}", shape=()), expected,
                     what=f"the divergence for D={dim}", rtol=1e-4, atol=1e-5)


@teaches(2)
def test_q2_forward_mode(exact_divergence):
    check_exact_divergence(exact_divergence)


def test_q2_maps_over_points_under_jit(exact_divergence):
    params, _, z, t = example_field(4, seed=5)
    xs = jax.random.normal(jax.random.key(6), (5, 4))
    found = observe(lambda: jax.jit(jax.vmap(exact_divergence, in_axes=(None, 0, None, None)))(params, xs, z, t))
    reverse_mode_trace = lambda x: jnp.trace(jax.jacrev(lambda y: vector_field(params, y, z, t))(x))
    expected = jax.jit(jax.vmap(reverse_mode_trace))(xs)
    expect_close(expect_array(found, what="divergences of 5 points", shape=(5,)), expected,
                 what="divergences of 5 points", rtol=1e-4, atol=1e-5)


def test_q3_exact_on_linear_maps_in_reverse_mode(quadratic_form_vjp):
    for dim in (1, 4):
        f, A = linear_map(20 + dim, dim)
        eps = jax.random.normal(jax.random.key(30 + dim), (dim,))
        e = np.asarray(eps, dtype=np.float64)
        expect_close(observe(lambda: quadratic_form_vjp(reverse_mode_only(f), jnp.ones(dim), eps)), e @ A @ e,
                     what=f"eps^T A eps for D={dim}", rtol=1e-4, atol=1e-5)


def test_q3_agrees_with_forward_mode_on_a_field(quadratic_form_vjp):
    f, x = field_function(7, seed=6)
    eps = jax.random.rademacher(jax.random.key(1), (7,), dtype=jnp.float32)
    expected = float(eps @ jax.jvp(f, (x,), (eps,))[1])
    expect_close(observe(lambda: jax.jit(lambda x, e: quadratic_form_vjp(f, x, e))(x, eps)), expected,
                 what="the reverse-mode quadratic form, compiled", rtol=1e-4, atol=1e-5)


def test_q4_other_sizes_and_probe_counts(divergence_loss_and_grad):
    params, x_t, z, t, mask = example_batch(dim=3, B=3, N=5, seed=7)
    loss_and_grad_of(divergence_loss_and_grad, params, x_t, z, t, mask, jax.random.key(4), 16)


def test_q4_gradient_is_unbiased_over_keys(divergence_loss_and_grad):
    params, x_t, z, t, mask = example_batch(seed=8)
    keys = jax.random.split(jax.random.key(9), 300)
    grads = observe(lambda: jax.jit(jax.vmap(
        lambda key: divergence_loss_and_grad(params, x_t, z, t, mask, key, 1)[1]))(keys))
    exact = jax.grad(exact_divergence_loss)(params, x_t, z, t, mask)
    worst = max(float(leaf.max()) for leaf in jax.tree.leaves(gradient_z_scores(grads, exact)))
    # A few hundred entries; a correct, unbiased gradient stays within 5 standard errors.
    if worst >= 5:
        raise Incorrect(f"Averaged over 300 keys, the gradient is {worst:.1f} standard errors away from the "
                        "gradient of the exact divergence: it is biased.")


check_test_names(__name__)  # every test above belongs to an exercise of this set
