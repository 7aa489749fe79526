"""Graded exercises: one module per exercise set (one exercise notebook each).

A module of this package that defines ``EXERCISES`` is an exercise set named after the module.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from .exercise import Exercise, evaluate, load_solutions, progress_report
from .outcome import Incorrect, NotAttempted, Outcome

_NOT_SETS = {"exercise", "expect", "outcome"}
EXERCISE_SETS = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                             if not m.ispkg and m.name not in _NOT_SETS))


def exercise_set(name: str) -> tuple[Exercise, ...]:
    """The exercises of the set ``name`` (for example ``"jit"``), in notebook order."""
    if name not in EXERCISE_SETS:
        raise ValueError(f"unknown exercise set {name!r}; the course has {', '.join(EXERCISE_SETS)}")
    return importlib.import_module(f"{__name__}.{name}").EXERCISES


def progress(name: str) -> None:
    """Print every exercise of the set ``name`` with its status: the result of its last ``check()``
    in this kernel ("not attempted" while its answer is undefined), and the hints used."""
    print(progress_report(exercise_set(name), sys._getframe(1).f_globals))


def set_devices(name: str) -> int | None:
    """How many (simulated) devices the set's tests need: its module's ``DEVICES``, if any."""
    exercise_set(name)
    return getattr(importlib.import_module(f"{__name__}.{name}"), "DEVICES", None)


__all__ = ["EXERCISE_SETS", "Exercise", "Incorrect", "NotAttempted", "Outcome", "evaluate", "exercise_set",
           "load_solutions", "progress", "set_devices"]
