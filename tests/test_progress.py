"""`progress(set)` in an exercise notebook: every exercise with its status in this kernel (the last
check's outcome and message, not attempted, or not checked yet) and the hints and solutions used."""

import pytest

from test_exercises import power_sum

from hutchinson_course.exercises import exercise

Q1_SOLVED = "power_sum_jit = jax.jit(power_sum, static_argnames='n')"  # power_sum: the notebook's


@pytest.fixture
def notebook(monkeypatch):
    """A fresh kernel's namespace, as an exercise notebook has it after its import cell."""
    for name, empty in (("_hints_shown", {}), ("_last_checks", {}), ("_solutions_shown", set())):
        monkeypatch.setattr(exercise, name, empty)
    namespace = {"power_sum": power_sum}
    exec("import jax\nfrom hutchinson_course.exercises import exercise_set, progress\n"
         "q1, q2, q3, q4 = exercise_set('jit')", namespace)

    def run(source):
        exec(source, namespace)
    return namespace, run


def test_progress_shows_each_exercise_as_the_learner_left_it(notebook, capsys):
    namespace, run = notebook
    run(Q1_SOLVED)
    run("q1.check()")
    run("clip_by_norm = lambda x, max_norm: x")  # wrong: never clips
    run("q2.check()")
    failed = capsys.readouterr().out.splitlines()[-1]
    run("q2.hint()\nq2.hint()\nq4.solution()")
    run("time_jax_call = lambda fn, *args: 0.0")  # defined, never checked
    capsys.readouterr()

    run("progress('jit')")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "jit exercises: 1 of 5 points, 1 of 4 right at their last check"
    q1, q2, q3, q4 = lines[1:]
    assert q1.startswith("✅ Exercise q1") and "passed" in q1 and "[hints 0 of 3]" in q1
    assert q2.startswith("❌ Exercise q2") and failed.split(": failed. ")[1] in q2 and "[hints 2 of 3]" in q2
    assert q3.startswith("❔ Exercise q3") and "not checked yet. Run q3.check()." in q3
    assert q4.startswith("⏳ Exercise q4") and "`hutchinson_with_error` is not defined" in q4
    assert q4.endswith("solution shown]")


def test_a_later_check_replaces_the_earlier_outcome(notebook, capsys):
    namespace, run = notebook
    run("power_sum_jit = 3")
    run("q1.check()")
    run("progress('jit')")
    assert capsys.readouterr().out.splitlines()[-4][0] in "❌💥"
    run(Q1_SOLVED)
    run("q1.check()")
    capsys.readouterr()
    run("progress('jit')")
    assert capsys.readouterr().out.splitlines()[1].startswith("✅ Exercise q1")


def test_an_unknown_set_is_named_with_the_sets_there_are(notebook):
    _, run = notebook
    with pytest.raises(ValueError, match="unknown exercise set 'jitt'; the course has"):
        run("progress('jitt')")
