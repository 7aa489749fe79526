"""The tiling chapter's memory-aware estimator: the split field equals the concatenated one, every
strategy and every chunking draws the same probes and returns the same traces, the estimate is
unbiased, and the memory claims of the chapter hold in the compiled programs.

Equalities between programs are checked to float32 rounding (they add the same numbers in other
orders). The statistical test uses fixed keys and a bound of five standard errors computed from
the Jacobians, which a correct estimator exceeds with negligible probability.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hutchinson_course.estimators import matrix_free, per_point
from hutchinson_course.estimators.fields import init_field_params, vector_field
from hutchinson_course.estimators.memory_aware import (
    FIELDS,
    batch_traces,
    context_projection,
    exact_traces,
    field_from_projection,
    first_layer_parts,
    split_field,
    strategy_traces,
)
from hutchinson_course.estimators.per_point import STRATEGIES
from hutchinson_course.exercises.tiling import products_over

D, DC, HIDDEN = 3, 5, (8, 8)


def problem(B=3, N=7, dim=D, context_dim=DC, seed=0):
    """(params, x_t (B, N, D), z (B, Dc), t (B, 1), mask (B, N) with two padded points, key)."""
    params = init_field_params(jax.random.key(seed), dim, context_dim, HIDDEN)
    keys = jax.random.split(jax.random.key(seed + 1), 3)
    x_t = jax.random.normal(keys[0], (B, N, dim))
    z = jax.random.normal(keys[1], (B, context_dim))
    t = jax.random.uniform(keys[2], (B, 1))
    mask = jnp.ones((B, N)).at[-1, -2:].set(0.0)
    return params, x_t, z, t, mask, jax.random.key(seed + 2)


def point_trace(field_at, x_point, mask_val, key, *, num_probes):
    """per_point.point_trace for a field of x alone (no context, no time)."""
    return per_point.point_trace(x_point, jnp.zeros(1), jnp.float32(0.0), mask_val, key, num_probes=num_probes,
                                 jacobian_matvec=matrix_free.jvp_matvec(lambda x, z_ctx, t_val: field_at(x)))


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


# The split field ---------------------------------------------------------------------------

def test_first_layer_parts_are_the_rows_of_w0_for_x_z_and_t():
    params = problem()[0]
    w_x, w_z, w_t = first_layer_parts(params, DC)
    assert (w_x.shape, w_z.shape, w_t.shape) == ((D, 8), (DC, 8), (8,))
    np.testing.assert_array_equal(jnp.concatenate([w_x, w_z, w_t[None]]), params["w0"])


@pytest.mark.parametrize("dim, context_dim", [(1, 1), (3, 5), (6, 40)])
def test_split_field_equals_the_concatenated_field(dim, context_dim):
    params, x_t, z, t, _, _ = problem(dim=dim, context_dim=context_dim)
    for t_val in (t[0, 0], t[0]):  # a scalar time, or one of shape (1,)
        close(split_field(params, x_t[0, 0], z[0], t_val), vector_field(params, x_t[0, 0], z[0], t_val))


def test_the_projection_is_the_part_of_the_first_layer_without_x():
    params, x_t, z, t, _, _ = problem()
    projection = context_projection(params, z[1], t[1])
    assert projection.shape == (8,)
    pre_activation = jnp.concatenate([x_t[1, 0], z[1], t[1]]) @ params["w0"] + params["b0"]
    close(x_t[1, 0] @ params["w0"][:D] + projection, pre_activation)
    close(field_from_projection(params, x_t[1, 0], projection), vector_field(params, x_t[1, 0], z[1], t[1]))


# The point estimator ------------------------------------------------------------------------

def test_point_trace_is_exact_for_a_diagonal_jacobian_and_zero_when_masked():
    scales = jnp.array([1.0, -2.0, 3.5])
    field_at = lambda x: scales * x  # Jacobian diag(scales): every Rademacher sample equals the trace
    key = jax.random.key(0)
    assert float(point_trace(field_at, jnp.ones(3), 1.0, key, num_probes=4)) == pytest.approx(2.5, abs=1e-6)
    assert float(point_trace(field_at, jnp.ones(3), 0.0, key, num_probes=4)) == 0.0


def test_point_trace_is_unbiased():
    params, x_t, z, t, _, _ = problem()
    field_at = lambda x: vector_field(params, x, z[0], t[0])
    jacobian = jax.jacfwd(field_at)(x_t[0, 0])
    symmetric = (jacobian + jacobian.T) / 2
    variance = 2 * (jnp.sum(symmetric**2) - jnp.sum(jnp.diag(symmetric) ** 2))  # one Rademacher sample
    keys = jax.random.split(jax.random.key(3), 2000)
    estimates = jax.jit(jax.vmap(lambda k: point_trace(field_at, x_t[0, 0], 1.0, k, num_probes=4)))(keys)
    standard_error = float(jnp.sqrt(variance / 4 / keys.shape[0]))
    # 5 standard errors: a correct estimator strays further with negligible probability, while a
    # missing factor (twice the trace, or a trace of J^T J) would be hundreds of them away.
    assert abs(float(estimates.mean()) - float(jnp.trace(jacobian))) < 5 * standard_error


# Strategies, chunks and checkpoints: the same probes, the same traces -----------------------

def test_all_fields_and_strategies_agree():
    args = problem()
    reference = strategy_traces(*args, field="concatenated", strategy="tile", num_probes=6)
    assert reference.shape == (3, 7)
    for field in FIELDS:
        for strategy in STRATEGIES:
            close(strategy_traces(*args, field=field, strategy=strategy, num_probes=6), reference)
    assert np.all(np.asarray(reference)[-1, -2:] == 0.0)


@pytest.mark.parametrize("chunk_size, checkpoint", [(None, False), (None, True), (7, False), (3, True), (10, False)])
def test_memory_aware_traces_equal_the_tiled_design(chunk_size, checkpoint):
    args = problem()
    tiled = strategy_traces(*args, field="concatenated", strategy="tile", num_probes=6)
    close(batch_traces(*args, num_probes=6, chunk_size=chunk_size, checkpoint=checkpoint), tiled)


def test_memory_aware_traces_match_the_grad_chapter_estimator():
    args = problem()
    close(batch_traces(*args, num_probes=5), matrix_free.batch_traces(*args, num_probes=5))


def test_exact_traces_with_the_projection_equal_the_grad_chapters_and_mask_padding():
    params, x_t, z, t, mask, _ = problem()
    exact = exact_traces(params, x_t, z, t, mask)
    close(exact, matrix_free.exact_traces(params, x_t, z, t, mask))
    assert np.all(np.asarray(exact)[np.asarray(mask) == 0] == 0.0)


def test_a_structured_context_is_mean_pooled_like_the_field():
    params, x_t, _, t, mask, key = problem()
    z_sets = jax.random.normal(jax.random.key(9), (x_t.shape[0], 4, DC))  # (B, K, Dc)
    close(batch_traces(params, x_t, z_sets, t, mask, key, num_probes=5),
          batch_traces(params, x_t, z_sets.mean(axis=1), t, mask, key, num_probes=5))


def test_gradients_do_not_depend_on_chunks_or_checkpoints():
    params, *batch = problem()

    def gradient(chunk_size, checkpoint):
        loss = lambda p: jnp.sum(batch_traces(p, *batch, num_probes=4, chunk_size=chunk_size,
                                                     checkpoint=checkpoint))
        return jax.grad(loss)(params)

    reference = gradient(None, False)
    for chunk_size, checkpoint in ((None, True), (3, False), (3, True)):
        jax.tree.map(close, gradient(chunk_size, checkpoint), reference)


def test_bad_field_or_strategy_names_are_refused():
    with pytest.raises(ValueError, match="field must be one of"):
        strategy_traces(*problem(), field="stacked", strategy="tile", num_probes=2)
    with pytest.raises(ValueError, match="strategy must be one of"):
        strategy_traces(*problem(), field="split", strategy="tiled", num_probes=2)


# The chapter's claims about the programs ----------------------------------------------------

def test_the_projection_runs_once_per_batch_element():
    args = problem(B=4, N=9, context_dim=11)
    split = functools.partial(strategy_traces, field="split", num_probes=3)
    for fn, shape in ((functools.partial(batch_traces, num_probes=3), (4, 8)),
                      (functools.partial(split, strategy="in_axes_none"), (4, 8)),
                      (functools.partial(split, strategy="tile"), (4, 9, 8))):
        assert products_over(jax.make_jaxpr(fn)(*args).jaxpr, 11) == [shape]


def test_the_concatenated_field_multiplies_zeros_once_per_probe():
    # jvp's rule for concatenate instantiates the zero tangent of z: the tangent pass multiplies the
    # whole first layer, once per probe and point, whatever the strategy.
    args = problem(B=2, N=5)
    for strategy in ("tile", "in_axes_none"):
        fn = functools.partial(strategy_traces, field="concatenated", strategy=strategy, num_probes=3)
        assert products_over(jax.make_jaxpr(fn)(*args).jaxpr, D + DC + 1) == [(2, 5, 8), (2, 5, 3, 8)]


def temp_bytes(fn, *args):
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_chunks_bound_the_memory_of_evaluation():
    args = problem(B=4, N=400, context_dim=16)
    whole = temp_bytes(functools.partial(batch_traces, num_probes=8), *args)
    chunked = temp_bytes(functools.partial(batch_traces, num_probes=8, chunk_size=20), *args)
    assert chunked < whole / 4


def test_a_gradient_needs_chunks_and_checkpoint_to_save_memory():
    params, *batch = problem(B=4, N=400, context_dim=16)

    def gradient_temp(chunk_size, checkpoint):
        loss = lambda p: jnp.mean(batch_traces(p, *batch, num_probes=8, chunk_size=chunk_size,
                                                      checkpoint=checkpoint))
        return temp_bytes(jax.grad(loss), params)

    plain = gradient_temp(None, False)
    assert 0.95 * plain < gradient_temp(None, True) < 1.05 * plain  # checkpoint alone: recomputed all at once
    chunks = gradient_temp(20, False)
    assert chunks > plain / 2  # the loop's backward pass keeps every step's residuals
    assert gradient_temp(20, True) < chunks / 4
