"""Exercises of the jit chapter: static arguments, control flow, timing, and the estimator's error.

Each check runs the learner's object on small inputs and explains what differs. The grader
runs these checks again, plus the grader tests in ``hutchinson_course.grading.hidden.jit``.
"""

from __future__ import annotations

import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..estimators.variance import probe_variance
from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable
from .observe import observe
from .outcome import Incorrect

_TRACED_BOOL = "Python `if` (or `and`, `or`, `bool()`) was applied to a traced value"


def require_jitted(fn, name: str, *example_args, **example_kwargs) -> None:
    """``fn`` must compile with jax.jit: itself jitted, or a function that calls a jitted one.

    Tracing one call shows it, whatever wraps the jitted function: its program holds a jit."""
    require_callable(fn, name)
    if observe(lambda: hasattr(fn, "lower")):
        return
    program = call_explaining_tracer_errors(
        lambda *args: str(jax.make_jaxpr(lambda *a: fn(*a, **example_kwargs))(*args)), *example_args)
    if not _JIT_IN_PROGRAM.search(program):
        raise Incorrect(f"`{name}` is a plain Python function; it should be compiled with jax.jit "
                        "(as a decorator `@jax.jit`, or `jax.jit(f, ...)`).")


_JIT_IN_PROGRAM = re.compile(r"\bp?jit\[")


def call_explaining_tracer_errors(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, observed; JAX's errors about traced values turned into advice."""
    try:
        return observe(lambda: fn(*args, **kwargs))
    except jax.errors.TracerIntegerConversionError:
        raise Incorrect("An argument that decides the shape of the program (a loop count) was traced. "
                        "Mark it static with static_argnames (or static_argnums).") from None
    except jax.errors.TracerBoolConversionError:
        raise Incorrect(f"{_TRACED_BOOL}: under jit its value is unknown while tracing. "
                        "Use jnp.where(...) or jax.lax.cond(...) instead.") from None
    except jax.errors.ConcretizationTypeError as error:
        raise Incorrect(f"A traced value was needed as a Python value: {str(error).splitlines()[0]}") from None
    except TypeError as error:
        if "Shapes must be 1D sequences of concrete values" not in str(error):
            raise
        raise Incorrect("An argument used as an array shape was traced. Arguments that decide shapes "
                        "(such as a number of probes) must be static: static_argnames=(...).") from None


# q1 -------------------------------------------------------------------------------------

def power_sum_reference(x, n: int):
    """x + x**2 + ... + x**n."""
    x = np.asarray(x, dtype=np.float64)
    return sum(x**k for k in range(1, n + 1))


def check_power_sum_jit(power_sum_jit) -> None:
    x = jnp.array([0.5, -1.0, 2.0])
    require_jitted(power_sum_jit, "power_sum_jit", x, n=3)
    for n in (1, 3):
        found = call_explaining_tracer_errors(power_sum_jit, x, n=n)
        found = expect_array(found, what=f"power_sum_jit(x, n={n})", shape=(3,))
        expect_close(found, power_sum_reference(x, n), what=f"power_sum_jit(x, n={n})")


# q2 -------------------------------------------------------------------------------------

def clip_by_norm_reference(x, max_norm):
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x)
    return x if norm <= max_norm else x * (max_norm / norm)


def check_clip_by_norm(clip_by_norm) -> None:
    x = jnp.array([3.0, 4.0])
    require_jitted(clip_by_norm, "clip_by_norm", x, jnp.float32(1.0))
    for max_norm, case in ((10.0, "a vector already short enough"), (1.0, "a vector longer than max_norm")):
        try:
            found = call_explaining_tracer_errors(clip_by_norm, x, jnp.float32(max_norm))
        except ValueError as error:
            if "hashable" in str(error):
                raise Incorrect("max_norm was made static, but it is an array: keep it traced, so that "
                                "changing it does not recompile.") from None
            raise
        found = expect_array(found, what=f"clip_by_norm for {case}", shape=(2,))
        expect_close(found, clip_by_norm_reference(x, max_norm), what=f"clip_by_norm for {case}")
    zeros = call_explaining_tracer_errors(clip_by_norm, jnp.zeros(2), jnp.float32(1.0))
    expect_close(zeros, np.zeros(2), what="clip_by_norm of the zero vector",
                 why="The zero vector has norm 0, and dividing by it gives nan: guard the division, "
                     "for example by dividing by jnp.maximum(norm, max_norm).")


# q3 -------------------------------------------------------------------------------------

class PendingResult:
    """Stands in for an array whose computation finishes ``seconds`` after dispatch."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def block_until_ready(self):
        time.sleep(self.seconds)
        return self


class DispatchRecorder:
    """A fake JAX function: returns at once, the work shows up only when you block on it.

    ``delays`` are the blocking times of successive calls; the first call also sleeps
    ``compile_seconds``, the way a first jit call compiles.
    """

    def __init__(self, delays, compile_seconds=0.0):
        self.delays = list(delays)
        self.compile_seconds = compile_seconds
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.compile_seconds)
        return PendingResult(self.delays[min(self.calls, len(self.delays)) - 1])


def timed_calls(time_jax_call, fake: DispatchRecorder, *args, repeats: int):
    """(what ``time_jax_call(fake, *args, repeats=repeats)`` returned, how often it called ``fake``)."""
    return observe(lambda: (time_jax_call(fake, *args, repeats=repeats), fake.calls))


def check_time_jax_call(time_jax_call) -> None:
    require_callable(time_jax_call, "time_jax_call")
    found, calls = timed_calls(time_jax_call, DispatchRecorder([0.02] * 8), repeats=5)
    if calls != 6:
        raise Incorrect(f"With repeats=5 the function should be called 6 times (1 warm-up + 5 timed), "
                        f"found {calls}.")
    if not isinstance(found, (float, np.floating)):
        raise Incorrect(f"time_jax_call should return the median in seconds as a float, found "
                        f"{type(found).__name__}.")
    if found < 0.015:
        raise Incorrect(f"Each call's work takes 0.02 s once you block on its result, but you measured "
                        f"{found:.4f} s: block with jax.block_until_ready(result) inside the timed region.")
    if found > 0.045:
        raise Incorrect(f"Each call's work takes 0.02 s, but you returned {found:.4f} s: measure the calls "
                        "themselves (time.perf_counter() before and after each).")
    check_time_jax_call_median(time_jax_call)
    check_time_jax_call_warm_up(time_jax_call)
    check_time_jax_call_pytree(time_jax_call)


def check_time_jax_call_median(time_jax_call) -> None:
    # The timed calls take 0.03, 0.03, 0.001, 0.03 and 0.3 s: the median (0.03) is neither the
    # minimum (0.001) nor the mean (0.078), nor a figure that does not come from the calls.
    runs = "Runs of 0.03, 0.03, 0.001, 0.03 and 0.3 s"
    found = float(observe(lambda: time_jax_call(DispatchRecorder([0.03, 0.03, 0.03, 0.001, 0.03, 0.3]), repeats=5)))
    if found < 0.025:
        raise Incorrect(f"{runs} gave {found:.4f} s: return the median of the durations (the minimum "
                        "hides how long a typical call takes).")
    if found > 0.055:
        raise Incorrect(f"{runs} gave {found:.3f} s: return the median, which ignores such outliers, "
                        "not the mean.")


def check_time_jax_call_warm_up(time_jax_call) -> None:
    # The first call compiles for 0.15 s: with repeats=1 a timed first call cannot hide in the median.
    found = float(observe(lambda: time_jax_call(DispatchRecorder([0.01, 0.01, 0.01], compile_seconds=0.15), repeats=1)))
    if found > 0.08:
        raise Incorrect(f"The first call compiles for 0.15 s and each later call takes 0.01 s; with "
                        f"repeats=1 you measured {found:.3f} s: call fn once before timing, and do not time "
                        "that warm-up call.")


def check_time_jax_call_pytree(time_jax_call) -> None:
    recorders = [DispatchRecorder([0.02] * 8), DispatchRecorder([0.0] * 8)]
    advice = ("When fn returns a tuple or dict of arrays, wait for all of them: "
              "jax.block_until_ready(result) handles any pytree.")
    try:
        found = float(observe(lambda: time_jax_call(lambda: (recorders[0](), {"b": recorders[1]()}), repeats=3)))
    except AttributeError as error:
        if "block_until_ready" not in str(error):
            raise
        raise Incorrect(f"{advice} (A tuple has no method .block_until_ready().)") from None
    if not found >= 0.015:
        raise Incorrect(advice)


# q4 -------------------------------------------------------------------------------------

def _test_matrix(seed: int = 0, dim: int = 6):
    A = np.random.default_rng(seed).normal(size=(dim, dim))
    return jnp.asarray((A + A.T) / 2 + 2 * np.eye(dim), dtype=jnp.float32)


def _estimate_and_error(fn, A, key, num_probes, probe_kind):
    result = call_explaining_tracer_errors(fn, A, key, num_probes=num_probes, probe_kind=probe_kind)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Incorrect(f"hutchinson_with_error should return a pair (estimate, standard_error), "
                        f"found {type(result).__name__}.")
    call = f"hutchinson_with_error(A of shape {tuple(A.shape)}, key, num_probes={num_probes}, probe_kind={probe_kind!r})"
    estimate = expect_array(result[0], what=f"the estimate of {call}", shape=(), why_shape="Average over the probes.")
    error = expect_array(result[1], what=f"the standard error of {call}", shape=())
    return float(estimate), float(error)


def check_hutchinson_with_error(hutchinson_with_error) -> None:
    diagonal = jnp.diag(jnp.arange(1.0, 5.0))
    require_jitted(hutchinson_with_error, "hutchinson_with_error", diagonal, jax.random.key(0),
                   num_probes=8, probe_kind="rademacher")
    estimate, error = _estimate_and_error(hutchinson_with_error, diagonal, jax.random.key(0), 8, "rademacher")
    if abs(estimate - 10.0) > 1e-4 or abs(error) > 1e-4:
        raise Incorrect(f"For a diagonal matrix every Rademacher sample equals the trace (10), so the "
                        f"estimate is exact and the standard error 0; found {estimate:.4g} ± {error:.4g}.")
    A = _test_matrix()
    trace = float(jnp.trace(A))
    num_probes = 4000
    for kind in ("rademacher", "gaussian"):
        estimate, error = _estimate_and_error(hutchinson_with_error, A, jax.random.key(1), num_probes, kind)
        theory = np.sqrt(probe_variance(A, kind) / num_probes)
        if not 0.85 * theory < error < 1.15 * theory:
            raise Incorrect(f"With {num_probes} {kind} probes the standard error should be near "
                            f"{theory:.4f} (sample std / sqrt(num_probes)), found {error:.4f}.")
        if abs(estimate - trace) > 5 * theory:
            raise Incorrect(f"With {num_probes} {kind} probes the estimate should be within "
                            f"{5 * theory:.3f} of the trace {trace:.3f}, found {estimate:.3f}.")


EXERCISES = (
    Exercise("jit", "q1", "static loop count", "power_sum_jit", 1, check_power_sum_jit, (
        "`n` is the number of loop iterations, so the program's shape depends on it.",
        "jax.jit takes static_argnames=... (or static_argnums=...) for such arguments.",
        "power_sum_jit = jax.jit(power_sum, static_argnames=\"n\")",
    )),
    Exercise("jit", "q2", "control flow on a traced value", "clip_by_norm", 1, check_clip_by_norm, (
        "Under jit, `jnp.linalg.norm(x) > max_norm` is a traced boolean: Python's `if` cannot read it.",
        "jnp.where(condition, a, b) computes both a and b and picks elementwise.",
        "Guard the division so that the zero vector gives zeros: scale = max_norm / jnp.maximum(norm, max_norm).",
    )),
    Exercise("jit", "q3", "timing correctly", "time_jax_call", 1, check_time_jax_call, (
        "Call fn once before timing: that call compiles.",
        "A JAX call returns before the work is done; jax.block_until_ready(result) waits for it.",
        "Put each call and its block_until_ready between two time.perf_counter() calls and return "
        "statistics.median of the durations.",
    )),
    Exercise("jit", "q4", "the estimator and its standard error", "hutchinson_with_error", 2,
             check_hutchinson_with_error, (
        "Sample the probes as in the chapter, then compute all the samples eps^T A eps at once: shape (num_probes,).",
        "The standard error of a mean of m samples is their standard deviation (ddof=1) over sqrt(m).",
        "Decorate with functools.partial(jax.jit, static_argnames=(\"num_probes\", \"probe_kind\")).",
    )),
)
