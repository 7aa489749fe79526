"""Hidden tests of the vmap exercises: cases the notebook's checks do not show.

Each ``test_<exercise id>_<what>(answer)`` receives the learner's object and raises
``Incorrect`` (or any exception) when it fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hutchinson_course.exercises.expect import expect_array, expect_close
from hutchinson_course.exercises.outcome import Incorrect
from hutchinson_course.grading.hidden import check_test_names, teaches
from hutchinson_course.exercises.vmap import (
    batch_inputs,
    _tiled_context_shapes,
    call_explaining_vmap_errors,
    check_one_vmap_no_transposes,
    check_traces,
    estimator,
    explain_interleaving,
    intermediate_shapes,
    reference_traces,
    run_mapping,
)


def test_q1_square_layout(map_over_columns):
    # With D == P a wrongly mapped axis raises no error; only the values tell.
    M = jax.random.normal(jax.random.key(2), (4, 4))
    probes = jax.random.normal(jax.random.key(3), (4, 4))
    found = call_explaining_vmap_errors(lambda *args: map_over_columns(lambda M, eps: M @ eps * eps)(*args), M, probes)
    expect_close(expect_array(found, what="the results for a square layout", shape=(4, 4)),
                 (M @ probes) * probes, what="the results for a square layout (D = P = 4)", rtol=1e-5)


@teaches(3)
def test_q1_one_vmap_no_loop_no_transposes(map_over_columns):
    M = jax.random.normal(jax.random.key(4), (2, 6))
    probes = jax.random.normal(jax.random.key(5), (6, 3))
    check_one_vmap_no_transposes(map_over_columns, M, probes)


def test_q1_one_probe(map_over_columns):
    M = jnp.eye(3)
    probes = jnp.arange(3.0)[:, None]  # (D, 1)
    found = call_explaining_vmap_errors(lambda *args: map_over_columns(lambda M, eps: M @ eps)(*args), M, probes)
    what = "map_over_columns(lambda M, eps: M @ eps)(eye(3), probes of shape (3, 1))"
    expect_close(expect_array(found, what=what, shape=(3, 1)), probes, what=what)


def test_q2_other_sizes(traces_none):
    for sizes, context_kind in (({"B": 3, "N": 4, "D": 2, "Dc": 3, "K": 2}, "structured"),
                                ({"B": 1, "N": 5, "D": 3, "Dc": 2, "K": 4}, "global")):
        x_t, z, t, mask, keys = batch_inputs(context_kind, seed=1, sizes=sizes)
        found = run_mapping(traces_none, estimator(), x_t, z, t, mask, keys)
        check_traces(found, reference_traces(x_t, z, t, mask, keys),
                     what=f"traces_none for sizes {sizes} and a {context_kind} context", mask=mask)


def test_q2_any_per_point_function(traces_none):
    # The mapping must not depend on the estimator: a per-point function that returns t * |x|^2.
    x_t, z, t, mask, keys = batch_inputs("global", seed=2)

    def weighted_norm(x_point, z_ctx, t_val, mask_val, key):
        if jnp.ndim(t_val) != 0:
            raise Incorrect(f"t_val reached the per-point function with shape {jnp.shape(t_val)}, not ().")
        return t_val * (x_point @ x_point)

    found = run_mapping(traces_none, weighted_norm, x_t, z, t, mask, keys)
    expect_close(expect_array(found, what="traces_none with another per-point function", shape=mask.shape),
                 t * jnp.sum(x_t**2, axis=-1), what="traces_none with another per-point function", rtol=1e-5)


def test_q2_legacy_keys(traces_none):
    x_t, z, t, mask, keys = batch_inputs("structured", "legacy", seed=3)
    found = run_mapping(traces_none, estimator(), x_t, z, t, mask, keys)
    check_traces(found, reference_traces(x_t, z, t, mask, keys), what="traces_none with legacy keys", mask=mask)


@teaches(3)
def test_q2_the_points_share_their_context(traces_none):
    # The exercise's point: z reaches the N points of its batch element by in_axes=None, not copied.
    for sizes in ({"B": 3, "N": 4, "D": 2, "Dc": 3, "K": 2}, {"B": 2, "N": 5, "D": 3, "Dc": 2, "K": 4}):
        for context_kind in ("global", "structured"):
            x_t, z, t, mask, keys = batch_inputs(context_kind, seed=4, sizes=sizes)
            shapes = intermediate_shapes(traces_none, estimator(), x_t, z, t, mask, keys)
            copied = sorted(_tiled_context_shapes(x_t, z) & shapes)
            if copied:
                raise Incorrect(f"For sizes {sizes}, z {z.shape} was copied to every point (a value of shape "
                                f"{copied[0]} appeared): give z in_axes=None in the inner vmap.")


@teaches(3)
def test_q3_one_vmap_over_the_flattened_points(traces_flat):
    # The exercise's point: one vmap over the B * N rows of x_t.reshape(B * N, D).
    sizes = {"B": 3, "N": 4, "D": 2, "Dc": 3, "K": 2}
    x_t, z, t, mask, keys = batch_inputs("global", seed=6, sizes=sizes)
    shapes = intermediate_shapes(traces_flat, estimator(), x_t, z, t, mask, keys)
    if (12, 2) not in shapes:
        raise Incorrect(f"For sizes {sizes}, no array of shape (B * N, D) = (12, 2) appeared: map once over "
                        "the B * N points of x_t.reshape(B * N, D).")


def test_q3_other_sizes_and_keys(traces_flat):
    for sizes, context_kind, legacy in (({"B": 3, "N": 4, "D": 2, "Dc": 3, "K": 2}, "structured", True),
                                        ({"B": 1, "N": 5, "D": 3, "Dc": 2, "K": 4}, "global", False),
                                        ({"B": 4, "N": 1, "D": 3, "Dc": 2, "K": 3}, "structured", False)):
        x_t, z, t, mask, keys = batch_inputs(context_kind, "legacy" if legacy else "typed", seed=5, sizes=sizes)
        found = run_mapping(traces_flat, estimator(), x_t, z, t, mask, keys)
        what = f"traces_flat for sizes {sizes}, a {context_kind} context, {'legacy' if legacy else 'typed'} keys"
        check_traces(found, reference_traces(x_t, z, t, mask, keys), what=what, mask=mask,
                     explain_mismatch=explain_interleaving(x_t, z, t, mask, keys))


check_test_names(__name__)  # every test above belongs to an exercise of this set
