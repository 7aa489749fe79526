"""The core every chapter's estimator is built from: probes, quadratic forms, the mean, the mask,
the masked mean's one policy, and per-point keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import core

A = jnp.array([[2.0, 1.0, 0.0], [-3.0, 0.5, 4.0], [0.0, 2.0, -1.0]])


def test_quadratic_forms_are_eps_A_eps_for_each_probe():
    probes = jax.random.normal(jax.random.key(0), (5, 3))
    found = core.quadratic_forms(lambda v: A @ v, probes)
    np.testing.assert_allclose(found, np.einsum("pi,ij,pj->p", probes, A, probes), rtol=1e-6)
    assert float(core.hutchinson(lambda v: A @ v, probes)) == pytest.approx(float(found.mean()), rel=1e-6)


def test_the_exact_trace_is_the_sum_over_basis_vectors():
    assert float(core.exact_trace(lambda v: A @ v, 3)) == pytest.approx(1.5)


def test_the_matvec_is_computed_once_for_all_probes_where_it_can_be():
    # The matrix is a closed-over constant: one batched product, not P products, in the program.
    jaxpr = jax.make_jaxpr(lambda p: core.quadratic_forms(lambda v: A @ v, p))(jnp.ones((7, 3)))
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 2  # A times all 7 probes at once, then the 7 dot products
    assert sorted(e.outvars[0].aval.shape for e in dots) == [(3, 7), (7,)]


@pytest.mark.parametrize("probe_kind", core.PROBE_KINDS)
def test_probes_have_identity_second_moment(probe_kind):
    probes = np.asarray(core.sample_probes(jax.random.key(1), 20_000, 3, probe_kind), np.float64)
    # 20000 draws: each entry of the second moment is within about 0.01 of I (5 standard errors 0.05).
    np.testing.assert_allclose(probes.T @ probes / len(probes), np.eye(3), atol=0.05)
    with pytest.raises(ValueError, match="probe_kind must be one of"):
        core.sample_probes(jax.random.key(1), 2, 3, "uniform")


def test_masked_is_exactly_zero_at_padding_even_for_nan():
    assert float(core.masked(jnp.float32(jnp.nan), 0.0)) == 0.0
    assert float(core.masked(jnp.float32(2.5), True)) == 2.5


def test_the_masked_mean_counts_only_real_points_and_an_all_padding_batch_is_zero():
    values = jnp.array([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0], [4.0, 4.0, 4.0]])
    mask = jnp.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_allclose(core.masked_mean(values, mask, axis=1), [2.0, 7.0, 0.0])
    assert float(core.masked_mean(values, mask)) == pytest.approx((1 + 3 + 5 + 7 + 9) / 5)
    assert float(core.masked_mean(values, jnp.zeros_like(mask))) == 0.0
    # The policy keeps gradients finite: no NaN from 0 / 0.
    grad = jax.grad(lambda v: core.masked_mean(v, jnp.zeros_like(mask)))(values)
    assert np.all(np.asarray(grad) == 0.0)


def test_sums_and_counts_add_across_blocks_where_means_do_not():
    values = jnp.arange(12.0).reshape(4, 3)
    mask = jnp.array([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    parts = [core.masked_sum_and_count(values[i:i + 2], mask[i:i + 2]) for i in (0, 2)]
    total, count = (sum(p[k] for p in parts) for k in (0, 1))
    assert float(core.mean_of_real(total, count)) == pytest.approx(float(core.masked_mean(values, mask)))
    mean_of_means = np.mean([float(core.mean_of_real(*p)) for p in parts])
    assert mean_of_means != pytest.approx(float(core.masked_mean(values, mask)))


def test_point_keys_are_the_split_of_one_key_over_the_grid():
    keys = core.point_keys(jax.random.key(3), (2, 4))
    assert keys.shape == (2, 4)
    np.testing.assert_array_equal(jax.random.key_data(keys),
                                  jax.random.key_data(jax.random.split(jax.random.key(3), (2, 4))))
    legacy = core.point_keys(jax.random.PRNGKey(3), (2, 4))
    assert legacy.shape == (2, 4, 2) and legacy.dtype == jnp.uint32
