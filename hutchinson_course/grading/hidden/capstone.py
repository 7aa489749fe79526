"""Hidden tests of the capstone exercises: other sizes, jit, and the statistics the checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hutchinson_course.estimators import core
from hutchinson_course.exercises.capstone import (check_deflation, check_estimate, check_rhs, field_matrices,
                                                  random_matrix, rademacher_probes)
from hutchinson_course.exercises.expect import expect_close
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches


@teaches(2)
def test_q1_many_gaussian_probes(divergence_estimate):
    probes = np.random.default_rng(3).normal(size=(33, 9)).astype(np.float32)
    check_estimate(divergence_estimate, random_matrix(3, 9), probes)


def test_q1_under_jit(divergence_estimate):
    a = jnp.asarray(random_matrix(4, 5))
    probes = jnp.asarray(rademacher_probes(4, 8, 5))
    found = observe(lambda: jax.jit(lambda p: divergence_estimate(lambda v: a @ v, p))(probes))
    expect_close(float(found), float(core.hutchinson(lambda v: a @ v, probes)), what="divergence_estimate under jax.jit",
                 rtol=1e-4, why="The estimate should be computed with jnp, so that it traces.")


@teaches(2)
def test_q2_other_sizes(make_right_hand_side):
    check_rhs(make_right_hand_side, seed=5, dim=6, num_probes=8)


def test_q2_unbiased_over_keys(make_right_hand_side):
    a0, a1 = field_matrices(9, 3)
    x = np.ones(3, np.float32)
    keys = jax.random.split(jax.random.key(9), 300)
    values = np.array(observe(lambda: [float(make_right_hand_side(a0, a1, k, 2)(0.25, (x, np.float32(0.0)), None)[1])
                                       for k in keys]))
    exact = float(np.trace(a0 + 0.25 * a1))
    z_score = abs(values.mean() - exact) / (values.std(ddof=1) / np.sqrt(len(values)) + 1e-6)
    if z_score > 5:
        raise Incorrect(f"Over 300 keys the divergence's mean is {values.mean():.4g}, but tr(a0 + t a1) = {exact:.4g} "
                        f"({z_score:.1f} standard errors away): the estimate should be unbiased.")


@teaches(2)
def test_q3_one_probe_and_a_wide_sketch(deflate):
    check_deflation(deflate, seed=4, num_probes=1, dim=10, rank=6)


def test_q3_under_jit(deflate):
    probes, basis = rademacher_probes(5, 4, 6), np.linalg.qr(np.random.default_rng(5).normal(size=(6, 2)))[0]
    found = observe(lambda: jax.jit(deflate)(jnp.asarray(probes), jnp.asarray(basis, jnp.float32)))
    expect_close(np.asarray(found), probes - (probes @ basis) @ basis.T, what="deflate under jax.jit", rtol=1e-4,
                 atol=1e-4)


check_test_names(__name__)  # every test above belongs to an exercise of this set
