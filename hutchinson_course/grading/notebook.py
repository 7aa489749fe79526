"""Grade one submission: read it, run it, test its answers, score them."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..exercises import Exercise, exercise_set
from . import execute, judge, processes, report, submissions

SCORING = ("An exercise scores its max_points times the fraction of its tests that passed, each test "
           "counted by its weight: the check in the notebook weighs 1, the grader tests (and the instructor's "
           "private tests, if any) 1 each, except the tests of the point the exercise teaches, which weigh "
           "more (see each test's weight); an exercise not attempted scores 0. Its status is 'passed' only "
           "when every test passed, else the status of the first test that did not, whose message it shows.")


@dataclasses.dataclass(frozen=True)
class Settings:
    set_name: str | None
    tests: Path | None
    cell_timeout: float
    timeout: float
    test_timeout: float
    run_root: Path | None = None  # where the temporary run folders go
    sandbox: processes.Sandbox | None = None
    memory_limit: int | None = None  # bytes per process
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # for every child (the compilation cache)
    judges: judge.Judges | None = None  # shared by the notebooks of a class; one of its own if None


def grade_notebook(submission: submissions.Submission, settings: Settings) -> dict[str, Any]:
    """The notebook's result (as written to its JSON file)."""
    path = submission.path
    try:
        notebook = submissions.read(path)
    except submissions.Unreadable as unreadable:
        return without_running(submission, settings, f"the notebook could not be read: {unreadable}")
    try:
        set_name = submissions.exercise_set_name(notebook, path, settings.set_name)
    except submissions.UnknownSet as unknown:
        return result(submission, None, (), {}, str(unknown))
    exercises = exercise_set(set_name)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=settings.run_root))
    try:
        run_dir.chmod(0o755)  # the sandbox's user is not the grader's
        run = execute.run_notebook(notebook, path.name, run_dir, set_name, [(e.id, e.answer) for e in exercises],
                                   cell_timeout=settings.cell_timeout, timeout=settings.timeout,
                                   test_timeout=settings.test_timeout, private_tests=settings.tests,
                                   sandbox=settings.sandbox, memory_limit=settings.memory_limit, env=settings.env)
        stopped = run.error or "the notebook stopped early"
        missing = {e.id: ("timed out", f"it ran past the time limit of {settings.test_timeout:g} s and did not "
                                       "stop (a loop in compiled code?)") if e.id in run.hung
                   else (run.untested_status, stopped) for e in exercises}
        # Not sandboxed: the judge never runs the learner's code, only reads what it returned.
        with contextlib.nullcontext(settings.judges) if settings.judges else \
                judge.Judges(run_dir, memory_limit=settings.memory_limit, env=settings.env) as judges:
            records = judge.run_judge(set_name, [e.id for e in exercises], run_dir, judges=judges,
                                      private_tests=settings.tests, time_limit=settings.test_timeout,
                                      missing=missing)
    finally:
        # The answers' records must not outlive the grading; files the notebook left behind
        # (read-only, say) must not cost it its result.
        shutil.rmtree(run_dir, ignore_errors=True)
    return result(submission, set_name, exercises, records, run.error, run.notes)


def without_running(submission: submissions.Submission, settings: Settings, error: str) -> dict[str, Any]:
    """The result of a notebook that was not run to the end: every exercise of its set (from its
    metadata, --set or its file name) gets ``error`` and scores 0 of its maximum."""
    try:
        notebook = submissions.read(submission.path)  # again: the caller may have failed before reading it
    except submissions.Unreadable:
        notebook = None
    try:
        set_name = submissions.exercise_set_name(notebook, submission.path, settings.set_name)
    except submissions.UnknownSet as unknown:
        return result(submission, None, (), {}, f"{error}; {unknown}")
    exercises = exercise_set(set_name)
    return result(submission, set_name, exercises, {e.id: _failed("error", error) for e in exercises}, error)


def _failed(status: str, message: str) -> dict[str, Any]:
    return {"total": 1, "tests": [{"name": "notebook", "status": status, "message": message}]}


def result(submission: submissions.Submission, set_name: str | None, exercises: tuple[Exercise, ...],
           records: dict[str, dict[str, Any]], error: str | None, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    scored = {exercise.id: score(exercise, records[exercise.id]) for exercise in exercises}
    return {"notebook": submission.name, "path": str(submission.path), "sha256": submission.digest(),
            "exercise_set": set_name,
            "total": round(sum(s["points"] for s in scored.values()), 2),
            "max": sum(exercise.points for exercise in exercises),
            "error": None if error is None else report.cap(error), "notes": [report.cap(n) for n in notes],
            "scoring": SCORING, "exercises": scored}


def score(exercise: Exercise, record: dict[str, Any]) -> dict[str, Any]:
    tests = [{**test, "message": report.cap(test["message"])} for test in record["tests"]]
    passed = sum(test.get("weight", 1) for test in tests if test["status"] == "passed")
    first_miss = next((test for test in tests if test["status"] != "passed"), None)
    return {"points": round(exercise.points * passed / record["total"], 2), "max_points": exercise.points,
            "status": first_miss["status"] if first_miss else "passed",
            "message": first_miss["message"] if first_miss else tests[0]["message"],
            "tests": tests}
