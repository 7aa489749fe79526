"""Grader tests: one module per exercise set, run by the grader. They ship in the package, so
they are public: they keep honest learners from passing by luck, not cheats from reading.

In ``hidden/<set>.py``, each function ``test_<exercise id>_<what>(answer)`` receives the
learner's answer and fails by raising ``Incorrect`` (from ``hutchinson_course.exercises``, with
a message the learner would understand) or ``AssertionError``; any other exception counts as an
error in the learner's code. Every call to the answer, and every look at it, is wrapped in
``observe(lambda: ...)``: the tests run once in the learner's kernel, recording what the answer
returns, and once in the judge, replaying that record (``exercises.observe``). An instructor's
private file (``hutchinson-grade --tests``) follows the same conventions and adds its tests to these.

A test counts once towards its exercise's score unless it is marked ``@teaches(weight)``: the
tests of the point an exercise teaches weigh enough that an answer missing that point cannot
keep most of the marks, whatever else it gets right.
"""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

Test = TypeVar("Test", bound=Callable)


def teaches(weight: int) -> Callable[[Test], Test]:
    """Mark a grader test as one of the exercise's point: it counts ``weight`` times."""
    def mark(test: Test) -> Test:
        test.weight = weight
        return test
    return mark


def weight_of(test: Callable) -> int:
    return int(getattr(test, "weight", 1))


def exercise_of(test_name: str, exercise_ids) -> str | None:
    """The exercise a test ``test_<exercise id>_<what>`` belongs to, or None: the longest matching id,
    so that test_q1_b_x belongs to q1_b when both exist."""
    owners = [i for i in exercise_ids if test_name.startswith(f"test_{i}_")]
    return max(owners, key=len) if owners else None


def own_tests(module) -> list[tuple[str, Callable]]:
    """The ``test_*`` functions defined in ``module`` itself (not imported into it), in order."""
    return [(name, value) for name, value in vars(module).items()
            if name.startswith("test_") and callable(value) and getattr(value, "__module__", None) == module.__name__]


def check_test_names(module_name: str) -> None:
    """Fail at import when a grader test of ``hidden.<set>`` names no exercise of that set: each
    ``test_<exercise id>_<what>`` belongs to its exercise. Called at the end of every such module."""
    from ...exercises import exercise_set

    set_name = module_name.rsplit(".", 1)[1]
    ids = [exercise.id for exercise in exercise_set(set_name)]
    strays = [name for name, _ in own_tests(sys.modules[module_name]) if exercise_of(name, ids) is None]
    if strays:
        raise ImportError(f"{module_name}: {', '.join(strays)} name no exercise of the {set_name} set "
                          f"(its exercises are {', '.join(ids)}): name each test_<id>_<what>")
