"""Hidden tests of the tiling exercises: cases the notebook's checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hutchinson_course.estimators.memory_aware import context_projection as context_projection_reference
from hutchinson_course.estimators import memory_aware
from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches
from hutchinson_course.exercises.tiling import (
    batch_traces_reference,
    check_batch,
    check_chunked,
    check_figures,
    check_projection,
    example_batch,
    example_field,
    figures_of,
    wide_layer,
)


@teaches(3)
def test_q1_figures_of_the_optimized_program(compiled_figures):
    # Another program XLA simplifies: the figures before and after optimization differ.
    def repeated(a):
        return jnp.sum(jnp.sin(a @ a.T) @ a, axis=1) + jnp.sum(jnp.sin(a @ a.T) @ a, axis=1)

    check_figures(compiled_figures, repeated, jnp.ones((24, 40)))


def test_q1_a_program_with_a_loop(compiled_figures):
    def loop(a):  # XLA's count includes the loop's body once, whatever its trip count
        return jax.lax.fori_loop(0, 5, lambda i, b: jnp.tanh(b @ a), a)

    check_figures(compiled_figures, loop, jnp.ones((32, 32)))


def test_q1_several_arguments(compiled_figures):
    check_figures(compiled_figures, lambda a, b: jnp.tanh(a @ b) @ b.T, jnp.ones((20, 12)), jnp.ones((12, 40)))


def test_q1_figures_are_numbers(compiled_figures):
    found = figures_of(compiled_figures, lambda a: jnp.sin(a) @ a, jnp.ones((16, 16)))
    if not isinstance(found, dict) or not {"flops", "temp_bytes"} <= set(found):
        raise Incorrect(f"compiled_figures should return a dict with the keys 'flops' and 'temp_bytes', "
                        f"found {found!r:.120}.")
    if not all(isinstance(found[key], (int, float, np.integer, np.floating)) for key in ("flops", "temp_bytes")):
        raise Incorrect(f"'flops' and 'temp_bytes' should be numbers, found {found!r:.120}.")


def test_q2_other_sizes(context_projection):
    for seed, (dim, context_dim, hidden) in enumerate(((2, 5, (8, 8)), (7, 1, (12,)), (1, 40, (32, 16, 8)))):
        params, z_ctx, t_val = example_field(seed, dim, context_dim, hidden)
        check_projection(context_projection, params, z_ctx, t_val, f"D = {dim}, Dc = {context_dim}")


def test_q2_maps_over_batches(context_projection):
    params, _, _ = example_field(3)
    z = jax.random.normal(jax.random.key(5), (4, 24))
    t = jnp.linspace(0.0, 1.0, 4)[:, None]  # (B, 1), as the estimator receives it
    found = expect_array(observe(lambda: jax.vmap(lambda z_b, t_b: context_projection(params, z_b, t_b))(z, t)),
                         what="context_projection mapped over 4 batch elements", shape=(4, 16))
    expected = jax.vmap(lambda z_b, t_b: context_projection_reference(params, z_b, t_b))(z, t)
    expect_close(found, expected, what="context_projection mapped over 4 batch elements", rtol=1e-5, atol=1e-5)

def test_q3_pytrees_and_edge_chunks(chunked_map):
    rows = jnp.linspace(-2.0, 2.0, 28).reshape(7, 4)
    for chunk_size in (7, 1, 10):
        check_chunked(chunked_map, wide_layer, rows, chunk_size, f"7 rows in chunks of {chunk_size}")
    pair = (rows, jnp.arange(7.0))
    found = observe(lambda: chunked_map(lambda p: {"sum": p[0].sum() + p[1], "row": wide_layer(p[0])}, pair, 3))
    expect_close(found["sum"], rows.sum(axis=1) + jnp.arange(7.0), what="chunked_map over a tuple of arrays, 'sum'")
    expect_close(found["row"], jax.vmap(wide_layer)(rows), what="chunked_map over a tuple of arrays, 'row'",
                 rtol=1e-5, atol=1e-5)


def test_q3_under_jit(chunked_map):
    rows = jnp.ones((9, 4))
    found = observe(lambda: jax.jit(chunked_map, static_argnums=(0, 2))(wide_layer, rows, 4))
    expect_close(found, jax.vmap(wide_layer)(rows), what="jax.jit(chunked_map) with a static chunk size",
                 rtol=1e-5, atol=1e-5)


@teaches(2)
def test_q4_other_batches(batch_traces):
    check_batch(batch_traces, example_batch(seed=1, num_points=13, masked=0), 3, "13 points, 3 probes")
    check_batch(batch_traces, example_batch(seed=2, num_points=4, masked=4), 5, "4 points, all padding")


def test_q4_mapped_over_batches_equals_the_package(batch_traces):
    params = example_batch(seed=4)[0]
    batches = [example_batch(seed=4 + b) for b in range(3)]
    x_t, z, t, mask = (jnp.stack([batch[i] for batch in batches]) for i in (1, 2, 3, 4))
    keys = jax.random.split(jax.random.key(9), mask.shape)
    found = observe(lambda: jax.vmap(lambda x, z_b, t_b, m, k: batch_traces(params, x, z_b, t_b, m, k, 6))(
        x_t, z, t, mask, keys))
    expected = jax.vmap(lambda x, z_b, t_b, m, k: batch_traces_reference(params, x, z_b, t_b, m, k, 6))(
        x_t, z, t, mask, keys)
    expect_close(found, expected, what="batch_traces mapped over 3 batch elements", rtol=1e-5, atol=1e-5)
    package = memory_aware.batch_traces(params, x_t, z, t, mask, jax.random.key(9), num_probes=6)
    expect_close(found, package, what="batch_traces mapped over 3 batch elements, against memory_aware.batch_traces",
                 rtol=1e-5, atol=1e-5)


check_test_names(__name__)  # every test above belongs to an exercise of this set
