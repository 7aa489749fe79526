"""Decide the verdicts, in a process that never runs, imports or unpickles anything of the learner's.

The learner's kernel ran the checks and tests of each exercise and recorded what the answer
returned (``collect``: tapes of JSON and npz). Here the same checks and tests
(``scoring.exercise_checks``) run again with ``observe`` replaying those tapes: the course's code
alone turns the answer's results into verdicts, so nothing a notebook does can rewrite a check.
A tape that does not match the checks (edited, or cut short) is an error, never a pass.

An exercise's record is ``{"total": the tests' summed weight, "tests": [{"name", "status", "message",
"weight"}]}``, listing the tests that ran, in order (a test weighs 1 unless marked ``hidden.teaches``).
Messages are cut to ``report.MESSAGE_LIMIT`` characters.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from ..exercises import Exercise, evaluate, exercise_set, set_devices
from ..exercises.observe import Absent, OutOfTime, Tape, judging, read_tapes
from ..exercises.outcome import STATUSES
from . import collect, processes, report
from .scoring import collect_tests, exercise_checks

# Time a judge may take beyond its exercises' limits (importing jax, mostly) before it is killed.
SPARE_SECONDS = 60
REQUESTS_PER_JUDGE = 50  # notebooks a judge serves before a fresh one takes over (what it holds grows)
# Bigger than this, an exercise's record was not written by the collecting code alone: it is not read.
TAPE_SIZE_LIMIT = 64 * 2**20
RESULT_SIZE_LIMIT = 10 * 2**20


class Judges:
    """Judge processes kept warm between notebooks, as many as notebooks are graded at once, per
    setting of simulated devices (which JAX fixes when it starts). A judge runs only the course's
    code and the instructor's tests, so it can serve many notebooks: each is spared a process start
    and JAX's import, and the references' programs compile once per judge. A judge that dies or
    hangs is replaced; each is replaced anyway after ``REQUESTS_PER_JUDGE`` notebooks."""

    def __init__(self, root: Path, *, memory_limit: int | None = None, env: dict[str, str] | None = None):
        self._root, self._memory_limit, self._env = root, memory_limit, env or {}
        self._idle: dict[tuple[tuple[str, str], ...], list[processes.Server]] = {}
        self._started = 0
        self._lock = threading.Lock()

    def run(self, job_path: Path, set_name: str, *, timeout: float, heartbeat: Path) -> tuple[int | None, Path]:
        """Judge the job at ``job_path``: the exit code (0 once done, None past ``timeout``) and
        where the judge's errors went."""
        env = {**self._env, **device_environment(set_name)}
        key = tuple(sorted(env.items()))
        with self._lock:
            judge = self._idle.get(key, []).pop() if self._idle.get(key) else None
            self._started += judge is None
            name = f"judge-{self._started}.stderr"
        if judge is None:
            judge = processes.Server(__name__, cwd=self._root, stderr_path=self._root / name, env=env,
                                     memory_limit=self._memory_limit)
        code = judge.request(str(job_path), timeout=timeout, heartbeat=heartbeat)
        if code == 0 and judge.requests < REQUESTS_PER_JUDGE:
            with self._lock:
                self._idle.setdefault(key, []).append(judge)
        elif code == 0:
            judge.close()
        return code, judge.stderr_path

    def close(self) -> None:
        with self._lock:
            idle = [judge for judges in self._idle.values() for judge in judges]
            self._idle.clear()
        for judge in idle:
            judge.close()

    def __enter__(self) -> "Judges":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_judge(set_name: str, exercise_ids: list[str], run_dir: Path, *, judges: Judges, private_tests: Path | None,
              time_limit: float, missing: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Records of ``exercise_ids``, from their tapes in ``run_dir/answers``. ``missing[id]`` is the
    (status, why) of a test of that exercise the notebook's run stopped before recording."""
    records: dict[str, dict[str, Any]] = {}
    remaining = list(exercise_ids)
    while remaining:
        attempt = run_dir / f"judge-{len(records)}"
        job = {"set": set_name, "exercises": remaining, "answers_dir": str(run_dir / "answers"),
               "private_tests": str(private_tests) if private_tests else None, "time_limit": time_limit,
               "missing": missing, "result": str(attempt.with_suffix(".result.json")),
               "heartbeat": str(attempt.with_suffix(".beat"))}
        attempt.with_suffix(".job.json").write_text(json.dumps(job))
        code, stderr = judges.run(attempt.with_suffix(".job.json"), set_name, timeout=SPARE_SECONDS + time_limit,
                                  heartbeat=attempt.with_suffix(".beat"))
        records.update(_read_records(attempt.with_suffix(".result.json"), remaining))
        remaining = [exercise_id for exercise_id in remaining if exercise_id not in records]
        if remaining:  # the judge hung or died on this exercise (its record was too much for it?)
            why = ("timed out", "judging the record of this answer did not finish") if code is None else \
                  ("error", f"the judge died ({processes.describe_exit(code)}): {processes.last_line(stderr)}")
            records[remaining.pop(0)] = {"total": 1, "tests": [_entry("tests", *why)]}
    return records


def _read_records(path: Path, expected: list[str]) -> dict[str, dict[str, Any]]:
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
    """XLA's flag for the simulated devices an exercise set needs (its registry entry), which must
    be in the environment before a process starts JAX."""
    devices = set_devices(set_name)
    if devices is None:
        return {}
    flag = f"--xla_force_host_platform_device_count={devices}"
    others = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                      if not f.startswith("--xla_force_host_platform_device_count"))
    return {"XLA_FLAGS": f"{others} {flag}".strip()}


def _entry(name: str, status: str, message: str, weight: int = 1) -> dict[str, Any]:
    return {"name": name[:200], "status": status, "message": report.cap(message), "weight": weight}


def _out_of_time(signum, frame):
    raise OutOfTime


def serve() -> None:
    processes.serve(main)


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    records: dict[str, dict[str, Any]] = {}
    try:
        exercises = {exercise.id: exercise for exercise in exercise_set(job["set"])}
        tests = collect_tests(job["set"], job["private_tests"], exercises)
    except Exception as error:  # a broken test file: every exercise says so
        failure = _entry("tests", "error", f"the tests could not be loaded: {type(error).__name__}: {error}")
        records = {exercise_id: {"total": 1, "tests": [failure]} for exercise_id in job["exercises"]}
        _write_json(Path(job["result"]), records)
        return
    signal.signal(signal.SIGALRM, _out_of_time)
    for exercise_id in job["exercises"]:
        Path(job["heartbeat"]).touch()
        exercise = exercises[exercise_id]
        records[exercise_id] = judge_exercise(exercise, exercise_checks(exercise, tests[exercise_id]),
                                              Path(job["answers_dir"]) / f"{exercise_id}.json",
                                              job["time_limit"], tuple(job["missing"][exercise_id]))
        _write_json(Path(job["result"]), records)  # after each exercise, in case the next one kills us


def judge_exercise(exercise: Exercise, checks: list[tuple[str, Any, int]], tape_path: Path,
                   seconds: float, missing: tuple[str, str]) -> dict[str, Any]:
    """The record of one exercise, from the tapes at ``tape_path`` (written by ``collect``)."""
    total = sum(weight for _, _, weight in checks)
    try:
        tapes, written = read_tapes(tape_path, TAPE_SIZE_LIMIT)
        namespace = _namespace(exercise.answer, written.get("answer"))
    except (OSError, ValueError) as unreadable:
        status, why = missing
        return {"total": total, "tests": [_entry("tests", status, f"`{exercise.answer}` was not tested: {why}"
                                                 if isinstance(unreadable, FileNotFoundError)
                                                 else f"the record of `{exercise.answer}` is unreadable: {unreadable}")]}
    done: list[dict[str, Any]] = []
    for name, check, weight in checks:
        tape = tapes.get(name)
        if tape is None:
            status, why = missing if not written.get("complete") else ("error", "it has no record")
            done.append(_entry(name, status, f"this test of `{exercise.answer}` did not finish: {why}", weight))
            break
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
            try:
                with judging(tape):
                    outcome = evaluate(exercise.answer, check, namespace)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except OutOfTime:
            done.append(_entry(name, "timed out", f"testing `{exercise.answer}` took longer than {seconds:g} s: "
                                                  "does it loop forever?", weight))
            break
        if outcome.status == "passed" and tape.read != len(tape.entries):  # a pass must use the whole record
            outcome = outcome.__class__("error", f"the record of `{exercise.answer}` does not match the checks "
                                                 f"({len(tape.entries) - tape.read} observations left over)")
        done.append(_entry(name, outcome.status, outcome.message, weight))
        if name == "check" and outcome.status == "not attempted":
            break
    return {"total": total, "tests": done}


def _namespace(answer: str, state: Any) -> dict[str, Any]:
    if state == collect.MISSING:
        return {}
    if state == collect.ELLIPSIS:
        return {answer: Ellipsis}
    if state == collect.PRESENT:
        return {answer: Absent(answer)}
    raise ValueError(f"the record says the answer was {state!r}")


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)
