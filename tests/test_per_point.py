"""The vmap chapter's per-point estimator: the field, the mask, the keys, the three strategies and their shapes."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vmap_spy import recording_vmap_levels

from hutchinson_course.estimators import per_point as pp
from hutchinson_course.estimators.variance import estimator_tolerance, probe_variance



def field_matrices(z, t, dim):
    """M(z_b, t_b) for each batch element: (B, D, D)."""
    return jax.vmap(lambda z_b, t_b: pp.field_matrix(z_b, t_b, dim))(z, t[:, 0])


def batch_inputs(B=3, N=5, D=4, Dc=3, K=6, context_kind="global", seed=0, real_points=None):
    """x_t (B, N, D), z (B, Dc) or (B, K, Dc), t (B, 1), mask (B, N): the first real_points[b] points are real."""
    keys = jax.random.split(jax.random.key(seed), 4)
    x_t = jax.random.normal(keys[0], (B, N, D))
    z_shape = (B, Dc) if context_kind == "global" else (B, K, Dc)
    z = jax.random.normal(keys[1], z_shape)
    t = jax.random.uniform(keys[2], (B, 1))
    real_points = [N] * B if real_points is None else real_points
    mask = jnp.arange(N)[None, :] < jnp.asarray(real_points)[:, None]
    return x_t, z, t, mask


@pytest.mark.parametrize("context_kind", pp.CONTEXT_KINDS)
def test_the_jacobian_of_the_field_is_its_matrix(context_kind):
    x_t, z, t, _ = batch_inputs(context_kind=context_kind)
    jacobian = jax.jacfwd(pp.vector_field)(x_t[0, 0], z[0], t[0, 0])
    np.testing.assert_allclose(jacobian, pp.field_matrix(z[0], t[0, 0], 4), rtol=1e-6, atol=1e-6)


def test_field_parameters_are_fixed_and_sized():
    first, again = pp.field_parameters(3, 5), pp.field_parameters(3, 5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert [p.shape for p in first] == [(3, 3), (3, 3), (5, 3, 3), (3,), (5, 3)]


def test_structured_context_is_mean_pooled_and_ignores_order():
    z = jax.random.normal(jax.random.key(1), (6, 3))
    pooled = pp.field_matrix(z.mean(axis=0), 0.5, 4)
    np.testing.assert_allclose(pp.field_matrix(z, 0.5, 4), pooled, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pp.field_matrix(z[::-1], 0.5, 4), pooled, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_per_point_estimate_is_unbiased_with_the_predicted_variance(probe_kind):
    x_t, z, t, _ = batch_inputs(D=5)
    M = pp.field_matrix(z[1], t[1, 0], 5)
    keys = jax.random.split(jax.random.key(2), 20_000)
    one_probe = functools.partial(pp.point_trace, num_probes=1, probe_kind=probe_kind)
    samples = np.asarray(jax.vmap(one_probe, in_axes=(None, None, None, None, 0))(
        x_t[1, 0], z[1], t[1, 0], True, keys), dtype=np.float64)
    variance = probe_variance(M, probe_kind)
    # The mean of 20000 samples has standard error sqrt(variance / 20000); 4 of them is a
    # bound a correct estimator exceeds with probability about 6e-5.
    assert abs(samples.mean() - float(jnp.trace(M))) < 4 * np.sqrt(variance / len(samples))
    # A variance from 20000 samples is within a few percent; the two probe kinds differ by far more here.
    assert samples.var() == pytest.approx(variance, rel=0.1)


def test_masked_points_are_exactly_zero_and_real_points_unchanged():
    x_t, z, t, mask = batch_inputs(real_points=[5, 2, 0])
    key = jax.random.key(3)
    traces = pp.batch_traces(x_t, z, t, mask, key)
    unmasked = pp.batch_traces(x_t, z, t, jnp.ones_like(mask), key)
    assert np.all(np.asarray(traces)[~np.asarray(mask)] == 0.0)
    np.testing.assert_array_equal(np.asarray(traces)[np.asarray(mask)], np.asarray(unmasked)[np.asarray(mask)])
    assert pp.point_trace(x_t[0, 0], z[0], t[0, 0], 0.0, key) == 0.0


def test_batch_means_count_only_real_points():
    x_t, z, t, mask = batch_inputs(real_points=[5, 2, 0])
    exact = pp.exact_traces(x_t, z, t, mask)
    per_batch_trace = jnp.trace(field_matrices(z, t, 4), axis1=1, axis2=2)
    np.testing.assert_allclose(pp.batch_means(exact, mask)[:2], per_batch_trace[:2], rtol=1e-6)
    assert float(pp.batch_means(exact, mask)[2]) == 0.0  # no real points
    # Whatever sits at padding points does not matter.
    garbage = jnp.where(mask, exact, 1e6)
    np.testing.assert_array_equal(pp.batch_means(garbage, mask), pp.batch_means(exact, mask))


@pytest.mark.parametrize("context_kind", pp.CONTEXT_KINDS)
def test_the_three_strategies_draw_the_same_probes(context_kind):
    x_t, z, t, mask = batch_inputs(context_kind=context_kind)
    keys = jax.random.split(jax.random.key(4), x_t.shape[:2])

    def probes_of_point(x_point, z_ctx, t_val, mask_val, key):
        return pp.sample_probes(key, 8, x_point.shape[0])

    probes = [jax.jit(functools.partial(mapping, probes_of_point))(x_t, z, t, mask, keys)
              for mapping in pp.MAPPINGS.values()]
    for other in probes[1:]:
        np.testing.assert_array_equal(other, probes[0])


@pytest.mark.parametrize("context_kind", pp.CONTEXT_KINDS)
def test_the_three_strategies_agree_to_rounding(context_kind):
    # Same keys, same probes, same matrices; only the order of float32 sums may differ (with
    # in_axes=None, M is computed once per batch and the products are batched differently),
    # so the traces agree to a few units of float32 rounding, not always bit for bit.
    x_t, z, t, mask = batch_inputs(context_kind=context_kind, real_points=[5, 3, 1])
    traces = [pp.batch_traces(x_t, z, t, mask, jax.random.key(5), strategy=s) for s in pp.STRATEGIES]
    for other in traces[1:]:
        np.testing.assert_allclose(other, traces[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy", pp.STRATEGIES)
def test_legacy_and_typed_keys_give_identical_traces(strategy):
    # A legacy key holds the same bits as the typed key of the same seed, so the probes and the
    # traces are identical, provided each strategy keeps a legacy key's trailing axis of 2 together.
    x_t, z, t, mask = batch_inputs()
    typed = pp.batch_traces(x_t, z, t, mask, jax.random.key(6), strategy=strategy)
    legacy = pp.batch_traces(x_t, z, t, mask, jax.random.PRNGKey(6), strategy=strategy)
    np.testing.assert_array_equal(typed, legacy)


def test_each_point_gets_its_own_probes():
    # With one key shared by the points of a batch, all its traces would be equal (M depends on
    # the batch only). With one key per point they scatter with the predicted variance.
    B, N, num_probes = 2, 400, 4
    x_t, z, t, mask = batch_inputs(B=B, N=N)
    traces = np.asarray(pp.batch_traces(x_t, z, t, mask, jax.random.key(7), num_probes=num_probes))
    for b, M in enumerate(field_matrices(z, t, 4)):
        predicted = probe_variance(M, "rademacher") / num_probes
        # 400 independent estimates give a variance within about 20% (their distribution is
        # discrete and skewed, so allow 30%).
        assert traces[b].var() == pytest.approx(predicted, rel=0.3)


@pytest.mark.parametrize("context_kind", pp.CONTEXT_KINDS)
@pytest.mark.parametrize("probe_kind", ["rademacher", "gaussian"])
def test_milestone_traces_are_within_the_derived_tolerance(context_kind, probe_kind):
    x_t, z, t, mask = batch_inputs(B=4, N=8, D=6, context_kind=context_kind, real_points=[8, 5, 8, 1])
    num_probes = 200
    for seed in range(3):
        traces = pp.batch_traces(x_t, z, t, mask, jax.random.key(seed), num_probes=num_probes,
                                             probe_kind=probe_kind)
        errors = np.abs(np.asarray(traces - pp.exact_traces(x_t, z, t, mask)))
        for b, M in enumerate(field_matrices(z, t, 6)):
            assert np.all(errors[b] < estimator_tolerance(M, probe_kind, num_probes))


def test_a_time_of_shape_b1_mapped_with_in_axes_none_is_explained():
    x_t, z, t, mask = batch_inputs()
    keys = jax.random.split(jax.random.key(8), x_t.shape[:2])
    over_points = jax.vmap(pp.point_trace, in_axes=(0, None, None, 0, 0))
    with pytest.raises(ValueError, match=r"t_val must be a scalar \(\), found shape \(1,\).*t\[:, 0\]"):
        jax.vmap(over_points)(x_t, z, t, mask, keys)


def test_bad_per_point_inputs_are_explained():
    x_t, z, t, mask = batch_inputs()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"x_point must be one point \(D,\), found shape \(5, 4\)"):
        pp.point_trace(x_t[0], z[0], t[0, 0], True, key)
    with pytest.raises(ValueError, match="each point needs its own key"):
        pp.point_trace(x_t[0, 0], z[0], t[0, 0], True, jax.random.split(key, 3))
    with pytest.raises(ValueError, match=r"z_ctx must be one context"):
        pp.point_trace(x_t[0, 0], jnp.ones((2, 3, 4)), t[0, 0], True, key)
    with pytest.raises(ValueError, match="strategy must be one of"):
        pp.batch_traces(x_t, z, t, mask, key, strategy="loop")


SHAPE_GRID = [  # (B, N, D, Dc, K): distinct sizes, so that a swapped axis cannot pass unnoticed
    (2, 3, 2, 4, 5),
    (1, 4, 3, 2, 3),
    (3, 2, 5, 6, 1),
]


@pytest.mark.parametrize("sizes", SHAPE_GRID)
@pytest.mark.parametrize("context_kind, strategy, key_kind",
                         list(itertools.product(pp.CONTEXT_KINDS, pp.STRATEGIES, pp.KEY_KINDS)))
def test_strategy_shapes_are_what_jax_sees(sizes, context_kind, strategy, key_kind):
    B, N, D, Dc, K = sizes
    x_t, z, t, mask = batch_inputs(B, N, D, Dc, K, context_kind)
    key = jax.random.key(0) if key_kind == "typed" else jax.random.PRNGKey(0)
    levels = pp.strategy_shapes(B=B, N=N, D=D, Dc=Dc, K=K, context_kind=context_kind, strategy=strategy,
                                key_kind=key_kind)
    shapes = [level["shapes"] for level in levels]

    # The output: jax.eval_shape of the real, jitted mapped estimator.
    mapped_estimator = functools.partial(pp.batch_traces, strategy=strategy)
    output = jax.eval_shape(mapped_estimator, x_t, z, t, mask, key)
    assert shapes[-1] == {"traces": output.shape} == {"traces": (B, N)}
    keys = jax.eval_shape(lambda k: jax.random.split(k, (B, N)), key)
    assert shapes[0] == {"x": x_t.shape, "z": z.shape, "t": t.shape, "mask": mask.shape, "key": keys.shape}

    # The levels inside: trace the real estimator's code (not its jit cache) with jax.vmap spied on.
    unjitted = functools.partial(pp.batch_traces.__wrapped__, num_probes=4, strategy=strategy)
    with recording_vmap_levels(lambda array: tuple(array.shape)) as records:
        jax.eval_shape(unjitted, x_t, z, t, mask, key)
    if strategy == "flatten":
        assert [kind for kind, _ in records] == ["entering", "inside", "result"]
        assert [shape for _, shape in records] == shapes[1:4]
    else:
        assert [kind for kind, _ in records] == ["entering", "inside", "entering", "inside", "result", "result"]
        assert records[0][1] == shapes[1] and records[1][1] == records[2][1] == shapes[2]
        assert records[3][1] == shapes[3]
        assert records[5][1] == shapes[4]


def test_strategy_shapes_rejects_bad_settings():
    with pytest.raises(ValueError, match="needs K"):
        pp.strategy_shapes(B=2, N=3, D=2, Dc=4, context_kind="structured")
    with pytest.raises(ValueError, match="strategy must be one of"):
        pp.strategy_shapes(B=2, N=3, D=2, Dc=4, strategy="loop")
    with pytest.raises(ValueError, match="context_kind must be one of"):
        pp.strategy_shapes(B=2, N=3, D=2, Dc=4, context_kind="local")
    with pytest.raises(ValueError, match="key_kind must be one of"):
        pp.strategy_shapes(B=2, N=3, D=2, Dc=4, key_kind="raw")
