"""The jit chapter's reference estimator: correct, unbiased, with the variance the chapter states."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import estimator_tolerance, hutchinson_trace, probe_variance, sample_probes


def random_matrix(seed, dim=8, symmetric=False, diagonal_boost=0.0):
    A = np.random.default_rng(seed).normal(size=(dim, dim))
    if symmetric:
        A = (A + A.T) / 2
    return jnp.asarray(A + diagonal_boost * np.eye(dim), dtype=jnp.float32)


def single_probe_samples(A, probe_kind, count, seed=0):
    """``count`` independent one-probe estimates eps^T A eps."""
    keys = jax.random.split(jax.random.key(seed), count)
    return np.asarray(jax.vmap(lambda k: hutchinson_trace(A, k, 1, probe_kind))(keys), dtype=np.float64)


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_probes_have_identity_second_moment(probe_kind):
    probes = np.asarray(sample_probes(jax.random.key(3), 20_000, 4, probe_kind), dtype=np.float64)
    second_moment = probes.T @ probes / len(probes)
    # Each entry of the empirical E[eps eps^T] has standard error at most sqrt(3 / 20000) ~ 0.012.
    np.testing.assert_allclose(second_moment, np.eye(4), atol=0.06)


def test_rademacher_probes_are_plus_or_minus_one():
    probes = np.asarray(sample_probes(jax.random.key(0), 100, 5, "rademacher"))
    assert set(np.unique(probes)) == {-1.0, 1.0}


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_estimator_is_unbiased(probe_kind, symmetric):
    A = random_matrix(1, symmetric=symmetric, diagonal_boost=2.0)
    samples = single_probe_samples(A, probe_kind, 20_000)
    standard_error = np.sqrt(probe_variance(A, probe_kind) / len(samples))
    assert abs(samples.mean() - float(jnp.trace(A))) < 4 * standard_error


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_sample_variance_matches_the_formula(probe_kind, symmetric):
    # A large diagonal makes the two formulas differ by a factor of about 3, so a swapped
    # or wrong formula fails; 20000 samples estimate a variance to within a few percent.
    A = random_matrix(2, symmetric=symmetric, diagonal_boost=3.0)
    samples = single_probe_samples(A, probe_kind, 20_000, seed=5)
    assert samples.var() == pytest.approx(probe_variance(A, probe_kind), rel=0.1)


def test_rademacher_is_exact_for_a_diagonal_matrix():
    A = jnp.diag(jnp.arange(1.0, 7.0))
    assert float(hutchinson_trace(A, jax.random.key(0), 3)) == pytest.approx(21.0)
    assert probe_variance(A, "rademacher") == 0.0
    assert probe_variance(A, "gaussian") == pytest.approx(2 * float(jnp.sum(A**2)))


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_many_probes_land_within_the_derived_tolerance(probe_kind):
    for seed in range(5):
        A = random_matrix(10 + seed)
        estimate = float(hutchinson_trace(A, jax.random.key(seed), 2000, probe_kind))
        assert abs(estimate - float(jnp.trace(A))) < estimator_tolerance(A, probe_kind, 2000)


def test_tolerance_shrinks_like_one_over_root_probes():
    A = random_matrix(4)
    ratio = estimator_tolerance(A, "gaussian", 100) / estimator_tolerance(A, "gaussian", 400)
    assert ratio == pytest.approx(2.0, rel=1e-3)


def test_static_arguments_compile_one_program_per_value():
    A = random_matrix(6)
    before = hutchinson_trace._cache_size()
    for _ in range(3):
        hutchinson_trace(A, jax.random.key(0), num_probes=17, probe_kind="gaussian")
    hutchinson_trace(A, jax.random.key(0), num_probes=18, probe_kind="gaussian")
    assert hutchinson_trace._cache_size() - before == 2


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"square matrix \(D, D\), found shape \(3, 4\)"):
        hutchinson_trace(jnp.ones((3, 4)), jax.random.key(0), 4)
    with pytest.raises(ValueError, match="probe_kind must be one of .* found 'uniform'"):
        hutchinson_trace(jnp.eye(3), jax.random.key(0), 4, "uniform")
    with pytest.raises(ValueError, match="probe_kind"):
        probe_variance(np.eye(2), "uniform")
