"""Test the exported answers in a process of their own, never in the learner's kernel.

So nothing a notebook did to jax, numpy or the exercise objects can change a verdict. For each
exercise, the child process (``main``) runs the exercise's check in the notebook through
``evaluate`` (the same verdicts and messages the learner saw), then the grader tests
``hutchinson_course.grading.hidden.<set>.test_<id>_<what>(answer)`` (public: they ship in the
package, a learner can read them), then those of the instructor's private file (``--tests``, the
one channel a learner cannot see), all under one time limit per exercise. A child that hangs or
dies anyway costs only the exercise it was on: the grader starts a new child for the rest.

An exercise's record is ``{"total": the tests' summed weight, "tests": [{"name", "status", "message",
"weight"}]}``, listing the tests that ran, in order (a test weighs 1 unless marked ``hidden.teaches``). Messages are cut to ``report.MESSAGE_LIMIT`` characters.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..exercises import Exercise, Incorrect, evaluate, exercise_set, set_devices
from ..exercises.outcome import STATUSES
from . import export, processes, report
from .hidden import exercise_of, own_tests, weight_of

# Time a child may take beyond its exercises' limits (importing jax, mostly) before it is killed.
SPARE_SECONDS = 60


# Bigger than this, a result file was not written by the grader's code alone: it is not read.
RESULT_SIZE_LIMIT = 10 * 2**20


def run_tests(set_name: str, exercise_ids: list[str], run_dir: Path, *, private_tests: Path | None,
              time_limit: float, sandbox: processes.Sandbox | None = None, memory_limit: int | None = None,
              env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Records of ``exercise_ids``, whose answers are in ``run_dir/answers``.

    The private test file is copied into ``run_dir`` so that the sandbox, which hides the rest of
    the machine's /tmp, can read it; ``env`` adds to the child's environment."""
    if private_tests is not None:
        copy = run_dir / "private_tests" / private_tests.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(private_tests.read_bytes())
        private_tests = copy
    records: dict[str, dict[str, Any]] = {}
    remaining = list(exercise_ids)
    while remaining:
        attempt = run_dir / f"tests-{len(records)}"
        job = {"set": set_name, "exercises": remaining, "answers_dir": str(run_dir / "answers"),
               "private_tests": str(private_tests) if private_tests else None, "time_limit": time_limit,
               "result": str(attempt.with_suffix(".result.json")), "heartbeat": str(attempt.with_suffix(".beat"))}
        attempt.with_suffix(".job.json").write_text(json.dumps(job))
        code = processes.run_python(__name__, [str(attempt.with_suffix(".job.json"))], cwd=run_dir,
                                    timeout=SPARE_SECONDS + time_limit, heartbeat=attempt.with_suffix(".beat"),
                                    stderr_path=attempt.with_suffix(".stderr"),
                                    env={**(env or {}), **device_environment(set_name)},
                                    sandbox=sandbox, memory_limit=memory_limit)
        records.update(_read_records(attempt.with_suffix(".result.json"), remaining))
        remaining = [exercise_id for exercise_id in remaining if exercise_id not in records]
        if remaining:  # the child hung or died on this exercise
            if code is None:
                why = ("timed out", "the tests did not stop at their time limit (a loop in compiled code, "
                                    "which cannot be interrupted?)")
            else:
                why = ("error", f"the test process died ({processes.describe_exit(code)}): "
                                f"{processes.last_line(attempt.with_suffix('.stderr'))}")
            records[remaining.pop(0)] = {"total": 1, "tests": [_entry("tests", *why)]}
    return records


def _read_records(path: Path, expected: list[str]) -> dict[str, dict[str, Any]]:
    """The records the child wrote, those of well-formed shape only (learner code ran beside it)."""
    try:
        if path.stat().st_size > RESULT_SIZE_LIMIT:
            return {}
        written = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return {}
    records = {}
    for exercise_id in expected:
        record = written.get(exercise_id) if isinstance(written, dict) else None
        try:
            tests = [_entry(str(t["name"]), t["status"] if t["status"] in STATUSES else "error", str(t["message"]),
                            min(max(int(t.get("weight", 1)), 1), 100))
                     for t in record["tests"]]
            total = max(int(record["total"]), sum(t["weight"] for t in tests), 1)
            records[exercise_id] = {"total": total, "tests": tests}
        except (KeyError, TypeError, ValueError):
            continue
    return records


def device_environment(set_name: str) -> dict[str, str]:
    """XLA's flag for the simulated devices an exercise set needs (its module's ``DEVICES``), which
    must be in the environment before the test process starts JAX."""
    devices = set_devices(set_name)
    if devices is None:
        return {}
    flag = f"--xla_force_host_platform_device_count={devices}"
    others = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                      if not f.startswith("--xla_force_host_platform_device_count"))
    return {"XLA_FLAGS": f"{others} {flag}".strip()}


def _entry(name: str, status: str, message: str, weight: int = 1) -> dict[str, Any]:
    return {"name": name[:200], "status": status, "message": report.cap(message), "weight": weight}


class _OutOfTime(BaseException):
    """Raised by SIGALRM; a BaseException, so the learner's `except Exception:` cannot swallow it."""


def _out_of_time(signum, frame):
    raise _OutOfTime


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    records: dict[str, dict[str, Any]] = {}
    try:
        # Imported before any answer is unpickled, so the checks hold their own references to
        # numpy and jax before learner code runs in this process.
        exercises = {exercise.id: exercise for exercise in exercise_set(job["set"])}
        tests = collect_tests(job["set"], job["private_tests"], exercises)
    except Exception as error:  # a broken test file: every exercise says so
        failure = _entry("tests", "error", f"the tests could not be loaded: {type(error).__name__}: {error}")
        records = {exercise_id: {"total": 1, "tests": [failure]} for exercise_id in job["exercises"]}
        _write_json(Path(job["result"]), records)
        return
    export.load_cells(Path(job["answers_dir"]))
    signal.signal(signal.SIGALRM, _out_of_time)
    for exercise_id in job["exercises"]:
        Path(job["heartbeat"]).touch()
        records[exercise_id] = _test_exercise(exercises[exercise_id], tests[exercise_id],
                                              Path(job["answers_dir"]), job["time_limit"])
        _write_json(Path(job["result"]), records)  # after each exercise, in case the next one kills us


def collect_tests(set_name: str, private_tests: str | None,
                  exercises: dict[str, Exercise]) -> dict[str, list[Callable[[Any], None]]]:
    """The hidden (then private) tests of each exercise, in the order they are defined."""
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


def _test_exercise(exercise: Exercise, tests: list[Callable[[Any], None]], answers_dir: Path,
                   seconds: float) -> dict[str, Any]:
    checks = exercise_checks(exercise, tests)
    done: list[dict[str, Any]] = []
    weight = 1
    running: str | None = "check"
    try:
        # Fires again every half second, in case the learner's code catches the first one.
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
        try:
            namespace = export.load_answer(answers_dir, exercise.answer)
            for running, check, weight in checks:
                outcome = evaluate(exercise.answer, check, namespace)
                done.append(_entry(running, outcome.status, outcome.message, weight))
                if running == "check" and outcome.status == "not attempted":
                    break
            running = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _OutOfTime:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if running is not None:  # else the alarm came after the last test, too late to matter
            done.append(_entry(running, "timed out", f"testing `{exercise.answer}` took longer than "
                                                     f"{seconds:g} s: does it loop forever?", weight))
    except export.Unavailable as unavailable:
        done.append(_entry("export", "error", str(unavailable)))
    return {"total": sum(weight for _, _, weight in checks), "tests": done}


def _asserts_fail(test: Callable[[Any], None]) -> Callable[[Any], None]:
    """A plain `assert` in a test (natural in an instructor's file) means failed, not error."""
    def check(answer: Any) -> None:
        try:
            test(answer)
        except AssertionError as error:  # Incorrect included: its message is kept
            raise Incorrect(str(error) or f"{test.__name__} failed.") from error
    return check


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)
