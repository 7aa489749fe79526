"""The stateful vmap chapter's estimator: a brainstate field, keyless probes, the explicit-key twin.

Statistical tests use fixed seeds, so they are deterministic; their bounds are chosen so that a
correct estimator would fail them with negligible probability for other seeds too (each bound is
explained where it is used), while the wrong estimators below fail them by a wide margin.
"""

import functools

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.compilations import count_compilations
from hutchinson_course.estimators import fields, matrix_free, per_point, stateful
from hutchinson_course.estimators.variance import estimator_tolerance, probe_variance

D, Dc, B, N = 2, 4, 2, 4
REPEATS = 400  # independent estimates per estimator in the distribution tests


@pytest.fixture(scope="module")
def params():
    return fields.init_field_params(jax.random.key(0), D, Dc)


@pytest.fixture(scope="module")
def field(params):
    return stateful.NeuralField(params)


@pytest.fixture(scope="module")
def batch():
    x_t = jax.random.normal(jax.random.key(1), (B, N, D))
    z = jax.random.normal(jax.random.key(2), (B, Dc))
    t = jnp.array([[0.3], [0.8]])
    mask = jnp.ones((B, N)).at[1, 3].set(0.0)
    return x_t, z, t, mask


def explicit_samples(params, batch, repeats, seed, **options):
    """``repeats`` estimates of the grad chapter's explicit-key estimator: (repeats, B, N)."""
    one = lambda key: matrix_free.batch_traces(params, *batch, key, **options)
    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), repeats)))


def stateful_samples(field, batch, repeats, seed, **options):
    brainstate.random.seed(seed)
    return np.asarray(stateful.repeated_traces(field, *batch, repeats, **options))


SETTINGS = [("rademacher", 1), ("gaussian", 4)]


@pytest.fixture(scope="module")
def samples(params, field, batch):
    """(stateful, explicit) estimates, (REPEATS, B, N) each, for each (probe_kind, num_probes) in SETTINGS."""
    found = {}
    for seed, (probe_kind, num_probes) in enumerate(SETTINGS):
        options = dict(num_probes=num_probes, probe_kind=probe_kind)
        found[probe_kind, num_probes] = (stateful_samples(field, batch, REPEATS, seed, **options),
                                         explicit_samples(params, batch, REPEATS, seed, **options))
    return found


@pytest.fixture(scope="module")
def jacobians(params, batch):
    """J at every point: (B, N, D, D)."""
    x_t, z, t, _ = batch
    over_points = jax.vmap(jax.jacfwd(fields.vector_field, argnums=1), in_axes=(None, 0, None, None))
    return np.asarray(jax.jit(jax.vmap(over_points, in_axes=(None, 0, 0, 0)))(params, x_t, z, t))


def real_points(batch):
    mask = np.asarray(batch[3])
    return [(b, n) for b in range(B) for n in range(N) if mask[b, n] != 0]


def test_field_is_the_grad_chapters_mlp(params, field):
    points = jax.random.normal(jax.random.key(3), (5, D))
    z0, t0 = jnp.linspace(-1.0, 1.0, Dc), jnp.float32(0.4)
    for x in points:
        np.testing.assert_allclose(field(x, z0, t0), fields.vector_field(params, x, z0, t0), rtol=1e-6, atol=1e-6)


def test_weights_live_in_param_states(params, field):
    states = field.states(brainstate.ParamState)
    assert len(states) == len(params)
    assert all(isinstance(s, brainstate.ParamState) for s in states.values())
    values = field.param_values()
    assert values.keys() == params.keys()
    assert all(bool(jnp.all(values[name] == params[name])) for name in params)


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_traces_within_tolerance_of_exact(params, field, batch, jacobians, probe_kind):
    num_probes = 64
    brainstate.random.seed(0)
    traces = np.asarray(stateful.batch_traces(field, *batch, num_probes=num_probes, probe_kind=probe_kind))
    exact = np.asarray(stateful.exact_traces(field, *batch))
    np.testing.assert_array_equal(exact, np.asarray(matrix_free.exact_traces(params, *batch)))
    assert traces.shape == (B, N)
    assert np.all(traces[np.asarray(batch[3]) == 0] == 0.0)
    for b, n in real_points(batch):
        # Five standard deviations of this point's estimate (estimator_tolerance).
        assert abs(traces[b, n] - exact[b, n]) <= estimator_tolerance(jacobians[b, n], probe_kind, num_probes)


def test_seed_replays_and_each_call_draws_anew(field, batch):
    run = functools.partial(stateful.batch_traces, field, *batch, num_probes=8, probe_kind="gaussian")
    brainstate.random.seed(3)
    first, second = np.asarray(run()), np.asarray(run())
    brainstate.random.seed(3)
    replay = np.asarray(run())
    brainstate.random.seed(4)
    other_seed = np.asarray(run())
    real = np.asarray(batch[3]) == 1
    np.testing.assert_array_equal(first, replay)
    # Gaussian estimates are continuous: a repeated value at a real point would mean repeated probes.
    assert not np.any(first[real] == second[real])
    assert not np.any(first[real] == other_seed[real])


def test_new_weights_do_not_recompile_and_are_used(field, batch):
    run = functools.partial(stateful.batch_traces, field, *batch, num_probes=64)
    brainstate.random.seed(6)
    original = run()
    last = field.layers[-1].weight
    saved = last.value
    try:
        last.value = 2 * saved  # the last layer is linear: this doubles the Jacobian
        with count_compilations() as count:
            brainstate.random.seed(6)
            doubled = run()
    finally:
        last.value = saved
    assert count.compilations == 0
    np.testing.assert_allclose(doubled, 2 * original, rtol=1e-5, atol=1e-6)


def test_points_get_independent_probes(batch, samples):
    # Under independence the sample correlation of two points' estimates over K repetitions has
    # standard deviation about 1 / sqrt(K); 5 / sqrt(K) is a bound chance alone exceeds with
    # probability under 1e-6 per pair. Shared probes (plain jax.vmap) fail it: see the next test.
    for stateful_estimates, _ in samples.values():
        real = stateful_estimates[:, np.asarray(batch[3]) == 1]
        correlations = np.corrcoef(real.T)[np.triu_indices(real.shape[1], k=1)]
        assert np.abs(correlations).max() < 5 / np.sqrt(REPEATS)


def test_the_independence_test_catches_shared_probes(params, batch):
    # Two copies of the same point with the same probes give equal estimates: correlation 1.
    x_t, z, t, mask = batch
    x_same = jnp.broadcast_to(x_t[:, :1], x_t.shape)
    field = stateful.NeuralField(params)

    def shared_probe_traces():
        per_point = functools.partial(stateful.point_trace, field, num_probes=1)
        over_points = jax.vmap(per_point, in_axes=(0, None, None, 0))  # plain jax.vmap: one key for all points
        return brainstate.transform.vmap2(over_points, in_axes=(0, 0, 0, 0))(x_same, z, t[:, 0], mask)

    brainstate.random.seed(8)
    samples = np.asarray(brainstate.transform.jit(
        brainstate.transform.vmap2(shared_probe_traces, in_axes=None, axis_size=50))())
    assert np.corrcoef(samples[:, 0, 0], samples[:, 0, 1])[0, 1] > 0.99


@pytest.mark.parametrize("setting", SETTINGS)
def test_same_distribution_as_the_explicit_key_estimator(samples, setting):
    # Same weights, same inputs, K = 400 estimates each. distribution_z_scores gives, per point, the
    # two-sample z statistic of the means and of the variances (the latter with the exact standard
    # error of a sample variance). Equal distributions give |z| of order 1; the bound 5 is exceeded
    # by chance with probability under 1e-6 per statistic (about 3e-5 over all 2 * B * N here).
    mean_z, variance_z = stateful.distribution_z_scores(*samples[setting])
    assert mean_z.max() < 5
    assert variance_z.max() < 5


@pytest.mark.parametrize("setting", SETTINGS)
def test_both_estimators_match_the_theory(params, batch, jacobians, samples, setting):
    # Each estimator on its own, against the exact trace and the exact variance
    # probe_variance(J) / num_probes: the mean within 5 standard errors, and the sample variance
    # within 5 of its standard errors, sqrt(mu4 / K - sigma^4 (K - 3) / (K (K - 1))), with the
    # fourth central moment mu4 estimated from the samples (no Gaussian assumption).
    probe_kind, num_probes = setting
    exact = np.asarray(matrix_free.exact_traces(params, *batch))
    for estimates in samples[setting]:
        for b, n in real_points(batch):
            at_point = estimates[:, b, n].astype(np.float64)
            variance = probe_variance(jacobians[b, n], probe_kind) / num_probes
            assert abs(at_point.mean() - exact[b, n]) < 5 * np.sqrt(variance / REPEATS)
            mu4 = np.mean((at_point - at_point.mean()) ** 4)
            k = REPEATS
            variance_error = np.sqrt(mu4 / k - variance**2 * (k - 3) / (k * (k - 1)))
            assert abs(at_point.var(ddof=1) - variance) < 5 * variance_error


def test_the_distribution_test_catches_wrong_estimators(batch, samples):
    # A bias of 0.05 (several standard errors of a mean of 400 one-probe estimates) and half the
    # variance (what two probes instead of one would give) must both be flagged at some point.
    reference, explicit = samples["rademacher", 1]
    biased = explicit + 0.05 * np.asarray(batch[3])
    assert stateful.distribution_z_scores(reference, biased)[0].max() > 5
    centre = explicit.mean(axis=0)
    half_variance = centre + (explicit - centre) / np.sqrt(2)
    assert stateful.distribution_z_scores(reference, half_variance)[1].max() > 5


def test_z_scores_of_known_distributions():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(size=(2000, 3)), rng.normal(size=(3000, 3))
    mean_z, variance_z = stateful.distribution_z_scores(same_a, same_b)
    assert mean_z.shape == variance_z.shape == (3,)
    assert mean_z.max() < 5 and variance_z.max() < 5
    mean_z, variance_z = stateful.distribution_z_scores(same_a, 1.3 * rng.normal(size=(2000, 3)))
    assert variance_z.min() > 5
    constant = np.zeros((100, 2))
    assert np.all(np.array(stateful.distribution_z_scores(constant, constant)) == 0)


def test_only_the_key_source_differs_from_the_grad_chapters_point_trace(params, batch):
    x_t, z, t, mask = batch
    field = stateful.NeuralField(params)
    brainstate.random.seed(12)
    found = stateful.point_trace(field, x_t[0, 0], z[0], t[0, 0], mask[0, 0], num_probes=3)
    brainstate.random.seed(12)
    expected = per_point.point_trace(x_t[0, 0], z[0], t[0, 0], mask[0, 0], brainstate.random.split_key(),
                                     num_probes=3, jacobian_matvec=matrix_free.jvp_matvec(field))
    np.testing.assert_array_equal(found, expected)
    with pytest.raises(ValueError, match="probe_kind"):
        stateful.point_trace(field, x_t[0, 0], z[0], t[0, 0], mask[0, 0], num_probes=3, probe_kind="uniform")
