"""Score one answer in this process as the grader scores it: the checks of
``hidden_tests.exercise_checks`` by their weights, through ``hutchinson_course.grading.notebook.score``."""

from hutchinson_course.exercises import evaluate, exercise_set
from hutchinson_course.grading import hidden_tests, notebook


def points(set_name: str, exercise_id: str, answer) -> tuple[float, int, dict]:
    """(points, max_points, scored) for ``answer`` to exercise ``exercise_id`` of ``set_name``."""
    exercises = {e.id: e for e in exercise_set(set_name)}
    exercise = exercises[exercise_id]
    checks = hidden_tests.exercise_checks(exercise, hidden_tests.collect_tests(set_name, None, exercises)[exercise_id])
    namespace = {exercise.answer: answer}
    tests = [hidden_tests._entry(name, outcome.status, outcome.message, weight)
             for name, check, weight in checks
             for outcome in [evaluate(exercise.answer, check, namespace)]]
    scored = notebook.score(exercise, {"total": sum(w for _, _, w in checks), "tests": tests})
    return scored["points"], scored["max_points"], scored
