"""Exercises of the stateful vmap chapter: ParamState modules, state axes, and keyless randomness.

Each check runs the learner's object on small inputs and explains what differs. Checks that
draw random numbers do so inside ``brainstate.random.seed_context``, which restores the learner's
random state afterwards. Every use of the answer, and every read of a state it changed, is inside
``observe``; the objects it makes (layers, mappings) stay where they were made, held by a caller
that only observed code calls (``made``). The grader runs these checks again, plus the hidden tests in
``hutchinson_course.grading.hidden.stateful_vmap``.
"""

from __future__ import annotations

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
from brainstate.transform import vmap2

from ..estimators.variance import probe_variance
from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable
from .observe import observe
from .outcome import Incorrect

_ABSENT = object()


def made(make, describe=lambda value: None):
    """(a getter of what ``make()`` returns, ``describe(it)``), made and described inside observe.

    What the learner's code makes stays where it was made (the notebook, or the learner's kernel);
    the check gets a getter, to be called only inside observe. Where the verdicts are judged nothing
    is made and the getter is never called: the observations that would call it hand back their
    record instead."""
    held = []

    def make_and_describe():
        held.append(make())
        return describe(held[0])

    description = observe(make_and_describe)
    return (lambda: held[0]), description


# q1 -------------------------------------------------------------------------------------

def require_module_class(TanhDense) -> None:
    def kind():
        if not isinstance(TanhDense, type):
            return type(TanhDense).__name__
        return None if issubclass(TanhDense, brainstate.nn.Module) else "not a module"

    found = observe(kind)
    if found == "not a module":
        raise Incorrect("`TanhDense` should subclass brainstate.nn.Module, so that .states() finds its "
                        "ParamState attributes.")
    if found is not None:
        raise Incorrect(f"`TanhDense` should be a class (class TanhDense(brainstate.nn.Module): ...), "
                        f"found {found}.")


def describe_param(layer, name: str) -> dict:
    """What ``param_state`` needs to know of the attribute ``name`` of ``layer``, as plain data (run
    inside observe)."""
    found = getattr(layer, name, _ABSENT)
    if found is _ABSENT:
        return {"missing": True}
    if not isinstance(found, brainstate.ParamState):
        return {"kind": type(found).__name__, "state": isinstance(found, brainstate.State)}
    return {"value": found.value}


def describe_params(*names: str):
    """describe_param for each of ``names``, as a function of the layer."""
    return lambda layer: {name: describe_param(layer, name) for name in names}


def param_state(described: dict, name: str, shape: tuple[int, ...]):
    """The value of the ParamState attribute ``name``, from its description (``describe_param``),
    checked for type and shape."""
    if described.get("missing"):
        raise Incorrect(f"The layer has no attribute `{name}`: assign it in __init__ (self.{name} = ...).")
    if "value" not in described:
        advice = ("a trainable parameter belongs in brainstate.ParamState, the type that "
                  ".states(brainstate.ParamState) and optimizers look for"
                  if described["state"] else
                  "wrap the array: brainstate.ParamState(array). A bare array is a constant that "
                  "brainstate's transformations cannot find or update")
        raise Incorrect(f"`self.{name}` should be a brainstate.ParamState, found {described['kind']}: {advice}.")
    expect_array(described["value"], what=f"self.{name}.value", shape=shape)
    return described["value"]


def build_layer(TanhDense, in_size: int, out_size: int, seed: int):
    """The learner's layer, built under a seed: call it only inside observe."""
    with brainstate.random.seed_context(seed):
        return TanhDense(in_size, out_size)


def check_tanh_dense(TanhDense) -> None:
    require_module_class(TanhDense)
    layer, described = made(lambda: build_layer(TanhDense, 3, 2, seed=0), describe_params("weight", "bias"))
    weight = param_state(described["weight"], "weight", (3, 2))
    bias = param_state(described["bias"], "bias", (2,))
    found = observe(lambda: len(layer().states(brainstate.ParamState)))
    if found != 2:
        raise Incorrect(f"layer.states(brainstate.ParamState) should find 2 states (weight and bias), found {found}.")
    expect_close(bias, np.zeros(2), what="the initial bias of build_layer(TanhDense, 3, 2, seed=0)", why="Start the bias at zeros.")

    h = jnp.array([0.5, -1.0, 2.0])
    expected = np.tanh(np.asarray(h) @ np.asarray(weight) + np.asarray(bias))
    output = expect_array(observe(lambda: layer()(h)), what="layer(h) for h of shape (3,)", shape=(2,))
    expect_close(output, expected, what="layer(h) for h = [0.5, -1.0, 2.0]", rtol=1e-5, why="It should be tanh(h @ weight + bias).")

    def call_after_setting_weight():
        layer().weight.value = jnp.full((3, 2), 0.1)
        return layer()(h)

    expect_close(observe(call_after_setting_weight), np.tanh(np.asarray(h) @ np.full((3, 2), 0.1)),
                 what="layer(h) after setting weight.value",
                 why="__call__ should read self.weight.value when it is called, not an array saved in __init__.")

    same_seed, other_seed, same_again = observe(lambda: [build_layer(TanhDense, 3, 2, seed=seed).weight.value
                                                         for seed in (0, 1, 0)])
    if not bool(jnp.all(same_seed == same_again)):
        raise Incorrect("Two layers built after the same brainstate.random.seed have different weights: draw "
                        "them with brainstate.random (for example brainstate.random.normal(size=...)).")
    if bool(jnp.all(same_seed == other_seed)):
        raise Incorrect("Layers built after different brainstate.random.seed calls have the same weights: "
                        "draw them from brainstate.random, not from a fixed jax.random.key.")

    in_size = 400
    _, described = made(lambda: build_layer(TanhDense, in_size, 50, seed=2), describe_params("weight"))
    big = np.asarray(param_state(described["weight"], "weight", (in_size, 50)))
    expected_std = 1 / np.sqrt(in_size)
    # The std of 20000 normal draws is within 2% of its true value with overwhelming probability.
    if not 0.9 * expected_std < big.std() < 1.1 * expected_std:
        raise Incorrect(f"With in_size = {in_size} the weights' standard deviation should be 1 / sqrt(in_size) "
                        f"= {expected_std:.3f}, found {big.std():.4f}: draw standard normal numbers and "
                        f"divide them by sqrt(in_size).")
    # The spread alone does not tell the distribution: the kurtosis (E[w^4] / E[w^2]^2) is 3 for normal
    # draws, 1.8 for uniform ones and 1 for signs; for 20000 normal draws it is 3 within 0.1 or so.
    centred = big - big.mean()
    kurtosis = float(np.mean(centred**4) / np.mean(centred**2) ** 2)
    if not 2.6 < kurtosis < 3.4:
        raise Incorrect(f"The weights have the right spread but not a normal distribution (their kurtosis is "
                        f"{kurtosis:.2f}, a normal one's is 3): draw them with brainstate.random.normal.")


# q2 -------------------------------------------------------------------------------------

def tracked_states(batch_size: int, scale_value: float = 3.0):
    scale = brainstate.ParamState(jnp.float32(scale_value))
    seen = brainstate.ShortTermState(jnp.zeros(batch_size, jnp.int32))
    calls = brainstate.ShortTermState(jnp.zeros((), jnp.int32))
    return scale, seen, calls


def call_explaining_state_errors(mapped, *args):
    """``mapped()(*args)``, observed (``mapped`` gets the learner's mapping); brainstate's errors
    about states turned into advice. They are turned inside the observation: brainstate's own
    exception classes do not cross it (they arrive as their nearest built-in base)."""
    return observe(lambda: explaining_state_errors(mapped, *args))


def explaining_state_errors(mapped, *args):
    try:
        return mapped()(*args)
    except brainstate.BatchAxisError:
        raise Incorrect("A state was written with a different value in each element without being declared: "
                        "put `seen` in state_in_axes ({0: seen}), so that each element reads and writes "
                        "its own entry.") from None
    except brainstate.TraceContextError:
        raise Incorrect("A state was written inside a raw JAX transformation (jax.vmap or jax.jit), which "
                        "cannot track brainstate states: map with brainstate.transform.vmap2.") from None
    except (IndexError, ValueError) as error:
        if "index out of range" not in str(error) and "out of bounds" not in str(error):
            raise
        raise Incorrect("A state with no per-element axis was selected in state_in_axes: a type filter such "
                        "as OfType(brainstate.ShortTermState) also selects `calls`, a scalar. Select "
                        "`seen` by instance: state_in_axes={0: seen}.") from None


def state_values(*states) -> tuple:
    """The values of states the learner's code writes, observed."""
    return observe(lambda: tuple(state.value for state in states))


def expect_counters(seen, calls, expected_seen, expected_calls: int, after: str) -> None:
    seen, calls = state_values(seen, calls)
    found = np.asarray(seen)
    if found.shape != np.shape(expected_seen):
        raise Incorrect(f"After {after}, `seen` should keep its shape {np.shape(expected_seen)}, found "
                        f"{found.shape}: declare it in state_in_axes, so that each element reads its own "
                        f"entry instead of the whole vector.")
    if not np.array_equal(found, expected_seen):
        raise Incorrect(f"After {after} on xs = [1, -2, 0.5, 0], `seen` should be {list(expected_seen)}, "
                        f"found {found.tolist()}: add 1 to an element's entry when its x is positive.")
    found_calls = np.asarray(calls)
    if found_calls.shape != ():
        raise Incorrect(f"`calls` should stay a scalar, found shape {found_calls.shape}: it counts calls of the "
                        "whole mapping, so do not declare it per element.")
    if int(found_calls) != expected_calls:
        raise Incorrect(f"After {after}, `calls` should be {expected_calls} (one per call of the mapping, "
                        f"whatever the number of elements), found {int(found_calls)}.")


def check_make_tracked_scaler(make_tracked_scaler) -> None:
    require_callable(make_tracked_scaler, "make_tracked_scaler")
    scale, seen, calls = tracked_states(4)

    def describe_mapping(mapped):
        if not isinstance(mapped, brainstate.transform.StatefulMapping):
            return {"type": type(mapped).__name__}
        return {"policy": repr(mapped.unexpected_out_state_mapping)}

    mapped, described = made(lambda: make_tracked_scaler(scale, seen, calls), describe_mapping)
    if "type" in described:
        raise Incorrect(f"make_tracked_scaler should return what brainstate.transform.vmap2 returns (a "
                        f"StatefulMapping), found {described['type']}.")
    if described["policy"] != repr("raise"):
        raise Incorrect(f"Pass unexpected_out_state_mapping='raise' to vmap2, so that a forgotten declaration "
                        f"is an error; found {described['policy']}.")
    xs = jnp.array([1.0, -2.0, 0.5, 0.0])
    output = expect_array(call_explaining_state_errors(mapped, xs), what="the mapping's output for xs of shape (4,)",
                          shape=(4,))
    expect_close(output, 3.0 * np.asarray(xs), what="the output with scale = 3", why="Return scale.value * x.")
    expect_counters(seen, calls, [1, 0, 1, 0], 1, "one call")
    call_explaining_state_errors(mapped, xs)
    expect_counters(seen, calls, [2, 0, 2, 0], 2, "two calls")
    scale.value = jnp.float32(-1.0)
    expect_close(call_explaining_state_errors(mapped, xs), -np.asarray(xs), what="the output after scale.value = -1",
                 why="Read scale.value inside the mapped function, at every call.")


# q3 -------------------------------------------------------------------------------------

def symmetric_matrix(dim: int, seed: int) -> np.ndarray:
    """A fixed symmetric (D, D) matrix with nonzero off-diagonal entries."""
    A = np.random.default_rng(seed).normal(size=(dim, dim))
    return ((A + A.T) / 2 + np.diag(np.arange(1.0, dim + 1))).astype(np.float32)


def copies(matrix, count: int) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(matrix), (count,) + np.shape(matrix))


def estimates_of(fn, what: str, *matrix_batches, num_probes: int, seed: int) -> np.ndarray:
    """fn(*matrix_batches, num_probes) under a seed, checked to be (B,)."""
    def seeded():
        with brainstate.random.seed_context(seed):
            return fn(*matrix_batches, num_probes)

    found = observe(seeded)
    batch = matrix_batches[0].shape[0]
    return expect_array(found, what=what, shape=(batch,), why_shape="One estimate per element of the batch.")


def expect_fresh_and_reproducible(fn, what: str, *matrix_batches, num_probes: int) -> None:
    """The same seed replays the same estimates; a second call under it draws new ones."""
    def three_calls():
        with brainstate.random.seed_context(5):
            first = np.asarray(fn(*matrix_batches, num_probes))
            second = np.asarray(fn(*matrix_batches, num_probes))
        with brainstate.random.seed_context(5):
            replay = np.asarray(fn(*matrix_batches, num_probes))
        return first, second, replay

    first, second, replay = observe(three_calls)
    if not np.array_equal(first, replay):
        raise Incorrect(f"{what}: the same brainstate.random.seed should give the same estimates, found "
                        "different ones: draw the probes from brainstate.random (for example "
                        "sample_probes(brainstate.random.split_key(), ...)).")
    if np.array_equal(first, second):
        raise Incorrect(f"{what}: two calls drew the same probes. Draw them from brainstate.random, whose "
                        "state advances at every call, not from a fixed jax.random.key.")


def expect_per_element(estimates: np.ndarray, what: str) -> None:
    if np.all(estimates == estimates[0]):
        raise Incorrect(f"{what}: all {estimates.size} identical elements got the same estimate, so they got the "
                        "same probes. Under plain jax.vmap brainstate's random state is not split, and a fixed "
                        "jax.random.key gives the same probes everywhere: map with brainstate.transform.vmap2 and "
                        "draw from brainstate.random inside the mapped function.")


def expect_unbiased(estimates: np.ndarray, exact: float, sample_variance: float, num_probes: int,
                    what: str) -> None:
    """The mean of K estimates within 5 standard errors of exact, and their variance near theory.

    Each estimate has variance sample_variance / num_probes; the mean of K has standard error
    sqrt(that / K). The sample variance of K = 2000 estimates is within 25% of the true variance
    with overwhelming probability (its relative standard error is about sqrt(2 / K) = 3%).
    """
    variance = sample_variance / num_probes
    standard_error = np.sqrt(variance / estimates.size)
    if abs(estimates.mean() - exact) > 5 * standard_error:
        raise Incorrect(f"{what}: the mean of {estimates.size} estimates should be within {5 * standard_error:.3f} "
                        f"of {exact:.3f}, found {estimates.mean():.3f}.")
    if not 0.75 * variance < estimates.var(ddof=1) < 1.33 * variance:
        raise Incorrect(f"{what}: with num_probes = {num_probes} the estimates' variance should be near "
                        f"{variance:.3f}, found {estimates.var(ddof=1):.3f}. Average eps^T A eps over "
                        f"num_probes Rademacher probes per matrix.")


def calls_vmap2(fn) -> bool:
    """Whether ``fn``'s code names vmap2, or refers to it by another name (a global or a closure)."""
    code = getattr(fn, "__code__", None)
    pending, names = [code] if code is not None else [], set()
    while pending:
        current = pending.pop()
        names.update(current.co_names)
        pending += [const for const in current.co_consts if hasattr(const, "co_names")]
    referred = [getattr(fn, "__globals__", {}).get(name) for name in names]
    referred += [cell.cell_contents for cell in getattr(fn, "__closure__", None) or () if _filled(cell)]
    return "vmap2" in names or any(value is vmap2 for value in referred)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return False
    return True


def require_vmap2(fn, name: str, found_so_far: str = "The estimates look right, but ") -> None:
    if not observe(lambda: calls_vmap2(fn)):
        raise Incorrect(f"{found_so_far}`{name}` does not call vmap2: the task asks for a "
                        "brainstate.transform.vmap2 over the matrices, which gives every element its own key "
                        "from brainstate's random state (instead of keys split by hand for jax.vmap).")


def check_batch_trace_estimates(batch_trace_estimates) -> None:
    require_callable(batch_trace_estimates, "batch_trace_estimates")
    what = "batch_trace_estimates"
    # The same shapes, (8, 6, 6) and (2000, 6, 6), throughout: each new shape compiles again.
    diagonal = copies(np.diag(np.arange(1.0, 7.0)).astype(np.float32), 8)
    exact_diagonal = estimates_of(batch_trace_estimates, f"{what} for eight (6, 6) matrices", diagonal,
                                  num_probes=4, seed=0)
    expect_close(exact_diagonal, np.full(8, 21.0), what=f"{what} for diag(1, ..., 6)", rtol=1e-5,
                 why="For a diagonal matrix every Rademacher probe (entries ±1) gives the trace exactly.")
    S = symmetric_matrix(6, seed=0)
    expect_per_element(estimates_of(batch_trace_estimates, what, copies(S, 8), num_probes=4, seed=1),
                       f"{what} for 8 copies of one matrix")
    expect_fresh_and_reproducible(batch_trace_estimates, what, copies(S, 8), num_probes=4)
    many = estimates_of(batch_trace_estimates, what, copies(S, 2000), num_probes=2, seed=2)
    expect_unbiased(many, float(np.trace(S)), probe_variance(S, "rademacher"), 2, f"{what} for 2000 copies")
    require_vmap2(batch_trace_estimates, what)


# q4 -------------------------------------------------------------------------------------

def paired_matrices(count: int, dim: int = 6, seed: int = 3):
    """(A, C) stacks of ``count`` copies, where A - C is diagonal but A and C are not."""
    A = symmetric_matrix(dim, seed)
    C = A - np.diag(np.linspace(0.5, 1.5, dim)).astype(np.float32)
    return copies(A, count), copies(C, count)


def check_paired_trace_differences(paired_trace_differences) -> None:
    require_callable(paired_trace_differences, "paired_trace_differences")
    what = "paired_trace_differences"
    # The same shapes, (8, 6, 6) and (2000, 6, 6), throughout: each new shape compiles again.
    A, C = paired_matrices(8)
    exact = float(np.trace(np.asarray(A[0]) - np.asarray(C[0])))
    differences = estimates_of(paired_trace_differences, f"{what} for 8 pairs of (6, 6) matrices", A, C,
                               num_probes=3, seed=0)
    expect_close(differences, np.full(8, exact), what=f"{what} when A - C is diagonal", rtol=1e-4, atol=1e-4,
                 why="With the same Rademacher probes for A and C, eps^T A eps - eps^T C eps = eps^T (A - C) eps, "
                     "exact for a diagonal A - C. Draw the probes once per pair and use them for both matrices.")
    S, T = symmetric_matrix(6, seed=4), symmetric_matrix(6, seed=5)
    expect_per_element(estimates_of(paired_trace_differences, what, copies(S, 8), copies(T, 8), num_probes=3,
                                    seed=1), f"{what} for 8 identical pairs")
    expect_fresh_and_reproducible(paired_trace_differences, what, copies(S, 8), copies(T, 8), num_probes=3)
    many = estimates_of(paired_trace_differences, what, copies(S, 2000), copies(T, 2000), num_probes=2, seed=2)
    expect_unbiased(many, float(np.trace(S - T)), probe_variance(S - T, "rademacher"), 2,
                    f"{what} for 2000 identical pairs")
    require_vmap2(paired_trace_differences, what)


EXERCISES = (
    Exercise("stateful_vmap", "q1", "a module with ParamState weights", "TanhDense", 1, check_tanh_dense, (
        "Subclass brainstate.nn.Module, call super().__init__() first, then assign self.weight and self.bias.",
        "brainstate.random.normal(size=(in_size, out_size)) draws from brainstate's random state; wrap the "
        "result, divided by jnp.sqrt(in_size), in brainstate.ParamState(...).",
        "In __call__, read self.weight.value and self.bias.value: jnp.tanh(h @ self.weight.value + self.bias.value).",
    )),
    Exercise("stateful_vmap", "q2", "per-element and shared states", "make_tracked_scaler", 1,
             check_make_tracked_scaler, (
        "Define step(x) inside make_tracked_scaler: it reads and writes the three states through .value.",
        "`seen` has one entry per element: declare it by instance, state_in_axes={0: seen}. `calls` and "
        "`scale` stay undeclared: calls.value + 1 is the same in every element, so it is written back once.",
        "return brainstate.transform.vmap2(step, state_in_axes={0: seen}, unexpected_out_state_mapping='raise')",
    )),
    Exercise("stateful_vmap", "q3", "per-element probes without keys", "batch_trace_estimates", 1,
             check_batch_trace_estimates, (
        "Write the estimate for one matrix A: (D, D), then map it over the batch with brainstate.transform.vmap2.",
        "sample_probes(brainstate.random.split_key(), num_probes, D) draws Rademacher probes from brainstate's "
        "random state; inside vmap2 that state holds one key per element.",
        "The estimate is jnp.einsum('pi,ij,pj->p', probes, A, probes).mean(); num_probes is a plain Python int "
        "(close over it, do not map it).",
    )),
    Exercise("stateful_vmap", "q4", "shared probes for a paired comparison", "paired_trace_differences", 2,
             check_paired_trace_differences, (
        "Map over the pairs with vmap2, in_axes=(0, 0): each element receives one A and one C.",
        "Draw the probes once per element and use the same probes for A and for C.",
        "eps^T A eps - eps^T C eps = eps^T (A - C) eps: one einsum on A - C does both at once.",
    )),
)
