"""Exercises of the tiling chapter: reading a compiled program, the context projection, chunked
mapping with jax.lax.map, and an estimator that computes the context projection once per batch element.

Each check runs the learner's function on small inputs and explains what differs. Checks that
concern the structure of a program read its jaxpr, which is the same on every machine. The grader
runs these checks again, plus the grader tests in ``hutchinson_course.grading.hidden.tiling``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import subjaxprs

from ..estimators.fields import init_field_params, vector_field
from ..estimators.memory_aware import context_projection as context_projection_reference
from ..estimators.memory_aware import field_from_projection, projected_matvec
from ..estimators.per_point import point_trace
from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable
from .observe import observe, type_name
from .outcome import Incorrect

DIM, CONTEXT_DIM, HIDDEN_SIZES, NUM_POINTS = 3, 24, (16, 16), 10  # D + Dc + 1 = 28 rows, H0 = 16


def jaxpr_equations(jaxpr):
    """Every equation of a jaxpr, including those of nested jaxprs (jit, scan, custom rules)."""
    for eqn in jaxpr.eqns:
        yield eqn
    for inner in subjaxprs(jaxpr):
        yield from jaxpr_equations(inner)


def products_over(jaxpr, rows: int) -> list[tuple[int, ...]]:
    """Result shapes of the matrix products whose first operand contracts one axis of length ``rows``."""
    found = []
    for eqn in jaxpr_equations(jaxpr):
        if eqn.primitive.name == "dot_general":
            (contracted, _), _ = eqn.params["dimension_numbers"]
            if [eqn.invars[0].aval.shape[axis] for axis in contracted] == [rows]:
                found.append(tuple(eqn.outvars[0].aval.shape))
    return found


def example_field(seed: int = 0, dim: int = DIM, context_dim: int = CONTEXT_DIM, hidden_sizes=HIDDEN_SIZES):
    """(params, z_ctx (Dc,), t_val ()) of a small field of the grad chapter."""
    params = init_field_params(jax.random.key(seed), dim, context_dim, hidden_sizes)
    return params, jax.random.normal(jax.random.key(seed + 100), (context_dim,)), jnp.float32(0.3 + 0.1 * seed)


# q1 -------------------------------------------------------------------------------------

def two_identical_products(a):
    """A program XLA simplifies: the same product and tanh twice (CSE computes them once). a: (48, 32) -> (32,)."""
    return jnp.sum(jnp.tanh(a @ a.T) @ a, axis=0) + jnp.sum(jnp.tanh(a @ a.T) @ a, axis=0)


def compiled_reference(fn, *args) -> dict:
    lowered = jax.jit(fn).lower(*args)
    compiled = lowered.compile()
    memory = compiled.memory_analysis()
    return {"flops": float(compiled.cost_analysis()["flops"]), "temp_bytes": int(memory.temp_size_in_bytes),
            "lowered_flops": float(lowered.cost_analysis()["flops"]),
            "argument_bytes": int(memory.argument_size_in_bytes), "output_bytes": int(memory.output_size_in_bytes)}


def _number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise Incorrect(f"'{key}' should be a number (int or float), found {type_name(value)}: {value!r:.80}.")
    return float(value)


def figures_of(compiled_figures, fn, *args):
    """What ``compiled_figures(fn, *args)`` returned, observed (a dict of its own class as a plain dict)."""
    return observe(lambda: _plain_dict(compiled_figures(fn, *args)))


def _plain_dict(found):
    return dict(found) if isinstance(found, dict) and type(found) is not dict else found


def check_figures(compiled_figures, fn, *args) -> None:
    found = figures_of(compiled_figures, fn, *args)
    if not isinstance(found, dict) or not {"flops", "temp_bytes"} <= set(found):
        raise Incorrect(f"compiled_figures should return a dict with the keys 'flops' and 'temp_bytes', "
                        f"found {found!r:.120}.")
    expected = compiled_reference(fn, *args)
    # Compared as plain numbers: an object's own __eq__ must not decide the verdict.
    flops, temp = _number(found["flops"], "flops"), _number(found["temp_bytes"], "temp_bytes")
    if flops == expected["lowered_flops"] and flops != expected["flops"]:
        raise Incorrect(f"'flops' is {flops:.0f}: the count of the program before optimization "
                        "(lowered.cost_analysis()). XLA computes the repeated product once; count the compiled "
                        f"program, lowered.compile().cost_analysis(), which does {expected['flops']:.0f}.")
    if flops != expected["flops"]:
        raise Incorrect(f"'flops' should be {expected['flops']:.0f} (compiled.cost_analysis()['flops']), "
                        f"found {flops!r}.")
    for wrong in ("argument_bytes", "output_bytes"):
        if temp == expected[wrong] and temp != expected["temp_bytes"]:
            raise Incorrect(f"'temp_bytes' is {temp}: the size of the program's {wrong.split('_')[0]}s. The "
                            "temporaries are memory_analysis().temp_size_in_bytes.")
    if temp != expected["temp_bytes"]:
        raise Incorrect(f"'temp_bytes' should be {expected['temp_bytes']} "
                        f"(compiled.memory_analysis().temp_size_in_bytes), found {temp!r}.")


def check_compiled_figures(compiled_figures) -> None:
    require_callable(compiled_figures, "compiled_figures")
    check_figures(compiled_figures, two_identical_products, jnp.ones((48, 32)))


# q2 -------------------------------------------------------------------------------------

def check_projection(context_projection, params, z_ctx, t_val, what: str) -> None:
    try:
        found = observe(lambda: context_projection(params, z_ctx, t_val))
    except TypeError as error:
        raise Incorrect(f"context_projection(params, z_ctx, t_val) raised TypeError for {what}: {error}") from None
    hidden = params["w0"].shape[1]
    found = expect_array(found, what=f"context_projection for {what}", shape=(hidden,),
                         why_shape="One row of the first layer's H0 pre-activations: t must count as a scalar "
                                   "(jnp.reshape(t_val, ()) when it comes as (1,)).")
    expected = context_projection_reference(params, z_ctx, t_val)
    dim = params["w0"].shape[0] - z_ctx.shape[0] - 1
    w0, b0 = params["w0"], params["b0"]
    t_scalar = jnp.reshape(t_val, ())
    mistakes = {
        "the rows of w0 that multiply z come after the D rows for x: w0[D:D + Dc], with D = w0.shape[0] - Dc - 1":
            z_ctx @ w0[:z_ctx.shape[0]] + t_scalar * w0[-1] + b0,
        "the bias b0 is part of the projection: it does not depend on the point either":
            expected - b0,
        "the time's row w0[D + Dc] (times t) is part of the projection":
            expected - t_scalar * w0[dim + z_ctx.shape[0]],
    }
    for why, wrong in mistakes.items():
        if np.allclose(found, wrong, rtol=1e-5, atol=1e-6) and not np.allclose(wrong, expected):
            raise Incorrect(f"context_projection for {what} is off: {why}.")
    expect_close(found, expected, what=f"context_projection for {what}", rtol=1e-5, atol=1e-5,
                 why="It should be z @ W_z + t w_t + b0, so that x @ W_x plus it equals the first layer "
                     "applied to [x, z, t].")


def check_context_projection(context_projection) -> None:
    require_callable(context_projection, "context_projection")
    params, z_ctx, t_val = example_field()
    check_projection(context_projection, params, z_ctx, t_val, "a context of Dc = 24 and a scalar time")
    check_projection(context_projection, params, z_ctx, jnp.reshape(t_val, (1,)), "a time of shape (1,)")
    x_point = jnp.linspace(-1.0, 1.0, DIM)
    projection = observe(lambda: context_projection(params, z_ctx, t_val))
    through_projection = field_from_projection(params, x_point, projection)
    expect_close(through_projection, vector_field(params, x_point, z_ctx, t_val), rtol=1e-5, atol=1e-5,
                 what="the field computed from your projection")


# q3 -------------------------------------------------------------------------------------

def wide_layer(row):
    """A small MLP on one row, (4,) -> (4,), through a hidden layer of 256: mapped over many rows, the
    hidden activations are the program's largest temporary."""
    weights = jnp.linspace(-1.0, 1.0, 4 * 256).reshape(4, 256)
    return jnp.tanh(row @ weights) @ weights.T


def scans_in(jaxpr) -> list[dict]:
    return [{"length": eqn.params["length"], "shapes": [tuple(v.aval.shape) for v in eqn.invars]}
            for eqn in jaxpr_equations(jaxpr) if eqn.primitive.name == "scan"]


def chunked_program(chunked_map, fn, xs, chunk_size: int) -> dict:
    """What the check reads of the program of ``chunked_map(fn, xs, chunk_size)``, as plain data: its
    scans, how many while loops it has, and how many products contract the elements' last axis."""
    jaxpr = jax.make_jaxpr(lambda xs: chunked_map(fn, xs, chunk_size))(xs).jaxpr
    return {"scans": scans_in(jaxpr),
            "while_loops": sum(eqn.primitive.name == "while" for eqn in jaxpr_equations(jaxpr)),
            "copies": len(products_over(jaxpr, jax.tree.leaves(xs)[0].shape[-1]))}


def check_chunked(chunked_map, fn, xs, chunk_size: int, what: str):
    """Check values and the program's loop; returns the learner's output."""
    try:
        found = observe(lambda: chunked_map(fn, xs, chunk_size))
    except TypeError as error:
        raise Incorrect(f"chunked_map(fn, xs, chunk_size) raised TypeError for {what}: {error}") from None
    expected = jax.vmap(fn)(xs)
    # float32 sums in another order (a chunk against the whole batch): agree to about 1e-6 relative.
    jax.tree.map(lambda f, e: expect_close(f, e, what=f"chunked_map for {what}", rtol=1e-5, atol=1e-5),
                 found, expected)
    length = jax.tree.leaves(xs)[0].shape[0]
    program = observe(lambda: chunked_program(chunked_map, fn, xs, chunk_size))
    loops = program["scans"]
    # A while_loop (fori_loop with traced bounds) hides its trip count: the temporaries, compared
    # with vmap's by the caller, say whether it holds one chunk at a time.
    while_loops = program["while_loops"]
    full_chunks, all_chunks = length // chunk_size, -(-length // chunk_size)
    if not loops and not while_loops and full_chunks > 1:
        copies = program["copies"]
        if copies <= 1:
            raise Incorrect(f"For {what} the program maps all {length} elements at once, with no loop: its memory "
                            "grows with the number of elements. Use jax.lax.map(fn, xs, batch_size=chunk_size).")
        raise Incorrect(f"For {what} the program has no loop: a Python loop over the chunks is unrolled into "
                        f"{copies} copies of the work, one after the other in the program. Use "
                        "jax.lax.map(fn, xs, batch_size=chunk_size), which compiles one loop.")
    if not loops:
        return found
    steps = loops[0]["length"]
    if steps == length and chunk_size > 1:
        raise Incorrect(f"For {what} the loop has {steps} steps, one per element: jax.lax.map without batch_size "
                        "maps one element at a time. Pass batch_size=chunk_size, so that each step maps a chunk "
                        "with vmap.")
    if steps not in (full_chunks, all_chunks):
        # floor(n / c) full chunks and the remainder apart (jax.lax.map's batch_size), or ceil(n / c)
        # chunks with the last one padded
        raise Incorrect(f"For {what} the loop should have {full_chunks} steps (chunks of {chunk_size} among "
                        f"{length} elements, the remainder apart) or {all_chunks} (the last chunk padded), "
                        f"found {steps}.")
    return found


def check_chunked_map(chunked_map) -> None:
    require_callable(chunked_map, "chunked_map")
    rows = jnp.linspace(-1.0, 1.0, 44).reshape(11, 4)
    check_chunked(chunked_map, wide_layer, rows, 4, "11 rows in chunks of 4 (a remainder of 3)")
    check_chunked(chunked_map, wide_layer, rows[:8], 2, "8 rows in chunks of 2")
    whole = jax.jit(jax.vmap(wide_layer))
    many = jnp.ones((512, 4))
    chunked_temp = observe(lambda: int(jax.jit(lambda xs: chunked_map(wide_layer, xs, 2)).lower(many).compile()
                                       .memory_analysis().temp_size_in_bytes))
    whole_temp = whole.lower(many).compile().memory_analysis().temp_size_in_bytes
    if not chunked_temp < whole_temp / 4:
        raise Incorrect(f"Compiled for 512 rows in chunks of 2, your program's temporaries ({chunked_temp} bytes) "
                        f"should be a small fraction of vmap's ({whole_temp} bytes): it should hold one chunk's "
                        "hidden activations at a time.")


# q4 -------------------------------------------------------------------------------------

def example_batch(seed: int = 0, num_points: int = NUM_POINTS, masked: int = 2):
    """(params, x_points (N, D), z_ctx (Dc,), t_val (1,), mask_points (N,), keys (N,)) of one batch element."""
    params, z_ctx, t_val = example_field(seed)
    x_points = jax.random.normal(jax.random.key(seed + 200), (num_points, DIM))
    mask_points = jnp.ones(num_points).at[num_points - masked:].set(0.0)
    keys = jax.random.split(jax.random.key(seed + 300), num_points)
    return params, x_points, z_ctx, jnp.reshape(t_val, (1,)), mask_points, keys


def batch_traces_reference(params, x_points, z_ctx, t_val, mask_points, keys, num_probes):
    projection = context_projection_reference(params, z_ctx, t_val)

    def one_point(x_point, mask_val, key):
        return point_trace(x_point, projection, jnp.reshape(t_val, ()), mask_val, key, num_probes=num_probes,
                           jacobian_matvec=projected_matvec(params))

    return jax.vmap(one_point)(x_points, mask_points, keys)


def batch_products(batch_traces, inputs, num_probes: int, whole_row: int, context_dim: int) -> dict:
    """The result shapes of the products in the program of ``batch_traces(*inputs, num_probes)``, as
    plain data: those over a whole row [x, z, t] of w0, and those over z (or [z, t])."""
    jaxpr = jax.make_jaxpr(lambda *a: batch_traces(*a, num_probes))(*inputs).jaxpr
    return {"whole_row": products_over(jaxpr, whole_row),
            "context": products_over(jaxpr, context_dim) + products_over(jaxpr, context_dim + 1)}


def check_batch(batch_traces, inputs, num_probes: int, what: str) -> None:
    params, x_points, z_ctx = inputs[:3]
    num_points, hidden = x_points.shape[0], params["w0"].shape[1]
    whole_row = params["w0"].shape[0]
    try:
        products = observe(lambda: batch_products(batch_traces, inputs, num_probes, whole_row, z_ctx.shape[0]))
    except TypeError as error:
        raise Incorrect(f"batch_traces(params, x_points, z_ctx, t_val, mask_points, keys, num_probes) raised "
                        f"TypeError for {what}: {error}") from None
    if products["whole_row"]:
        raise Incorrect("Your program multiplies the whole first layer w0 by a row [x, z, t]: it concatenates the "
                        "context into the input, so vmap and jvp copy the context to every point and probe. Use "
                        "field_from_projection with the context projection instead.")
    # z @ W_z (+ t * w_t), or [z, t] @ w0[D:] in one product over Dc + 1 rows: both are the projection.
    projections = products["context"]
    if any(shape[0] == num_points for shape in projections if shape):
        raise Incorrect(f"The context projection z @ W_z is computed at shape {projections[0]}: once per point. "
                        "Compute it once for the batch element, outside the map over points, and let every "
                        "point share it (in_axes=None, or a closure).")
    if projections != [(hidden,)]:
        raise Incorrect(f"The program should compute z @ W_z exactly once, with a result of shape ({hidden},); "
                        f"found products over z at shapes {projections}.")
    found = expect_array(observe(lambda: batch_traces(*inputs, num_probes)), what=f"batch_traces for {what}", shape=(num_points,),
                         why_shape="One trace per point of the batch element.")
    expected = batch_traces_reference(*inputs, num_probes)
    masked = np.asarray(inputs[4]) == 0
    if masked.any() and not np.all(found[masked] == 0):
        raise Incorrect("Points whose mask is 0 (padding) must get exactly 0.0: pass mask_val to point_trace.")
    expect_close(found, expected, what=f"batch_traces for {what}", rtol=1e-5, atol=1e-5,
                 why="With the same key per point, your estimate should draw the same probes as point_trace.")


def check_batch_traces(batch_traces) -> None:
    require_callable(batch_traces, "batch_traces")
    check_batch(batch_traces, example_batch(), 8, "10 points, 2 of them padding, 8 probes")


EXERCISES = (
    Exercise("tiling", "q1", "reading a compiled program", "compiled_figures", 1, check_compiled_figures, (
        "jax.jit(fn).lower(*args) gives the program before optimization; .compile() on it gives the optimized one.",
        "The compiled program has .cost_analysis() (a dict with 'flops') and .memory_analysis() "
        "(with temp_size_in_bytes).",
        "compiled = jax.jit(fn).lower(*args).compile(); return {'flops': compiled.cost_analysis()['flops'], "
        "'temp_bytes': compiled.memory_analysis().temp_size_in_bytes}",
    )),
    Exercise("tiling", "q2", "the context projection", "context_projection", 1, check_context_projection, (
        "w0 has D + Dc + 1 rows: first the D rows that multiply x, then the Dc rows for z, then one row for t.",
        "D = params['w0'].shape[0] - z_ctx.shape[0] - 1.",
        "Return z_ctx @ w0[D:D + Dc] + jnp.reshape(t_val, ()) * w0[D + Dc] + params['b0'].",
    )),
    Exercise("tiling", "q3", "chunked mapping", "chunked_map", 2, check_chunked_map, (
        "jax.lax.map(f, xs) is a loop over the leading axis of xs, compiled once (a scan).",
        "With batch_size=c, each step of the loop maps c elements at once with vmap, and a final vmap handles "
        "the remainder.",
        "return jax.lax.map(fn, xs, batch_size=chunk_size)",
    )),
    Exercise("tiling", "q4", "an estimator that hoists the context", "batch_traces", 2, check_batch_traces, (
        "context_projection(params, z_ctx, t_val) depends on the batch element only: compute it once, before "
        "mapping over the points.",
        "For one point, per_point.point_trace(x_point, projection, jnp.reshape(t_val, ()), mask_val, key, "
        "num_probes=num_probes, jacobian_matvec=memory_aware.projected_matvec(params)) is the estimate: the "
        "projection takes the place of the context.",
        "Map that over (x_points, mask_points, keys) with jax.vmap; the projection is closed over, so every point "
        "shares it, as in_axes=None would do.",
    )),
)
