"""Comparisons that explain themselves: each raises ``Incorrect`` with what was expected,
what was found and, when the caller knows it, what probably went wrong.

The functions keep their own references to numpy's routines, taken at import time, so
that a notebook which later replaces ``numpy.allclose`` (say) cannot change a verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as _np

from .observe import observe, type_name
from .outcome import Incorrect

_asarray = _np.asarray
_isfinite = _np.isfinite
_abs = _np.abs
_all = _np.all
_argmax = _np.argmax
_unravel_index = _np.unravel_index


def _because(why: str | None) -> str:
    return f" {why}" if why else ""


def expect_array(found: Any, *, what: str, shape: tuple[int, ...] | None = None,
                 dtype: str | None = None, why_shape: str | None = None,
                 why_dtype: str | None = None) -> _np.ndarray:
    """Check that ``found`` is an array with the given shape and dtype kind; return it as numpy."""
    if found is None:
        raise Incorrect(f"{what} is None: the function returns nothing. Did you forget `return`?")
    if not hasattr(found, "shape") or not hasattr(found, "dtype"):
        raise Incorrect(f"{what} should be an array, found {type_name(found)}: {found!r:.80}")
    if shape is not None and tuple(found.shape) != tuple(shape):
        raise Incorrect(f"{what} should have shape {tuple(shape)}, found {tuple(found.shape)}."
                        + _because(why_shape))
    if dtype is not None and str(found.dtype) != dtype:
        raise Incorrect(f"{what} should have dtype {dtype}, found {found.dtype}." + _because(why_dtype))
    return _asarray(found)


def require_callable(answer: Any, name: str) -> None:
    """The answer must be a function (looked at through ``observe``, as every use of an answer is)."""
    kind = observe(lambda: None if callable(answer) else type(answer).__name__)
    if kind is not None:
        raise Incorrect(f"`{name}` should be a function, found {kind}.")


def expect_close(found: Any, expected: Any, *, what: str, rtol: float = 1e-5, atol: float = 1e-6,
                 why: str | None = None) -> None:
    """Check that ``found`` equals ``expected`` elementwise within ``atol + rtol * |expected|``."""
    found_arr = _asarray(found, dtype=float)
    expected_arr = _asarray(expected, dtype=float)
    if found_arr.shape != expected_arr.shape:
        raise Incorrect(f"{what} should have shape {expected_arr.shape}, found {found_arr.shape}.")
    if not bool(_all(_isfinite(found_arr))):
        raise Incorrect(f"{what} contains nan or inf." + _because(why))
    error = _abs(found_arr - expected_arr)
    bound = atol + rtol * _abs(expected_arr)
    if not bool(_all(error <= bound)):
        worst = _unravel_index(int(_argmax(error - bound)), error.shape) if error.ndim else ()
        where = f" at index {tuple(int(i) for i in worst)}" if worst else ""
        raise Incorrect(f"{what} is off{where}: expected {float(expected_arr[worst]):.6g}, "
                        f"found {float(found_arr[worst]):.6g} (allowed error {float(bound[worst]):.2g})."
                        + _because(why))


def expect_scalar_within(found: Any, expected: float, tolerance: float, *, what: str,
                         why: str | None = None) -> float:
    """Check that ``found`` is a real scalar within ``tolerance`` of ``expected``; return it."""
    arr = expect_array(found, what=what, shape=())
    value = float(arr)
    if not math.isfinite(value):
        raise Incorrect(f"{what} is {value}." + _because(why))
    if abs(value - expected) > tolerance:
        raise Incorrect(f"{what} should be within {tolerance:.3g} of {expected:.6g}, found {value:.6g}."
                        + _because(why))
    return value


def value_shapes(jaxpr) -> set[tuple[int, ...]]:
    """The shapes of every value a jaxpr computes, inside nested jaxprs (jit, scan, custom rules) too.

    Checks use it to see *how* an answer computes, e.g. whether it forms a (D, D) Jacobian.
    """
    shapes = set()
    for eqn in jaxpr.eqns:
        shapes.update(tuple(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    shapes |= value_shapes(inner)
    return shapes
