"""Grade one submission: read it, run it, test its answers, score them."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from ..exercises import Exercise, exercise_set
from . import execute, export, hidden_tests, submissions

SCORING = ("An exercise scores its max_points times the fraction of its tests that passed; its own "
           "check counts as one of those tests, and an exercise not attempted scores 0. Its status is "
           "'passed' only when every test passed, else the status of the first test that did not, "
           "whose message it shows.")


@dataclasses.dataclass(frozen=True)
class Settings:
    set_name: str | None
    tests: Path | None
    cell_timeout: float
    timeout: float
    test_timeout: float


def grade_notebook(path: Path, settings: Settings) -> dict[str, Any]:
    """The notebook's result (as written to its JSON file)."""
    try:
        notebook = submissions.read(path)
    except submissions.Unreadable as unreadable:
        return without_running(path, settings, f"the notebook could not be read: {unreadable}")
    try:
        set_name = submissions.exercise_set_name(notebook, path, settings.set_name)
    except submissions.UnknownSet as unknown:
        return result(path, None, (), {}, str(unknown))
    exercises = exercise_set(set_name)
    # ignore_cleanup_errors: files the notebook left behind must not cost it its result
    with tempfile.TemporaryDirectory(prefix="hutchinson-grade-", ignore_cleanup_errors=True) as run_dir:
        run = execute.run_notebook(notebook, path.name, Path(run_dir), [e.answer for e in exercises],
                                   cell_timeout=settings.cell_timeout, timeout=settings.timeout)
        exported = [e.id for e in exercises if export.exported(Path(run_dir) / "answers", e.answer)]
        records = hidden_tests.run_tests(set_name, exported, Path(run_dir), private_tests=settings.tests,
                                         time_limit=settings.test_timeout)
    for exercise in exercises:
        if exercise.id not in records:
            why = f"{run.error or 'the notebook stopped early'}, before `{exercise.answer}` was exported"
            records[exercise.id] = _failed(run.unexported_status, why)
    return result(path, set_name, exercises, records, run.error)


def without_running(path: Path, settings: Settings, error: str) -> dict[str, Any]:
    """The result of a notebook that was not run to the end: every exercise gets ``error``."""
    try:
        notebook = submissions.read(path)  # again: the caller may have failed before reading it
    except submissions.Unreadable:
        notebook = None
    try:
        set_name = submissions.exercise_set_name(notebook, path, settings.set_name)
    except submissions.UnknownSet:
        return result(path, None, (), {}, error)
    exercises = exercise_set(set_name)
    return result(path, set_name, exercises, {e.id: _failed("error", error) for e in exercises}, error)


def _failed(status: str, message: str) -> dict[str, Any]:
    return {"total": 1, "tests": [{"name": "notebook", "status": status, "message": message}]}


def result(path: Path, set_name: str | None, exercises: tuple[Exercise, ...],
           records: dict[str, dict[str, Any]], error: str | None) -> dict[str, Any]:
    scored = {exercise.id: score(exercise, records[exercise.id]) for exercise in exercises}
    return {"notebook": str(path), "exercise_set": set_name,
            "total": round(sum(s["points"] for s in scored.values()), 2),
            "max": sum(exercise.points for exercise in exercises),
            "error": error, "scoring": SCORING, "exercises": scored}


def score(exercise: Exercise, record: dict[str, Any]) -> dict[str, Any]:
    tests = record["tests"]
    passed = sum(test["status"] == "passed" for test in tests)
    first_miss = next((test for test in tests if test["status"] != "passed"), None)
    return {"points": round(exercise.points * passed / record["total"], 2), "max_points": exercise.points,
            "status": first_miss["status"] if first_miss else "passed",
            "message": first_miss["message"] if first_miss else tests[0]["message"],
            "tests": tests}
