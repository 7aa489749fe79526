"""Check and score answers in this process the way the grader does: the tests run on the answer
with ``observe`` collecting (as in the learner's kernel), their tapes go through the files the
grader reads, and the judge replays them (``grading.judge``). Every helper also asserts that the
judge reached the verdict the learner saw in the notebook, so each test of a check is also a test
that the check works through the split."""

import tempfile
from pathlib import Path

from hutchinson_course.exercises import evaluate, exercise_set
from hutchinson_course.exercises.observe import Tape, collecting, judging, read_tapes, write_tapes
from hutchinson_course.grading import collect, judge, notebook, scoring

TIME_LIMIT = 600


def outcome(exercise, answer, check=None):
    """The outcome of ``check`` (the exercise's own by default) on ``answer``, as the notebook shows
    it, after asserting that the judge, replaying its tape from disk, decides the same."""
    check = check or exercise.check_answer
    namespace = {exercise.answer: answer}
    tape = Tape()
    with collecting(tape):
        seen = evaluate(exercise.answer, check, namespace)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tape.json"
        write_tapes(path, {"test": tape})
        replayed = read_tapes(path, judge.TAPE_SIZE_LIMIT)[0]["test"]
    state = collect.ELLIPSIS if answer is Ellipsis else collect.PRESENT
    with judging(replayed):
        judged = evaluate(exercise.answer, check, judge._namespace(exercise.answer, state))
    assert (judged.status, judged.message) == (seen.status, seen.message), "the judge disagrees with the notebook"
    assert replayed.read == len(replayed.entries), "the judge left observations unused"
    return seen


def tests_of(set_name: str, exercise_id: str):
    """(name, check, weight) of everything exercise ``exercise_id`` is scored on, in order."""
    exercises = {e.id: e for e in exercise_set(set_name)}
    return scoring.exercise_checks(exercises[exercise_id], scoring.collect_tests(set_name, None, exercises)[exercise_id])


def record(set_name: str, exercise_id: str, answer) -> dict:
    """The judge's record of ``answer``: collected as in the kernel, judged from the files."""
    exercise = next(e for e in exercise_set(set_name) if e.id == exercise_id)
    with tempfile.TemporaryDirectory() as directory:
        collect.collect({exercise.answer: answer}, set_name, exercise_id, directory, None, TIME_LIMIT)
        judged = judge.judge_exercise(exercise, tests_of(set_name, exercise_id), Path(directory) / f"{exercise_id}.json",
                                      TIME_LIMIT, ("error", "the test stopped"))
        seen = read_tapes(Path(directory) / f"{exercise_id}.json", judge.TAPE_SIZE_LIMIT)[1]["seen_here"]
    for test in judged["tests"]:
        assert [test["status"], test["message"][:500]] == seen[test["name"]], f"the judge disagrees on {test['name']}"
    return judged


def points(set_name: str, exercise_id: str, answer) -> tuple[float, int, dict]:
    """(points, max_points, scored) for ``answer`` to exercise ``exercise_id`` of ``set_name``."""
    exercise = next(e for e in exercise_set(set_name) if e.id == exercise_id)
    scored = notebook.score(exercise, record(set_name, exercise_id, answer))
    return scored["points"], scored["max_points"], scored
