"""An exercise is data: the name it checks, a check function, hints and a solution.

In a notebook a learner calls ``q1.check()``, ``q1.hint()`` and ``q1.solution()``. The check
looks the answer up by name in the notebook's namespace, so an unsolved notebook still runs
top to bottom and reports "not attempted".
"""

from __future__ import annotations

import dataclasses
import json
import sys
import sysconfig
from pathlib import Path
from importlib import resources
from typing import Any, Callable, Mapping

from .observe import ReplayError, learner_line
from .outcome import Incorrect, NotAttempted, Outcome

_MARKS = {"passed": "✅", "failed": "❌", "error": "💥", "not attempted": "⏳", "timed out": "⌛"}


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One graded exercise of an exercise set (a notebook).

    ``check_answer`` receives the learner's object and raises ``Incorrect`` with a
    specific message when it is wrong; the stub's ``NotImplementedError`` means
    "not attempted". The grader runs it and the grader tests on the same answer.
    """

    set_name: str
    id: str
    title: str
    answer: str
    points: int
    check_answer: Callable[[Any], None]
    hints: tuple[str, ...]

    def evaluate(self, namespace: Mapping[str, Any]) -> Outcome:
        """Check the answer found in ``namespace`` and say what happened."""
        return evaluate(self.answer, self.check_answer, namespace)

    def check(self) -> None:
        """Check your answer and print what is right or wrong with it."""
        outcome = self.evaluate(sys._getframe(1).f_globals)
        _last_checks[self.key] = outcome
        print(f"{_MARKS[outcome.status]} {self.label}: {outcome.status}. {outcome.message}")

    def hint(self, number: int | None = None) -> None:
        """Print the next hint (or hint ``number``, counting from 1)."""
        if number is None:
            number = _hints_shown.get(self.key, 0) + 1
        if not 1 <= number <= len(self.hints):
            raise ValueError(f"{self.label} has hints 1 to {len(self.hints)}, not {number}.")
        _hints_shown[self.key] = min(number, len(self.hints))
        more = " (that was the last hint)" if number == len(self.hints) else ""
        print(f"💡 {self.label}, hint {number} of {len(self.hints)}{more}: {self.hints[number - 1]}")

    def solution(self) -> None:
        """Print a reference solution."""
        _solutions_shown.add(self.key)
        print(f"# {self.label}: a reference solution\n{solution_source(self.set_name, self.id)}")

    @property
    def key(self) -> str:
        return f"{self.set_name}.{self.id}"

    @property
    def label(self) -> str:
        return f"Exercise {self.id} ({self.title})"

    def __repr__(self) -> str:
        return f"<{self.label}: define `{self.answer}`, then call .check(); .hint() and .solution() help>"


# What this kernel has seen of each exercise, by key ("jit.q1"): for progress().
_hints_shown: dict[str, int] = {}
_last_checks: dict[str, Outcome] = {}
_solutions_shown: set[str] = set()


def progress_report(exercises: tuple[Exercise, ...], namespace: Mapping[str, Any]) -> str:
    """Every exercise of a set with its status in this kernel: the outcome of its last check() and
    its message, "not attempted" while its answer is undefined or `...`, else "not checked yet";
    with the hints and solutions shown. Checks nothing itself."""
    passed = [e for e in exercises if (o := _last_checks.get(e.key)) is not None and o.passed]
    lines = [f"{exercises[0].set_name} exercises: {sum(e.points for e in passed)} of "
             f"{sum(e.points for e in exercises)} points, {len(passed)} of {len(exercises)} right at their last check"]
    for exercise in exercises:
        outcome = _last_checks.get(exercise.key)
        if outcome is not None:
            mark, status, message = _MARKS[outcome.status], outcome.status, outcome.message
        elif namespace.get(exercise.answer, Ellipsis) is Ellipsis:
            mark, status = _MARKS["not attempted"], "not attempted"
            message = evaluate(exercise.answer, lambda _: None, namespace).message
        else:
            mark, status, message = "❔", "not checked yet", f"Run {exercise.id}.check()."
        used = f"hints {_hints_shown.get(exercise.key, 0)} of {len(exercise.hints)}"
        if exercise.key in _solutions_shown:
            used += ", solution shown"
        points = f"{exercise.points} point{'s' if exercise.points != 1 else ''}"
        lines.append(f"{mark} {exercise.label}, {points}: {status}. {message} [{used}]")
    return "\n".join(lines)


def evaluate(answer_name: str, check: Callable[[Any], None], namespace: Mapping[str, Any]) -> Outcome:
    """Run ``check`` on ``namespace[answer_name]`` and turn whatever happens into an Outcome."""
    if answer_name not in namespace:
        return Outcome("not attempted", f"`{answer_name}` is not defined. Run the cell that defines it.")
    value = namespace[answer_name]
    if value is Ellipsis:
        return Outcome("not attempted", f"`{answer_name}` is still `...`: replace it with your answer.")
    try:
        check(value)
    except NotAttempted as stub:
        return Outcome("not attempted", str(stub) or f"`{answer_name}` is still the stub.")
    except NotImplementedError:
        return Outcome("not attempted",
                       f"`{answer_name}` still raises NotImplementedError: replace the stub with your code.")
    except Incorrect as wrong:
        return Outcome("failed", str(wrong))
    except ReplayError as mismatch:
        return Outcome("error", f"the record of `{answer_name}` does not match the checks (did the notebook change "
                                f"the course's code?): {mismatch}")
    except Exception as crash:  # the learner's code raised: say what and where
        where = getattr(crash, "learner_where", None)
        if where is None and not hasattr(crash, "learner_type"):
            where = learner_line(crash.__traceback__)
        kind = getattr(crash, "learner_type", type(crash).__name__)
        return Outcome("error", f"calling `{answer_name}` raised {kind}: {crash}{where or ''}")
    return Outcome("passed", "Well done.")


_LIBRARY_ROOTS = tuple({str(Path(path).resolve()) for path in (
    sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], sysconfig.get_paths()["stdlib"],
    Path(__file__).resolve().parents[1])})


def _is_library(filename: str) -> bool:
    """A frame of the course, of JAX or of any installed library: not the learner's line, even when
    the error was raised there (JAX's own `raise TypeError(...)` is not what the learner wrote)."""
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    return path.startswith(_LIBRARY_ROOTS) or "/site-packages/" in path


def solution_source(set_name: str, exercise_id: str) -> str:
    """The reference solution of one exercise, generated from solutions/<set>.ipynb."""
    return load_solutions(set_name)[exercise_id]


def load_solutions(set_name: str) -> dict[str, str]:
    path = resources.files("hutchinson_course.exercises") / "data" / f"{set_name}.solutions.json"
    return json.loads(path.read_text(encoding="utf-8"))
