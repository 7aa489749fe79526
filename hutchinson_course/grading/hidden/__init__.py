"""Grader tests: one module per exercise set, run by the grader. They ship in the package, so
they are public: they keep honest learners from passing by luck, not cheats from reading.

In ``hidden/<set>.py``, each function ``test_<exercise id>_<what>(answer)`` receives the
learner's object and fails by raising ``Incorrect`` (from ``hutchinson_course.exercises``, with
a message the learner would understand) or ``AssertionError``; any other exception counts as an
error in the learner's code. An instructor's private file (``hutchinson-grade --tests``) follows
the same convention and adds its tests to these.

A test counts once towards its exercise's score unless it is marked ``@teaches(weight)``: the
tests of the point an exercise teaches weigh enough that an answer missing that point cannot
keep most of the marks, whatever else it gets right.
"""

from __future__ import annotations

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
