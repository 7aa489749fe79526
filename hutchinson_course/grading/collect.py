"""Runs in the learner's kernel, in cells the grader appends to the notebook: one per exercise.

Each runs the exercise's checks and tests (``scoring.exercise_checks``) on the learner's answer
with ``observe`` collecting: what the answer returned for each input the tests gave it is written
to ``<exercise id>.json`` and ``.npz`` (``observe.write_tapes``: data only, no pickles). The
verdicts computed here are not used: the judge, which never runs learner code, decides by
replaying the tapes. One exercise's tests have ``time_limit`` seconds in all; the file is
rewritten after each test, so a kernel that dies mid-exercise still leaves the tests before.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Mapping

from ..exercises import evaluate, exercise_set
from ..exercises.observe import OutOfTime, Tape, collecting, write_tapes
from .scoring import collect_tests, exercise_checks

CELL = """\
# Added by the grader: run the tests on {answer}, recording what it returns (the verdict is decided elsewhere).
import hutchinson_course.grading.collect as _hutchinson_grader_collect
_hutchinson_grader_collect.collect(globals(), {set_name!r}, {exercise_id!r}, {directory!r}, {private_tests!r}, {time_limit!r})
"""

# How the answer stood in the namespace: the judge replays the checks against the same.
MISSING, ELLIPSIS, PRESENT = "missing", "ellipsis", "present"


def collect(namespace: Mapping[str, Any], set_name: str, exercise_id: str, directory: str,
            private_tests: str | None, time_limit: float) -> None:
    exercises = {exercise.id: exercise for exercise in exercise_set(set_name)}
    exercise = exercises[exercise_id]
    checks = exercise_checks(exercise, collect_tests(set_name, private_tests, exercises)[exercise_id])
    value = namespace.get(exercise.answer, _MISSING)
    state = MISSING if value is _MISSING else ELLIPSIS if value is Ellipsis else PRESENT
    path = Path(directory) / f"{exercise_id}.json"
    tapes: dict[str, Tape] = {}
    seen: dict[str, list[str]] = {}  # the verdicts here, for the record only

    def save(complete: bool) -> None:
        write_tapes(path, tapes, {"answer": state, "complete": complete, "seen_here": seen})

    save(False)
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    try:
        # Fires again every half second, in case the learner's code catches the first one.
        signal.setitimer(signal.ITIMER_REAL, time_limit, 0.5)
        for name, check, _ in checks:
            tapes[name] = tape = Tape()
            try:
                with collecting(tape):
                    outcome = evaluate(exercise.answer, check, dict(namespace))
            except OutOfTime:
                tape.ended, seen[name] = "timed out", ["timed out", ""]
                break
            seen[name] = [outcome.status, outcome.message[:500]]
            save(False)
            if name == "check" and outcome.status == "not attempted":
                break
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    save(True)


_MISSING = object()


def _out_of_time(signum, frame):
    raise OutOfTime
