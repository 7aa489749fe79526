"""Graded exercises: one module per exercise set (one exercise notebook each), declared in
``registry.SETS``.
"""

from __future__ import annotations

import importlib
import sys

from . import registry
from .exercise import Exercise, evaluate, load_solutions, progress_report
from .observe import observe
from .outcome import Incorrect, NotAttempted, Outcome

EXERCISE_SETS = tuple(s.name for s in registry.SETS)


def exercise_set(name: str) -> tuple[Exercise, ...]:
    """The exercises of the set ``name`` (for example ``"jit"``), in notebook order."""
    registry.lookup(name)
    exercises = importlib.import_module(f"{__name__}.{name}").EXERCISES
    strays = [f"{e.id} (declared for {e.set_name!r})" for e in exercises if e.set_name != name]
    if strays:
        raise ValueError(f"the {name} set's module declares exercises of another set: {', '.join(strays)}")
    return exercises


def progress(name: str) -> None:
    """Print every exercise of the set ``name`` with its status: the result of its last ``check()``
    in this kernel ("not attempted" while its answer is undefined), and the hints used."""
    print(progress_report(exercise_set(name), sys._getframe(1).f_globals))


def set_devices(name: str) -> int | None:
    """How many (simulated) devices the set's code needs, as declared in the registry."""
    return registry.lookup(name).devices


__all__ = ["EXERCISE_SETS", "Exercise", "Incorrect", "NotAttempted", "Outcome", "evaluate", "exercise_set", "observe",
           "load_solutions", "progress", "set_devices"]
