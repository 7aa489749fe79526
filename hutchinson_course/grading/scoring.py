"""What an exercise is scored on, in one place: the notebook's check, then the grader tests of
``hidden/<set>.py`` (public: they ship in the package), then the instructor's private tests
(``--tests``, the one channel a learner cannot see). Both sides of a graded run read it: the
learner's kernel, which runs them to collect what the answer returns (``collect``), and the judge,
which replays that record through the same tests to decide (``judge``).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..exercises import Exercise, Incorrect
from .hidden import exercise_of, own_tests, weight_of


def collect_tests(set_name: str, private_tests: str | None,
                  exercises: dict[str, Exercise]) -> dict[str, list[Callable[[Any], None]]]:
    """The grader (then private) tests of each exercise, in the order they are defined."""
    modules = [importlib.import_module(f"{__package__}.hidden.{set_name}")]
    if private_tests:
        modules.append(load_module(Path(private_tests)))
    tests: dict[str, list[Callable[[Any], None]]] = {exercise_id: [] for exercise_id in exercises}
    for module in modules:
        for name, test in own_tests(module):
            owner = exercise_of(name, exercises)
            if owner is None:
                raise ValueError(f"{module.__name__}.{name} names no exercise of the {set_name} set "
                                 f"(its exercises are {', '.join(exercises)}): name it test_<id>_<what>")
            tests[owner].append(test)
    return tests


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"private_tests_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exercise_checks(exercise: Exercise, tests: list[Callable[[Any], None]]) -> list[tuple[str, Callable, int]]:
    """What an exercise is scored on, in order: (name, check, weight) for the notebook's check, which
    weighs 1, then each grader (and private) test, by its weight."""
    return [("check", exercise.check_answer, 1)] + [(test.__name__, _asserts_fail(test), weight_of(test))
                                                    for test in tests]


def _asserts_fail(test: Callable[[Any], None]) -> Callable[[Any], None]:
    """A plain `assert` in a test (natural in an instructor's file) means failed, not error."""
    def check(answer: Any) -> None:
        try:
            test(answer)
        except AssertionError as error:  # Incorrect included: its message is kept
            raise Incorrect(str(error) or f"{test.__name__} failed.") from error
    return check
