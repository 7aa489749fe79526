"""The final milestone, ``final.batch_traces``: every layer in one call.

Across the 8 simulated devices of conftest.py, with a B the devices do not divide, sets of
different sizes (real padding) and chunks: the traces lie within five standard deviations of the
exact ones at every point, equal the one-device result (mesh=None) to float32 rounding, are exactly
0 on padding, are reproducible from brainstate's seed without a key, and their gradient is an
unbiased estimate of the exact divergence's gradient. Sizes are small and every program is
compiled once per module, so the file runs in seconds.
"""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from hutchinson_course.estimators import fields, final, matrix_free, sharded
from hutchinson_course.estimators.variance import estimator_tolerance

B, N, D, K, DC = 5, 12, 2, 2, 4
OPTIONS = dict(num_probes=8, chunk_size=4, checkpoint=True)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = fields.init_field_params(jax.random.key(0), D, DC, (8, 8))
    x_t = jnp.asarray(rng.normal(size=(B, N, D)), jnp.float32)
    z = jnp.asarray(rng.normal(size=(B, K, DC)), jnp.float32)
    t = jnp.asarray(rng.uniform(size=(B, 1)), jnp.float32)
    sizes = np.array([12, 3, 7, 1, 10])  # sets of different sizes, padded to N
    mask = jnp.asarray(np.arange(N) < sizes[:, None], jnp.float32)
    return params, x_t, z, t, mask


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() == 8 and B % 8 != 0
    return sharded.batch_mesh()


def test_sharded_traces_are_within_five_standard_deviations_of_the_exact_traces(problem, mesh):
    params, x_t, z, t, mask = problem
    traces = np.asarray(final.batch_traces(*problem, jax.random.key(1), mesh=mesh, **OPTIONS))
    exact = np.asarray(matrix_free.exact_traces(*problem))
    point_jacobian = jax.jacfwd(fields.vector_field, argnums=1)
    all_jacobians = jax.jit(jax.vmap(jax.vmap(point_jacobian, in_axes=(None, 0, None, None)), in_axes=(None, 0, 0, 0)))
    jacobians = np.asarray(all_jacobians(params, x_t, z, t[:, 0]))
    tolerance = np.array([[estimator_tolerance(jacobians[b, n], "rademacher", OPTIONS["num_probes"])
                           for n in range(N)] for b in range(B)])
    assert traces.shape == (B, N)
    assert np.all(np.abs(traces - exact) <= tolerance)


def test_sharded_equals_one_device_to_float32_rounding_and_padding_is_exactly_zero(problem, mesh):
    mask = problem[-1]
    key = jax.random.key(2)
    traces = final.batch_traces(*problem, key, mesh=mesh, **OPTIONS)
    single = final.batch_traces(*problem, key, mesh=None, **OPTIONS)
    assert traces.shape == single.shape == (B, N)
    np.testing.assert_allclose(np.asarray(traces), np.asarray(single), rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(jnp.where(mask == 0, traces, 0.0) == 0.0))
    assert bool(jnp.all(jnp.where(mask == 0, single, 0.0) == 0.0))
    assert bool(jnp.all(traces[3, 1:] == 0.0))  # the set of one point: 11 padded entries


def test_keyless_calls_are_reproducible_with_brainstate_seed_and_draw_new_probes(problem, mesh):
    mask = problem[-1]
    brainstate.random.seed(5)
    first = final.batch_traces(*problem, mesh=mesh, **OPTIONS)
    following = final.batch_traces(*problem, mesh=mesh, **OPTIONS)
    brainstate.random.seed(5)
    replay = final.batch_traces(*problem, mesh=mesh, **OPTIONS)
    assert bool(jnp.all(first == replay))
    assert bool(jnp.any((first != following) & (mask == 1)))


def test_gradient_is_unbiased_for_the_exact_divergence_gradient(problem, mesh):
    params = problem[0]
    gradient = jax.jit(jax.grad(final.divergence_loss),
                       static_argnames=("mesh", "num_probes", "chunk_size", "checkpoint"))
    keys = jax.random.split(jax.random.key(21), 64)
    with jax.set_mesh(mesh):
        # One at a time: see book/final.ipynb on XLA's rendezvous with many collective programs queued.
        samples = [jax.block_until_ready(gradient(*problem, key, mesh=mesh, **OPTIONS)) for key in keys]
    samples = jax.tree.map(lambda *leaves: np.stack(leaves), *samples)
    exact = jax.grad(matrix_free.exact_divergence_loss)(*problem)
    z_scores = jax.tree.leaves(matrix_free.gradient_z_scores(samples, exact))
    entries = sum(s.size for s in z_scores)
    # Each z-score of a correct estimator is about |t| with 63 degrees of freedom: by a union
    # bound, some entry of these ~150 exceeds 5 with probability under 0.2 % (fixed keys: the
    # outcome is the same on every run).
    assert entries * 2 * stats.t.sf(5, df=len(keys) - 1) < 2e-3
    assert max(float(s.max()) for s in z_scores) < 5
    assert jax.tree.structure(samples) == jax.tree.structure(params)
