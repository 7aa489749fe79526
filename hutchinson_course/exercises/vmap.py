"""Exercises of the vmap chapter: in_axes and out_axes for a layout, the nested map with in_axes=None,
and the flattened map with per-point keys.

Each check runs the learner's function on small inputs with distinct sizes (B=2, N=3, D=4, Dc=5,
K=6), so that a wrongly mapped axis shows up as a wrong shape, and explains what differs. The
grader runs these checks again, plus the grader tests in ``hutchinson_course.grading.hidden.vmap``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..estimators import per_point
from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable, value_shapes
from .observe import ReplayError, observe
from .outcome import Incorrect

SIZES = {"B": 2, "N": 3, "D": 4, "Dc": 5, "K": 6}
NUM_PROBES = 8


def returned_function(make, name: str):
    """The function ``make()`` returns (the learner's code makes it), to be called only inside observe.

    It stays where it was made (in the notebook, or the learner's kernel); the check gets a caller of
    it, after observing that it is a function. Where the verdicts are judged nothing is made, and the
    caller is never called: the observations that would call it hand back their record instead."""
    made = []

    def kind(value):
        made.append(value)
        return None if callable(value) else type(value).__name__

    found = observe(lambda: kind(make()))
    if found is not None:
        raise Incorrect(f"`{name}` should be a function, found {found}.")
    return lambda *args: made[0](*args)


def call_explaining_vmap_errors(fn, *args):
    """``fn(*args)``, observed; the errors a wrongly mapped argument causes turned into advice."""
    try:
        return observe(lambda: fn(*args))
    except ValueError as error:
        message = str(error)
        if "inconsistent sizes for array axes to be mapped" in message:
            advice = ("Every mapped axis needs one entry per call; an argument shared by every call needs "
                      "in_axes=None.")
            if "argument key of type uint32" in message:
                advice = ("The legacy keys lost their trailing axis of 2, which holds the two halves of each "
                          "key: keys.reshape((B * N,) + keys.shape[2:]) keeps it.")
            sizes = " ".join(message.split("mapped:", 1)[1].split())
            raise Incorrect(f"vmap mapped axes of different sizes: {sizes} {advice}") from None
        if "t_val must be a scalar" in message:
            raise Incorrect("Each point received t_val of shape (1,), not a scalar: t has shape (B, 1), "
                            "and mapping it over B leaves the trailing axis of length 1. Give the outer "
                            "vmap t[:, 0], of shape (B,).") from None
        if "key must be one typed key" in message:
            found = message.split("found ")[-1].split(":")[0]
            raise Incorrect(f"A point received something other than one key ({found}). Map the keys like "
                            "x_t, so that each point gets exactly one. Typed keys are (B, N); legacy keys are "
                            "(B, N, 2) and keep their trailing axis when reshaped: "
                            "keys.reshape((B * N,) + keys.shape[2:]).") from None
        if any(f"{name} must be" in message for name in ("x_point", "z_ctx", "mask_val")):
            raise Incorrect(f"The per-point function received an argument of the wrong shape: {message}") from None
        raise
    except jax.errors.TracerArrayConversionError:
        raise Incorrect("A traced array was converted to NumPy (np.repeat, np.asarray, ...): use the jnp "
                        "functions, which work under vmap and jit.") from None


def run_mapping(mapping, per_point_fn, *args):
    """``mapping(per_point_fn, *args)``, compiled with jax.jit (one observation): one compilation costs
    less than running the nested maps operation by operation, and jit(vmap(f)) is how the chapter runs
    them anyway."""
    return call_explaining_vmap_errors(lambda *a: jax.jit(functools.partial(mapping, per_point_fn))(*a), *args)


def batch_inputs(context_kind: str = "global", key_kind: str = "typed", seed: int = 0,
                 sizes: dict | None = None):
    """x_t (B, N, D), z (B, Dc) or (B, K, Dc), t (B, 1), mask (B, N) with one padding point, and keys:
    (B, N) typed keys, or (B, N, 2) legacy uint32 keys.

    The keys are threefry's (the default generator), typed or as legacy uint32 pairs: its bits are
    the same whether a key is used under vmap or in a sequential map (jax.lax.map), so the traces
    do not depend on how an answer maps. (The faster "rbg" generator's bits do.)
    """
    B, N, D, Dc, K = (sizes or SIZES).values()
    data_keys = jax.random.split(jax.random.key(seed), 4)
    x_t = jax.random.normal(data_keys[0], (B, N, D))
    z = jax.random.normal(data_keys[1], (B, Dc) if context_kind == "global" else (B, K, Dc))
    t = jax.random.uniform(data_keys[2], (B, 1))
    mask = jnp.ones((B, N), dtype=bool).at[-1, -1].set(False)  # the last point of the last batch is padding
    if key_kind == "typed":
        keys = jax.random.split(data_keys[3], (B, N))
    else:
        keys = jax.random.key_data(jax.random.split(data_keys[3], (B, N)))
    return x_t, z, t, mask, keys


def estimator(num_probes: int = NUM_PROBES):
    return functools.partial(per_point.point_trace, num_probes=num_probes)


@functools.partial(jax.jit, static_argnums=0)
def _reference_traces(num_probes, x_t, z, t, mask, keys):
    return per_point.traces_tiled(estimator(num_probes), x_t, z, t, mask, keys)


def reference_traces(x_t, z, t, mask, keys, num_probes: int = NUM_PROBES):
    """The traces every strategy should give: (B, N)."""
    return _reference_traces(num_probes, x_t, z, t, mask, keys)


def intermediate_shapes(mapping, per_point_fn, *args) -> set[tuple[int, ...]]:
    """The shapes of every value computed when tracing ``mapping(per_point_fn, *args)``, inner jaxprs
    included (observed: they cross as a sorted list)."""
    def traced(*arrays):
        return mapping(per_point_fn, *arrays)

    shapes = observe(lambda: sorted(value_shapes(jax.make_jaxpr(traced)(*args).jaxpr)))
    return {tuple(shape) for shape in shapes}


def check_traces(found, expected, *, what: str, mask, explain_mismatch=None) -> None:
    """Shape (B, N), padding 0, one estimate per point, then the values. When they differ,
    ``explain_mismatch(found)`` may raise a more specific ``Incorrect`` first."""
    B, N = expected.shape
    found = expect_array(found, what=what, shape=(B, N),
                         why_shape="One trace per point: the outer map over B, the inner one over N.")
    if not np.all(found[~np.asarray(mask)] == 0.0):
        raise Incorrect(f"{what} is not 0 at the padding point: pass mask to the per-point function, "
                        "mapped like x_t.")
    for b in range(B):
        real, expected_real = found[b][np.asarray(mask[b])], expected[b][np.asarray(mask[b])]
        if len(real) > 1 and np.all(real == real[0]) and not np.all(expected_real == expected_real[0]):
            raise Incorrect(f"Every point of batch {b} got the same estimate ({real[0]:.4g}): the points "
                            "shared one key. Map the keys like x_t, so that each point gets its own.")
    if explain_mismatch is not None and not np.allclose(found, expected, rtol=1e-5, atol=1e-5):
        explain_mismatch(found)
    expect_close(found, expected, what=what, rtol=1e-5, atol=1e-5)


# q1 -------------------------------------------------------------------------------------

class _ArgumentShapes:
    """Wraps a per-probe function; records the shapes of the arguments of each call."""

    def __init__(self, f):
        self.f, self.calls = f, []

    def __call__(self, M, eps):
        self.calls.append((tuple(jnp.shape(M)), tuple(jnp.shape(eps))))
        return self.f(M, eps)


def _explain_argument_shapes(calls, name: str, R: int, D: int, P: int) -> None:
    """Say which argument reached ``f`` mapped the wrong way, from the shapes it received."""
    for M_shape, eps_shape in calls[:1]:
        if M_shape != (R, D):
            raise Incorrect(f"In map_over_columns({name}), f received M of shape {M_shape} instead of the whole "
                            f"matrix {(R, D)}: M is shared by every probe, so give it in_axes=None "
                            "(are the two entries of in_axes swapped?).")
        if eps_shape == (P,):
            raise Incorrect(f"Each call received a probe of length {P} instead of {D}: vmap took the probes' "
                            "rows, but the probes are the columns of `probes`. Map axis 1.")
        if eps_shape != (D,):
            raise Incorrect(f"In map_over_columns({name}), f received eps of shape {eps_shape} instead of one "
                            f"probe of shape {(D,)}: map axis 1 of `probes`.")


def check_map_over_columns(map_over_columns) -> None:
    require_callable(map_over_columns, "map_over_columns")
    R, D, P = 3, 4, 5
    M = jax.random.normal(jax.random.key(0), (R, D))
    probes = jax.random.normal(jax.random.key(1), (D, P))  # one probe per column
    cases = (("matvec", lambda M, eps: M @ eps, lambda M, probes: M @ probes),
             ("tanh(M eps) * eps[0]", lambda M, eps: jnp.tanh(M @ eps) * eps[0],
              lambda M, probes: jnp.tanh(M @ probes) * probes[0]))
    for name, f, expected in cases:
        recorded = _ArgumentShapes(f)
        mapped = returned_function(lambda: map_over_columns(recorded), f"map_over_columns({name})")
        try:
            found = call_explaining_vmap_errors(mapped, M, probes)
        except ReplayError:
            raise
        except Exception:
            _explain_argument_shapes(observe(lambda: recorded.calls), name, R, D, P)
            raise
        _explain_argument_shapes(observe(lambda: recorded.calls), name, R, D, P)
        if getattr(found, "shape", None) == (P, R):
            raise Incorrect(f"map_over_columns({name}) returned the results as rows, shape (P, R) = {(P, R)}: "
                            "out_axes=1 puts the mapped axis second, so that they come out as columns.")
        found = expect_array(found, what=f"map_over_columns({name})(M, probes)", shape=(R, P),
                             why_shape="Column p holds f(M, probes[:, p]).")
        expect_close(found, expected(M, probes), what=f"map_over_columns({name})(M, probes)", rtol=1e-5)
    check_one_vmap_no_transposes(map_over_columns, M, probes)


def check_one_vmap_no_transposes(map_over_columns, M, probes) -> None:
    """One vmap calls f once, to trace it, and a vmap of a matrix-vector product over columns into
    columns is one matrix product: a loop calls f once per probe, a transpose shows in the program."""
    recorded = _ArgumentShapes(lambda M, eps: M @ eps)
    program, calls = observe(lambda: (str(jax.make_jaxpr(map_over_columns(recorded))(M, probes)), len(recorded.calls)))
    if calls > 1 or "scan[" in program or "while[" in program:
        raise Incorrect("The results are right, but f was applied probe by probe (a loop or a sequential "
                        "map): use one jax.vmap, which traces f once for all the probes.")
    if "transpose[" in program:
        raise Incorrect("The results are right, but the program transposes an array (.T, jnp.swapaxes, "
                        "jnp.moveaxis): let in_axes and out_axes say where the probes are instead.")


# q2 -------------------------------------------------------------------------------------

def _tiled_context_shapes(x_t, z) -> set[tuple[int, ...]]:
    B, N = x_t.shape[:2]
    return {(B, N, *z.shape[1:]), (B * N, *z.shape[1:])}


def check_traces_none(traces_none) -> None:
    require_callable(traces_none, "traces_none")
    for context_kind in per_point.CONTEXT_KINDS:
        x_t, z, t, mask, keys = batch_inputs(context_kind)
        found = run_mapping(traces_none, estimator(), x_t, z, t, mask, keys)
        check_traces(found, reference_traces(x_t, z, t, mask, keys),
                     what=f"traces_none with a {context_kind} context z {z.shape}", mask=mask)
        copies = intermediate_shapes(traces_none, estimator(), x_t, z, t, mask, keys)
        copied = sorted(_tiled_context_shapes(x_t, z) & copies)
        if copied:
            raise Incorrect(f"The traces are right, but z was copied to every point (a value of shape "
                            f"{copied[0]} appeared): map z over B only, and give it in_axes=None in the "
                            "inner vmap, so that the N points share it.")


# q3 -------------------------------------------------------------------------------------

@jax.jit
def _flattened_traces(x_t, z, t, mask, keys, context_rows, time_rows):
    """The traces of a flattened map in which flat point i gets z[context_rows[i]] and t[time_rows[i]]."""
    B, N = x_t.shape[:2]
    flat_keys = keys.reshape((B * N,) + keys.shape[2:])
    traces = jax.vmap(estimator())(x_t.reshape(B * N, -1), z[context_rows], t[time_rows, 0],
                                   mask.reshape(B * N), flat_keys)
    return traces.reshape(B, N)


def explain_interleaving(x_t, z, t, mask, keys):
    """A mismatch explainer: raises if the traces are what jnp.tile (which interleaves the batches) gives."""
    B, N = x_t.shape[:2]
    right, interleaved = jnp.arange(B * N) // N, jnp.arange(B * N) % B

    def explain(found):
        for what, context_rows, time_rows in (("z and t", interleaved, interleaved), ("z", interleaved, right),
                                              ("t", right, interleaved)):
            wrong = np.asarray(_flattened_traces(x_t, z, t, mask, keys, context_rows, time_rows))
            if np.allclose(found, wrong, rtol=1e-5, atol=1e-5):
                raise Incorrect(f"Flat point b * N + n must get batch b's {what}, but got batch "
                                "(b * N + n) % B's: jnp.tile(z, (N, 1)) repeats the whole array N times, "
                                "interleaving the batches. jnp.repeat(z, N, axis=0) repeats each batch's "
                                "row N times in a row.")

    return explain


def check_traces_flat(traces_flat) -> None:
    require_callable(traces_flat, "traces_flat")
    B, N, D = SIZES["B"], SIZES["N"], SIZES["D"]
    for context_kind, key_kind in (("global", "typed"), ("global", "legacy"), ("structured", "typed")):
        x_t, z, t, mask, keys = batch_inputs(context_kind, key_kind)
        what = f"traces_flat with a {context_kind} context z {z.shape} and {key_kind} keys {keys.shape}"
        found = run_mapping(traces_flat, estimator(), x_t, z, t, mask, keys)
        expect_array(found, what=what, shape=(B, N), why_shape="Reshape the B * N traces to (B, N).")
        check_traces(found, reference_traces(x_t, z, t, mask, keys), what=what, mask=mask,
                     explain_mismatch=explain_interleaving(x_t, z, t, mask, keys))
    shapes = intermediate_shapes(traces_flat, estimator(), x_t, z, t, mask, keys)
    if (B * N, D) not in shapes:
        raise Incorrect(f"The traces are right, but no array of shape (B * N, D) = {(B * N, D)} appeared: "
                        "this exercise asks for one vmap over the B * N points of x_t.reshape(B * N, D).")


EXERCISES = (
    Exercise("vmap", "q1", "in_axes and out_axes for a layout", "map_over_columns", 1, check_map_over_columns, (
        "M is the same for every probe: its entry in in_axes is None.",
        "The probes are the columns of `probes`, shape (D, P): map along axis 1, so in_axes=(None, 1).",
        "By default the mapped axis comes first in the output; out_axes=1 makes the results columns: "
        "jax.vmap(f, in_axes=(None, 1), out_axes=1).",
    )),
    Exercise("vmap", "q2", "nested vmap with in_axes=None", "traces_none", 2, check_traces_none, (
        "Two vmaps: the inner one over the N points of one batch, the outer one over the B batches.",
        "In the inner vmap, z and t are shared by the points: in_axes=(0, None, None, 0, 0). "
        "The outer vmap maps everything over axis 0.",
        "t has shape (B, 1): mapped over B, each batch would get shape (1,). Pass t[:, 0] to the outer vmap.",
    )),
    Exercise("vmap", "q3", "flattening, with per-point keys", "traces_flat", 2, check_traces_flat, (
        "Reshape x_t, mask and keys from (B, N, ...) to (B * N, ...), map the per-point function once, "
        "and reshape the traces to (B, N).",
        "Flat point b * N + n belongs to batch b: jnp.repeat(z, N, axis=0) and jnp.repeat(t[:, 0], N) "
        "give each point its batch's context and time (jnp.tile would interleave the batches).",
        "Legacy keys have a trailing axis of 2: keys.reshape((B * N,) + keys.shape[2:]) works for both kinds.",
    )),
)
