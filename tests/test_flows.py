"""The capstone's flow (hutchinson_course/flows): data, log-likelihood, Hutchinson in the solver, Hutch++.

The exact log-likelihood is checked against the change of variables done by hand for an affine
field, whose flow map is a matrix exponential; Hutchinson's log-likelihood against the exact one
over many probe draws (a z-test per point, Bonferroni-corrected); Hutch++ against the exact trace
where its sketch covers the matrix, and its error's decay against Hutchinson's on a
low-rank-plus-noise PSD matrix. Sizes are small: each solver program is compiled once.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg, stats

from hutchinson_course.estimators import core, fields, matrix_free
from hutchinson_course.flows import data, hutchplusplus, likelihood


def test_point_sets_shapes_mask_and_padding():
    sets = data.point_sets(seed=3, num_sets=6, max_points=20, min_points=10)
    assert sets.x.shape == (6, 20, 2) and sets.z.shape == (6, data.CONTEXT_DIM) and sets.mask.shape == (6, 20)
    sizes = sets.mask.sum(axis=1)
    assert np.all((sizes >= 10) & (sizes <= 20))
    assert np.all(sets.mask == (np.arange(20) < sizes[:, None])), "real points come first"
    assert np.all(sets.x[~sets.mask] == 0.0), "padding is zeros"
    assert np.all(sets.z[:, :len(data.SHAPES)].sum(axis=1) == 1.0), "a one-hot of the shape"
    again = data.point_sets(seed=3, num_sets=6, max_points=20, min_points=10)
    assert all(np.array_equal(a, b) for a, b in zip(sets, again))
    with pytest.raises(ValueError, match="shape must be one of"):
        data.shape_points("square", 1.0, 1.0, 5, np.random.default_rng(0))


def affine_params(a, b, context_dim):
    """Parameters of the one-layer neural field f(x, z, t) = A x + b (no tanh, z and t unused)."""
    dim = a.shape[0]
    w0 = np.zeros((dim + context_dim + 1, dim), np.float32)
    w0[:dim] = a.T  # the field computes x @ w0[:D]
    return {"w0": jnp.asarray(w0), "b0": jnp.asarray(b, jnp.float32)}


def test_exact_log_likelihood_of_an_affine_flow_is_the_change_of_variables():
    rng = np.random.default_rng(0)
    dim, context_dim = 3, 2
    a = 0.5 * rng.normal(size=(dim, dim))
    b = rng.normal(size=dim)
    x1 = rng.normal(size=(2, 4, dim)).astype(np.float32)
    z = rng.normal(size=(2, context_dim)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    log_p, stats_ = likelihood.log_likelihood(affine_params(a, b, context_dim), x1, z, mask, rtol=1e-7, atol=1e-7)
    assert bool(stats_["successful"])
    # dx/dt = A x + b: x1 = e^A x0 + A^-1 (e^A - I) b, and log det(dx1/dx0) = tr A.
    flow_map = linalg.expm(a)
    shift = np.linalg.solve(a, (flow_map - np.eye(dim)) @ b)
    x0 = np.linalg.solve(flow_map, (x1 - shift).reshape(-1, dim).T).T.reshape(x1.shape)
    expected = stats.multivariate_normal(np.zeros(dim)).logpdf(x0) - np.trace(a)
    np.testing.assert_allclose(np.asarray(log_p), np.where(mask, expected, 0.0), atol=2e-4)


def test_hutchinson_log_likelihood_is_unbiased_in_the_solver():
    rng = np.random.default_rng(1)
    sets, draws = 2, 400
    params = fields.init_field_params(jax.random.key(1), 2, 3, (16,))
    x1 = rng.normal(size=(sets, 5, 2)).astype(np.float32)
    z = rng.normal(size=(sets, 3)).astype(np.float32)
    mask = np.ones((sets, 5), bool)
    exact, _ = likelihood.log_likelihood(params, x1, z, mask, rtol=1e-6, atol=1e-6)
    # The draws are copies of the batch: every copy gets its own probes from the per-point keys.
    copies = lambda a: np.concatenate([a] * draws)
    estimates, solver = likelihood.log_likelihood(params, copies(x1), copies(z), copies(mask), jax.random.key(2),
                                                  divergence="hutchinson", num_probes=1, rtol=1e-6, atol=1e-6)
    assert bool(solver["successful"])
    estimates = np.asarray(estimates, np.float64).reshape(draws, sets, 5)
    spread = estimates.std(axis=0, ddof=1)
    assert np.all(spread > 1e-3), "one Rademacher probe at D = 2 is not exact for this field"
    z_scores = np.abs(estimates.mean(axis=0) - np.asarray(exact)) / (spread / np.sqrt(draws))
    bound = stats.norm.ppf(1 - 0.001 / (2 * z_scores.size))  # a 0.1% false alarm rate over all points
    assert z_scores.max() < bound, (z_scores.max(), bound)


def test_probes_drawn_once_keep_the_right_hand_side_deterministic():
    params = fields.init_field_params(jax.random.key(0), 2, 3, (8,))
    x = jnp.ones((1, 3, 2))
    z, mask, key = jnp.zeros((1, 3)), jnp.ones((1, 3), bool), jax.random.key(4)
    once = likelihood.dynamics(params, z, mask, key, divergence="hutchinson", num_probes=1)
    redrawn = likelihood.dynamics(params, z, mask, key, divergence="hutchinson", num_probes=1, redraw=True)
    state = (x, jnp.zeros((1, 3)))
    at = lambda rhs, t: np.asarray(jax.jit(rhs)(t, state, None)[1])
    assert np.allclose(at(once, 0.5), at(once, 0.5 + 1e-6), atol=1e-4), "the same probes a moment later"
    assert not np.allclose(at(redrawn, 0.5), at(redrawn, 0.5 + 1e-6), atol=1e-2), "new probes a moment later"


def low_rank_plus_noise(dim, rank, seed):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, rank)))
    noise = rng.normal(size=(dim, dim)) / dim
    return (basis * np.geomspace(100.0, 10.0, rank)) @ basis.T + 0.1 * noise @ noise.T  # PSD


def test_hutchplusplus_is_exact_when_the_sketch_covers_a_low_rank_matrix():
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.normal(size=(20, 4)) @ rng.normal(size=(4, 20)), jnp.float32)  # rank 4, not symmetric
    keys = jax.random.split(jax.random.key(0))
    sketch, residual = (core.sample_probes(k, 4, 20) for k in keys)
    found = jax.jit(hutchplusplus.hutchplusplus, static_argnums=0)(lambda v: a @ v, sketch, residual)
    np.testing.assert_allclose(float(found), float(jnp.trace(a)), rtol=1e-4)
    basis = hutchplusplus.sketch_basis(lambda v: a @ v, sketch)
    np.testing.assert_allclose(np.asarray(basis.T @ hutchplusplus.deflate(residual, basis).T), 0.0, atol=1e-5)


def test_hutchplusplus_mapped_over_points_is_exact_with_a_full_sketch():
    rng = np.random.default_rng(3)
    params = fields.init_field_params(jax.random.key(3), 4, 2, (8,))
    x_t = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    z, t = jnp.asarray(rng.normal(size=(2, 2)), jnp.float32), jnp.full((2, 1), 0.5)
    mask = jnp.asarray([[1, 1, 0], [1, 1, 1]], jnp.float32)
    found = hutchplusplus.batch_traces(params, x_t, z, t, mask, jax.random.key(0), num_matvecs=12)  # k = D = 4
    np.testing.assert_allclose(np.asarray(found), np.asarray(matrix_free.exact_traces(params, x_t, z, t, mask)),
                               atol=1e-4)
    assert float(found[0, 2]) == 0.0


def test_hutchplusplus_error_falls_faster_than_hutchinsons_on_low_rank_plus_noise():
    a = jnp.asarray(low_rank_plus_noise(60, 8, seed=4), jnp.float32)
    matvec, exact = (lambda v: a @ v), float(jnp.trace(a))
    budgets, repeats = (12, 48), 200
    errors = {"hutchinson": [], "hutch++": []}

    for num_matvecs in budgets:
        keys = jax.random.split(jax.random.key(num_matvecs), repeats)
        plain = jax.jit(jax.vmap(lambda k: core.hutchinson(matvec, core.sample_probes(k, num_matvecs, 60))))(keys)
        sketch_size, residual_size = hutchplusplus.matvec_split(num_matvecs)

        def plus_plus(k):
            first, second = jax.random.split(k)
            return hutchplusplus.hutchplusplus(matvec, core.sample_probes(first, sketch_size, 60),
                                               core.sample_probes(second, residual_size, 60))

        for name, estimates in (("hutchinson", plain), ("hutch++", jax.jit(jax.vmap(plus_plus))(keys))):
            errors[name].append(float(np.sqrt(np.mean((np.asarray(estimates) - exact) ** 2))) / exact)

    slope = {name: np.diff(np.log(e))[0] / np.diff(np.log(budgets))[0] for name, e in errors.items()}
    assert -0.8 < slope["hutchinson"] < -0.3, slope  # about -1/2
    assert slope["hutch++"] < slope["hutchinson"] - 0.3, slope
    assert errors["hutch++"][-1] < errors["hutchinson"][-1] / 3, errors


def test_xtrace_refuses_budgets_where_matfree_computes_the_exact_trace():
    a = jnp.asarray(low_rank_plus_noise(16, 2, seed=5), jnp.float32)
    with pytest.raises(ValueError, match="XTrace"):
        hutchplusplus.xtrace(lambda v: a @ v, jax.random.key(0), num_matvecs=16, dim=16)
    estimate = hutchplusplus.xtrace(lambda v: a @ v, jax.random.key(0), num_matvecs=6, dim=16)
    np.testing.assert_allclose(float(estimate), float(jnp.trace(a)), rtol=0.05)


def test_xtrace_from_samples_is_xtrace_with_the_same_samples():
    a = jnp.asarray(low_rank_plus_noise(16, 2, seed=6), jnp.float32)
    key = jax.random.key(3)
    normal = jax.random.normal(key, (3, 16))
    samples = normal * (np.sqrt(16) / jnp.linalg.norm(normal, axis=1, keepdims=True))  # matfree's sphere sampler
    found = hutchplusplus.xtrace_from_samples(lambda v: a @ v, samples)
    np.testing.assert_allclose(float(found), float(hutchplusplus.xtrace(lambda v: a @ v, key, num_matvecs=6, dim=16)),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="XTrace"):
        hutchplusplus.xtrace_from_samples(lambda v: a @ v, samples[:, :4])


def test_euler_steps_approach_the_adaptive_solve_and_bad_names_are_refused():
    rng = np.random.default_rng(7)
    params = fields.init_field_params(jax.random.key(7), 2, 3, (8,))
    x1 = rng.normal(size=(1, 4, 2)).astype(np.float32)
    z, mask = rng.normal(size=(1, 3)).astype(np.float32), np.ones((1, 4), bool)
    adaptive, _ = likelihood.log_likelihood(params, x1, z, mask)
    euler, stats_ = likelihood.log_likelihood(params, x1, z, mask, solver="euler", num_steps=64, max_steps=64)
    assert bool(stats_["successful"]) and int(stats_["num_steps"]) == 64
    np.testing.assert_allclose(np.asarray(euler), np.asarray(adaptive), atol=0.05)  # first order: error ~ 1 / 64
    with pytest.raises(ValueError, match="solver must be one of"):
        likelihood.log_likelihood(params, x1, z, mask, solver="rk4")
