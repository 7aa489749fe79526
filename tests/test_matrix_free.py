"""The grad chapter's matrix-free estimator: exact where it should be, unbiased, with the stated
variance, and with gradients that agree in expectation with the exact trace's gradient.

Statistical tests use fixed keys. Their bounds are a few standard errors computed from the
formulas (or, for gradients, from the samples), so a correct estimator passes them with
overwhelming probability and each test also shows that a plausible mistake would fail.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import per_point
from hutchinson_course.estimators.core import exact_trace, masked_mean
from hutchinson_course.estimators.fields import init_field_params, vector_field
from hutchinson_course.estimators.matrix_free import (
    batch_traces,
    divergence_loss,
    exact_divergence_loss,
    exact_traces,
    gradient_z_scores,
    jvp_matvec,
    neural_field,
    vjp_matvec,
)
from hutchinson_course.estimators.variance import estimator_tolerance, probe_variance

DC = 3
HIDDEN = (16, 16)


def field(dim, seed=0, hidden_sizes=HIDDEN):
    return init_field_params(jax.random.key(seed), dim, DC, hidden_sizes)


def point(dim, seed=1):
    keys = jax.random.split(jax.random.key(seed), 2)
    return jax.random.normal(keys[0], (dim,)), jax.random.normal(keys[1], (DC,)), jnp.float32(0.4)


def batch(dim, B=2, N=5, seed=2):
    keys = jax.random.split(jax.random.key(seed), 3)
    x_t = jax.random.normal(keys[0], (B, N, dim))
    z = jax.random.normal(keys[1], (B, DC))
    t = jax.random.uniform(keys[2], (B, 1))
    mask = jnp.ones((B, N)).at[-1, N - 2:].set(0.0)  # two padded points in the last batch
    return x_t, z, t, mask


# One point, through the package's layers: the products, the exact trace and the per-point estimate.

def field_jacobian(params, x, z, t):
    """The reference Jacobian, (D, D), by jax.jacfwd: independent of the estimator's products."""
    return jax.jacfwd(vector_field, argnums=1)(params, x, z, t)


def quadratic_form_jvp(params, x, z, t, eps):
    return eps @ jvp_matvec(neural_field(params))(x, z, t)(eps)


def quadratic_form_vjp(params, x, z, t, eps):
    return eps @ vjp_matvec(neural_field(params))(x, z, t)(eps)


def exact_divergence(params, x, z, t):
    return exact_trace(jvp_matvec(neural_field(params))(x, z, t), x.shape[0])


def hutchinson_trace(params, x, z, t, mask_val, key, *, num_probes, probe_kind="rademacher"):
    return per_point.point_trace(x, z, t, mask_val, key, num_probes=num_probes, probe_kind=probe_kind,
                                 jacobian_matvec=jvp_matvec(neural_field(params)))


# The field --------------------------------------------------------------------------------

def test_field_parameters_are_a_dict_of_arrays_with_the_documented_shapes():
    params = init_field_params(jax.random.key(0), 5, DC, (8, 6))
    assert {k: v.shape for k, v in params.items()} == {
        "w0": (5 + DC + 1, 8), "b0": (8,), "w1": (8, 6), "b1": (6,), "w2": (6, 5), "b2": (5,)}
    same = init_field_params(jax.random.key(0), 5, DC, (8, 6))
    other = init_field_params(jax.random.key(1), 5, DC, (8, 6))
    assert all(bool(jnp.all(params[k] == same[k])) for k in params)
    assert not bool(jnp.all(params["w1"] == other["w1"]))


def test_weights_have_variance_one_over_fan_in():
    params = init_field_params(jax.random.key(0), 4, DC, (256, 256))
    # 65536 draws estimate a variance to about 0.6 %: 10 % is a loose but decisive bound.
    assert float(jnp.var(params["w1"])) == pytest.approx(1 / 256, rel=0.1)


def test_time_may_be_a_scalar_or_a_length_one_vector():
    params = field(3)
    x, z, t = point(3)
    assert vector_field(params, x, z, t).shape == (3,)
    np.testing.assert_array_equal(vector_field(params, x, z, t), vector_field(params, x, z, jnp.reshape(t, (1,))))


# Exact quantities -------------------------------------------------------------------------

def test_a_linear_field_has_the_known_jacobian_and_trace():
    # With no hidden layer, f(x) = [x, z, t] @ w0 + b0, so J = w0[:D].T and tr(J) = tr(w0[:D, :D]).
    params = field(4, hidden_sizes=())
    x, z, t = point(4)
    np.testing.assert_allclose(field_jacobian(params, x, z, t), params["w0"][:4].T, rtol=1e-6)
    assert float(exact_divergence(params, x, z, t)) == pytest.approx(float(jnp.trace(params["w0"][:4, :4])), rel=1e-5)


@pytest.mark.parametrize("dim", [1, 2, 7])
def test_jvp_and_vjp_quadratic_forms_equal_eps_J_eps(dim):
    params = field(dim)
    x, z, t = point(dim)
    J = jax.jit(jax.jacrev(vector_field, argnums=1))(params, x, z, t)  # reverse mode: independent of jacfwd
    np.testing.assert_allclose(jax.jit(field_jacobian)(params, x, z, t), J, rtol=1e-5, atol=1e-6)
    by_jvp, by_vjp = jax.jit(quadratic_form_jvp), jax.jit(quadratic_form_vjp)
    for seed in range(3):
        eps = jax.random.normal(jax.random.key(seed), (dim,))
        expected = float(eps @ J @ eps)
        assert float(by_jvp(params, x, z, t, eps)) == pytest.approx(expected, rel=1e-5, abs=1e-6)
        assert float(by_vjp(params, x, z, t, eps)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_quadratic_form_never_builds_the_jacobian():
    dim = 9  # no parameter of the field has shape (9, 9)
    params = field(dim)
    x, z, t = point(dim)
    jaxpr = jax.make_jaxpr(quadratic_form_jvp)(params, x, z, t, jnp.ones(dim))
    shapes = {tuple(v.aval.shape) for eqn in jaxpr.eqns for v in eqn.outvars}
    assert (dim, dim) not in shapes
    jacfwd_jaxpr = jax.make_jaxpr(field_jacobian)(params, x, z, t)  # the check can see a Jacobian
    assert (dim, dim) in {tuple(v.aval.shape) for eqn in jacfwd_jaxpr.eqns for v in eqn.outvars}


# The estimator's statistics ---------------------------------------------------------------

def one_probe_estimates(params, x, z, t, probe_kind, count, seed=0):
    keys = jax.random.split(jax.random.key(seed), count)
    estimate = functools.partial(hutchinson_trace, num_probes=1, probe_kind=probe_kind)
    samples = jax.jit(jax.vmap(estimate, in_axes=(None, None, None, None, None, 0)))(params, x, z, t, 1.0, keys)
    return np.asarray(samples, dtype=np.float64)


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_estimator_is_unbiased_and_has_the_symmetrized_variance(probe_kind):
    dim = 6
    params = field(dim, seed=3)
    x, z, t = point(dim, seed=4)
    J = np.asarray(field_jacobian(params, x, z, t), dtype=np.float64)
    assert not np.allclose(J, J.T, atol=1e-2), "the test needs a non-symmetric Jacobian"
    samples = one_probe_estimates(params, x, z, t, probe_kind, 40_000)
    variance = probe_variance(J, probe_kind)
    assert abs(samples.mean() - np.trace(J)) < 4.5 * np.sqrt(variance / samples.size)
    # 40000 samples estimate a variance to within a few per cent: 10 % is a safe bound ...
    assert samples.var() == pytest.approx(variance, rel=0.1)
    # ... and the symmetric-matrix formula applied to J itself, which ignores the asymmetry, is outside it.
    raw = 2 * (np.sum(J**2) - (np.sum(np.diag(J) ** 2) if probe_kind == "rademacher" else 0.0))
    assert abs(raw - variance) > 0.25 * variance


def test_error_falls_like_one_over_root_probes():
    dim = 6
    params = field(dim, seed=3)
    x, z, t = point(dim, seed=4)
    J = field_jacobian(params, x, z, t)
    exact = float(jnp.trace(J))
    keys = jax.random.split(jax.random.key(9), 400)
    rms = {}
    for m in (4, 64):
        estimate = functools.partial(hutchinson_trace, num_probes=m)
        estimates = jax.jit(jax.vmap(estimate, in_axes=(None, None, None, None, None, 0)))(params, x, z, t, 1.0, keys)
        rms[m] = float(jnp.sqrt(jnp.mean((estimates - exact) ** 2)))
        # 400 estimates give the RMS error to about 4 %: compare with the formula at 20 %.
        assert rms[m] == pytest.approx(np.sqrt(probe_variance(J, "rademacher") / m), rel=0.2)
    assert rms[4] / rms[64] == pytest.approx(4.0, rel=0.3)  # sqrt(64 / 4)


# The (B, N) estimator -------------------------------------------------------------------------

@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_batched_estimates_are_within_the_tolerance_of_the_exact_traces(probe_kind):
    dim, num_probes = 3, 256
    params = field(dim)
    x_t, z, t, mask = batch(dim)
    traces = batch_traces(params, x_t, z, t, mask, jax.random.key(5), num_probes=num_probes, probe_kind=probe_kind)
    exact = exact_traces(params, x_t, z, t, mask)
    assert traces.shape == exact.shape == mask.shape and traces.dtype == jnp.float32
    jacobians = jax.vmap(jax.vmap(field_jacobian, in_axes=(None, 0, None, None)), in_axes=(None, 0, 0, 0))(params, x_t, z, t)
    for b, n in np.ndindex(*mask.shape):
        if mask[b, n]:
            tolerance = estimator_tolerance(jacobians[b, n], probe_kind, num_probes)
            assert abs(float(traces[b, n] - exact[b, n])) < tolerance
        else:
            assert float(traces[b, n]) == 0.0 and float(exact[b, n]) == 0.0


def test_batched_estimator_is_the_per_point_estimator_with_one_key_per_point():
    dim = 2
    params = field(dim)
    x_t, z, t, mask = batch(dim, B=2, N=3)
    key = jax.random.key(11)
    traces = batch_traces(params, x_t, z, t, mask, key, num_probes=3)
    keys = jax.random.split(key, mask.shape)
    per_point = jax.jit(functools.partial(hutchinson_trace, num_probes=3))
    for b, n in np.ndindex(*mask.shape):
        expected = per_point(params, x_t[b, n], z[b], t[b, 0], mask[b, n], keys[b, n])
        assert float(traces[b, n]) == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
    assert len({float(v) for v in traces[0]}) == 3, "each point should get its own probes"


def test_boolean_masks_work_like_float_masks():
    params = field(2)
    x_t, z, t, mask = batch(2)
    key = jax.random.key(0)
    np.testing.assert_array_equal(batch_traces(params, x_t, z, t, mask, key, num_probes=2),
                                  batch_traces(params, x_t, z, t, mask > 0, key, num_probes=2))


def test_num_probes_and_probe_kind_are_static():
    params = field(2)
    x_t, z, t, mask = batch(2)
    before = batch_traces._cache_size()
    for _ in range(2):
        batch_traces(params, x_t, z, t, mask, jax.random.key(0), num_probes=5, probe_kind="gaussian")
    batch_traces(params, x_t, z, t, mask, jax.random.key(0), num_probes=6, probe_kind="gaussian")
    assert batch_traces._cache_size() - before == 2
    with pytest.raises(ValueError, match="probe_kind must be one of"):
        batch_traces(params, x_t, z, t, mask, jax.random.key(0), num_probes=2, probe_kind="uniform")


def test_masked_mean_ignores_padding_and_survives_an_empty_mask():
    traces = jnp.array([[1.0, 2.0, 99.0]])
    assert float(masked_mean(traces, jnp.array([[1.0, 1.0, 0.0]]))) == pytest.approx(1.5)
    assert float(masked_mean(traces, jnp.zeros((1, 3)))) == 0.0


# Gradients through the estimator ------------------------------------------------------------

def sampled_gradients(params, data, keys, num_probes, probe_kind, probe_scale=1.0):
    """Gradients of divergence_loss for each key; probe_scale != 1 builds a deliberately biased estimator."""
    def loss(p, key):
        # Scaling the probes by s multiplies every quadratic form, and so the estimate, by s^2.
        return probe_scale**2 * divergence_loss(p, *data, key, num_probes=num_probes, probe_kind=probe_kind)
    return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(params, keys)


@pytest.mark.parametrize("probe_kind,num_probes", [("rademacher", 1), ("gaussian", 3)])
def test_gradient_is_unbiased_for_the_exact_divergence_gradient(probe_kind, num_probes):
    params = field(2)
    data = batch(2)
    exact = jax.grad(exact_divergence_loss)(params, *data)
    samples = sampled_gradients(params, data, jax.random.split(jax.random.key(21), 400), num_probes, probe_kind)
    worst = max(float(leaf.max()) for leaf in jax.tree.leaves(gradient_z_scores(samples, exact)))
    # About 400 entries: if all were Gaussian and correct, one beyond 5 standard errors would
    # turn up with probability about 2e-4. The same data catch a 20 % bias (next test).
    assert worst < 5


def test_a_biased_gradient_fails_the_same_check():
    params = field(2)
    data = batch(2)
    exact = jax.grad(exact_divergence_loss)(params, *data)
    samples = sampled_gradients(params, data, jax.random.split(jax.random.key(21), 400), 1, "rademacher",
                                probe_scale=np.sqrt(1.2))
    worst = max(float(leaf.max()) for leaf in jax.tree.leaves(gradient_z_scores(samples, exact)))
    assert worst > 5


def test_fixed_key_gives_a_deterministic_gradient_shaped_like_the_parameters():
    params = field(2)
    data = batch(2)
    grad = jax.grad(divergence_loss)
    first = grad(params, *data, jax.random.key(3), num_probes=2)
    second = grad(params, *data, jax.random.key(3), num_probes=2)
    assert jax.tree.structure(first) == jax.tree.structure(params)
    assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)))
    # The last bias shifts f but not its Jacobian: its gradient is exactly zero.
    assert bool(jnp.all(first[f"b{len(HIDDEN)}"] == 0))


def test_gradient_z_scores_handle_entries_without_spread():
    samples = {"moving": jnp.array([[1.0], [3.0]]), "still": jnp.zeros((2, 1))}
    exact = {"moving": jnp.array([2.0]), "still": jnp.zeros(1)}
    z = gradient_z_scores(samples, exact)
    assert float(z["moving"][0]) == 0.0 and float(z["still"][0]) == 0.0
    z = gradient_z_scores(samples, {"moving": jnp.array([4.0]), "still": jnp.ones(1)})
    assert float(z["moving"][0]) == pytest.approx(2.0, rel=1e-3)  # |2 - 4| / (std 1.414 / sqrt 2)
    assert float(z["still"][0]) > 1e5
