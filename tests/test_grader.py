"""The grader (hutchinson-grade): every submission gets a fair row, whatever it does.

Submissions are made at test time from solutions/jit.ipynb and exercises/jit.ipynb. Most are
graded together, as a class's folder would be, in one call with two jobs (the ``graded``
fixture), so that the slow ones (time limits) overlap with the rest.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

import grader_notebooks as nbs
from hutchinson_course.exercises import exercise_set, load_solutions
from hutchinson_course.exercises.observe import read_tapes, write_tapes
from hutchinson_course.grading import collect, grade, grader, judge, processes, report, scoring, submissions
from hutchinson_course.grading import notebook as grading_notebook
from hutchinson_course.grading.cli import main
from hutchinson_course.grading.submissions import UnknownSet, exercise_set_name

pytestmark = pytest.mark.timeout(900)

EXERCISES = exercise_set("jit")
IDS = [exercise.id for exercise in EXERCISES]
MAX = sum(exercise.points for exercise in EXERCISES)
COMMAND = Path(sys.executable).parent / "hutchinson-grade"
LOOP_FOREVER = "while True:\n    pass\n"
# Sleeps in C without releasing the GIL, so ipykernel's own watch for a dead parent cannot run:
# the kernel stops only if the grader kills it.
HOLD_THE_GIL = "import ctypes\nctypes.PyDLL(None).sleep(1000)\n"
HUGE_MESSAGE = "def hutchinson_with_error(*args, **kwargs):\n    raise ValueError('x' * 10_000_000)\n"
WRONG_Q1 = 'power_sum_jit = jax.jit(lambda x, n: x * n, static_argnames="n")'
# Everything a notebook might try so that a wrong answer looks right.
CHEAT = """\
import numpy as np
import jax.numpy as jnp
from hutchinson_course.exercises import expect, jit as jit_exercises
np.allclose = jnp.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.abs = jnp.abs = lambda x: 0 * x
expect.expect_close = jit_exercises.expect_close = lambda *args, **kwargs: None
jit_exercises.check_power_sum_jit = lambda answer: None
object.__setattr__(q1, "check_answer", lambda answer: None)
object.__setattr__(q1, "check", lambda: print("✅ passed"))
q1.check()
"""
# A wrong answer that, each time the tests call it, rewrites every check and test it can reach.
PATCHES_FROM_INSIDE = """\
def _rewrites_the_tests(x, n):
    import sys
    for module in list(sys.modules.values()):
        for name in list(vars(module)) if getattr(module, "__name__", "").startswith("hutchinson_course") else ():
            if name.startswith(("check_", "test_", "expect_")) and callable(getattr(module, name)):
                setattr(module, name, lambda *args, **kwargs: None)
    return x * n

power_sum_jit = jax.jit(_rewrites_the_tests, static_argnames="n")
"""


def _submissions() -> dict[str, nbformat.NotebookNode]:
    return {
        "solved": nbs.solutions(),
        "unsolved": nbs.exercises(),
        # A wrong answer, and everything the notebook might patch so that it looks right.
        "wrong": nbs.redefine(nbs.solutions(), "power_sum_jit", WRONG_Q1),
        "cheats": nbs.insert_after(nbs.redefine(nbs.solutions(), "power_sum_jit", WRONG_Q1), "power_sum_jit", CHEAT),
        "patches_inside": nbs.redefine(nbs.solutions(), "power_sum_jit", PATCHES_FROM_INSIDE),
        "raises": nbs.redefine(nbs.redefine(nbs.solutions(), "time_jax_call",
                                            "def time_jax_call(fn, *args, repeats=5):\n    return 1 / 0\n"),
                               "hutchinson_with_error", HUGE_MESSAGE),
        # Two hangs in one notebook: a compiled loop that never ends in q2's check cell (the
        # interrupt cannot stop it), and q3's answer looping forever (without its check cell, which
        # would otherwise wait for the cell time limit as well).
        "loops": nbs.replace_check(nbs.without_checks(nbs.redefine(
            nbs.solutions(), "time_jax_call",
            "def time_jax_call(fn, *args, repeats=5):\n" + textwrap.indent(LOOP_FOREVER, "    ")), only="q3"),
            "q2", nbs.COMPILED_LOOP),
        "hog": nbs.insert_after_setup(nbs.exercises(), nbs.ALLOCATES_20_GB),
        # A loop at the top level, in a notebook whose check cells were deleted: still graded.
        "top_loop": nbs.insert_after_setup(nbs.without_checks(nbs.solutions()), LOOP_FOREVER),
        "exits": nbs.insert_after(nbs.solutions(), "power_sum_jit", "import os; os._exit(1)"),
        "kills_itself": nbs.insert_after(nbs.solutions(), "power_sum_jit",
                                         "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
    }


def _logging_its_run(notebook, name: str, log: Path):
    """First and last cells that record when the notebook ran, where, and on which Python."""
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import time as _t\n_test_started = _t.time()"))
    return nbs.append(notebook, textwrap.dedent(f"""\
        import json as _json, os as _os, sys as _sys
        with open({str(log)!r}, "a") as _log:
            _log.write(_json.dumps({{"name": {name!r}, "start": _test_started, "end": _t.time(),
                                     "executable": _sys.executable, "cwd": _os.getcwd()}}) + "\\n")
        """))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    folder = root / "submissions"
    folder.mkdir()
    originals = {}
    for name, notebook in _submissions().items():
        path = nbs.write(_logging_its_run(notebook, name, root / "runs.log"), folder / f"{name}.ipynb")
        originals[name] = path.read_bytes()
    (folder / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / "not_a_notebook.ipynb").write_text('{"hello": "world"}', encoding="utf-8")
    (folder / ".ipynb_checkpoints").mkdir()
    nbs.write(nbs.exercises(), folder / ".ipynb_checkpoints" / "solved-checkpoint.ipynb")
    # As a learning platform exports a class: a folder per learner, and names in any case.
    (folder / "learner_b").mkdir()
    nbs.write(nbs.exercises(), folder / "learner_b" / "UNSOLVED_TOO.IPYNB")
    (folder / "learner_b" / "notes.txt").write_text("not a notebook")
    progress = io.StringIO()
    with contextlib.redirect_stderr(progress):
        # Without the sandbox, so that the notebooks can log their runs where the test reads them
        # (the sandbox is tested by the ``hostile`` fixture).
        results = grade([folder], root / "out", jobs=2, cell_timeout=20, timeout=180, test_timeout=45,
                        set_name="jit", sandbox=False)
    runs = [json.loads(line) for line in (root / "runs.log").read_text().splitlines()]
    return SimpleNamespace(results=results, by_name={Path(r["notebook"]).stem: r for r in results},
                           out=root / "out", folder=folder, originals=originals, progress=progress.getvalue(),
                           runs={run["name"]: run for run in runs})


def _statuses(result):
    return {i: exercise["status"] for i, exercise in result["exercises"].items()}


def _passed_except(result, *ids):
    return all(result["exercises"][i]["status"] == "passed" for i in IDS if i not in ids)


def test_the_solutions_get_full_marks(graded):
    solved = graded.by_name["solved"]
    assert solved["exercise_set"] == "jit" and solved["error"] is None
    assert solved["total"] == solved["max"] == MAX
    for exercise in EXERCISES:
        record = solved["exercises"][exercise.id]
        assert (record["status"], record["points"], record["max_points"]) == ("passed", exercise.points,
                                                                             exercise.points)
        assert len(record["tests"]) > 1, "the hidden tests ran, not only the check"


def test_the_unsolved_notebook_gets_zero_and_not_attempted(graded):
    unsolved = graded.by_name["unsolved"]
    assert (unsolved["total"], unsolved["max"], unsolved["error"]) == (0, MAX, None)
    assert set(_statuses(unsolved).values()) == {"not attempted"}
    assert "still" in unsolved["exercises"]["q2"]["message"]


def test_a_wrong_answer_fails_with_a_useful_message(graded):
    q1 = graded.by_name["wrong"]["exercises"]["q1"]
    assert q1["status"] == "failed"
    assert "power_sum_jit(x, n=3)" in q1["message"] and "expected" in q1["message"]
    passed = sum(test["weight"] for test in q1["tests"] if test["status"] == "passed")
    assert q1["points"] == round(q1["max_points"] * passed / sum(test["weight"] for test in q1["tests"]), 2) < 1
    assert _passed_except(graded.by_name["wrong"], "q1")


def test_an_answer_that_raises_is_an_error_that_shows_the_line(graded):
    q3 = graded.by_name["raises"]["exercises"]["q3"]
    assert (q3["status"], q3["points"]) == ("error", 0)
    assert "ZeroDivisionError" in q3["message"] and "return 1 / 0" in q3["message"]
    assert _passed_except(graded.by_name["raises"], "q3", "q4")


def test_a_huge_exception_message_is_cut_and_says_so(graded):
    q4 = graded.by_name["raises"]["exercises"]["q4"]
    assert q4["status"] == "error" and "ValueError: xxx" in q4["message"]
    assert "cut by the grader" in q4["message"] and len(q4["message"]) < 3000
    assert (graded.out / "raises.json").stat().st_size < 200_000


def test_a_compiled_loop_in_one_check_cell_costs_at_most_that_exercise(graded):
    result = graded.by_name["loops"]
    assert result["error"] is None and result["exercises"]["q2"]["status"] == "passed", result
    assert any("did not stop when interrupted" in note and "q2.check()" in note for note in result["notes"])


def test_a_notebook_past_the_memory_limit_gets_its_row_and_the_rest_runs(graded):
    result = graded.by_name["hog"]
    assert any("ran out of memory" in note and "8 GB" in note for note in result["notes"]), result["notes"]
    assert set(_statuses(result).values()) == {"not attempted"}, "the cells after it ran"


def test_a_top_level_infinite_loop_is_interrupted_and_the_rest_runs(graded):
    result = graded.by_name["top_loop"]
    assert result["error"] is None
    assert result["total"] == MAX
    assert "top_loop" in graded.runs, "the last cell ran"


def test_an_answer_that_loops_forever_times_out_alone(graded):
    result = graded.by_name["loops"]
    q3 = result["exercises"]["q3"]
    assert (q3["status"], q3["points"]) == ("timed out", 0)
    assert "took longer than 45 s" in q3["message"]
    assert _passed_except(result, "q3") and result["error"] is None


@pytest.mark.parametrize("name, cell", [("exits", "os._exit(1)"), ("kills_itself", "os.kill(os.getpid()")])
def test_a_kernel_that_dies_still_gets_a_row(graded, name, cell):
    result = graded.by_name[name]
    assert result["error"].startswith("the kernel died while running code cell") and cell in result["error"]
    assert set(_statuses(result).values()) == {"error"}
    assert all("kernel died" in exercise["message"] for exercise in result["exercises"].values())
    assert result["total"] == 0


@pytest.mark.parametrize("name", ["broken", "not_a_notebook"])
def test_a_malformed_file_still_gets_a_row(graded, name):
    result = graded.by_name[name]
    assert result["error"].startswith("the notebook could not be read: ")
    assert (result["total"], result["max"]) == (0, MAX)
    assert set(_statuses(result).values()) == {"error"}


def test_patching_numpy_jax_or_the_check_cannot_fake_a_pass(graded):
    """What the notebook patched changed only its own kernel's copy of the checks: the judge, running
    the course's own, finds that record short of what they observe, an error, never a pass."""
    result = graded.by_name["cheats"]
    q1 = result["exercises"]["q1"]
    assert q1["status"] == "error" and "does not match the checks" in q1["message"], q1
    assert q1["points"] <= q1["max_points"] / 2
    assert _passed_except(result, "q1"), "the other answers are right, and judged so"


def test_an_answer_that_rewrites_the_tests_when_called_cannot_pass(graded):
    """The kernel's copies of the checks are rewritten, but the verdicts are decided elsewhere."""
    q1 = graded.by_name["patches_inside"]["exercises"]["q1"]
    assert q1["status"] == "failed" and "power_sum_jit(x, n=3)" in q1["message"], q1
    assert q1["points"] <= q1["max_points"] / 2


def test_deleted_check_cells_are_still_graded(graded):
    assert graded.by_name["top_loop"]["total"] == MAX


def test_a_folder_gives_one_json_each_a_csv_row_each_and_progress(graded):
    names = sorted(graded.originals) + ["broken", "not_a_notebook", "UNSOLVED_TOO"]
    assert sorted(graded.by_name) == sorted(names), "the checkpoint copy is not graded"
    assert sorted(path.relative_to(graded.out).as_posix() for path in graded.out.rglob("*.json")) == sorted(
        [f"{n}.json" for n in names if n != "UNSOLVED_TOO"] + ["learner_b/UNSOLVED_TOO.json"])
    assert graded.by_name["UNSOLVED_TOO"]["notebook"] == "learner_b/UNSOLVED_TOO.IPYNB"
    assert json.loads((graded.out / "wrong.json").read_text()) == graded.by_name["wrong"]
    assert "fraction of its tests" in graded.by_name["wrong"]["scoring"]
    with open(graded.out / "grades.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == (["notebook", "total", "max"]
                             + [f"{i}_{field}" for i in IDS for field in ("points", "status")] + ["error"])
    assert sorted(Path(row["notebook"]).stem for row in rows) == sorted(names)
    wrong = next(row for row in rows if Path(row["notebook"]).stem == "wrong")
    assert (wrong["q1_status"], wrong["q2_status"], wrong["error"]) == ("failed", "passed", "")
    lines = [line for line in graded.progress.splitlines() if line.startswith("[")]
    assert len(lines) == len(names)
    for k, line in enumerate(lines, start=1):
        assert re.fullmatch(rf"\[{k}/{len(names)}\] [\w/.]+\.(ipynb|IPYNB): [\d.]+/{MAX}( \(.+\))? \| "
                            rf"\d+m\d\ds elapsed, about \d+m\d\ds left", line), line
    assert f"solved.ipynb: {MAX}/{MAX}" in graded.progress


def test_notebooks_with_the_same_name_get_json_files_of_their_own():
    notebooks = [Path("a/jit.ipynb"), Path("b/jit.ipynb"), Path("b/bob.ipynb")]
    assert report.json_names(path.stem for path in notebooks) == ["jit.json", "jit-2.json", "bob.json"]


def test_two_jobs_run_notebooks_at_the_same_time(graded):
    runs = sorted(graded.runs.values(), key=lambda run: run["start"])
    assert any(later["start"] < earlier["end"] for earlier, later in zip(runs, runs[1:]))


def test_each_notebook_runs_as_a_copy_on_the_graders_python(graded):
    run = graded.runs["solved"]
    assert run["executable"] == sys.executable
    assert not Path(run["cwd"]).resolve().is_relative_to(graded.folder.resolve())
    for name, original in graded.originals.items():
        assert (graded.folder / f"{name}.ipynb").read_bytes() == original


def _writing_pid(path: Path) -> str:
    """Code for a cell that writes the kernel's process id to ``path``."""
    return f"import os, time\nwith open({str(path)!r}, 'w') as f:\n    f.write(str(os.getpid()))\n"


def _dies_soon(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # dead, waiting for its new parent to reap it
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def graded_strictly(tmp_path_factory):
    """The solutions with an instructor's extra failing test, beside a notebook that never ends."""
    root = tmp_path_factory.mktemp("strict")
    private = root / "private_tests.py"
    private.write_text("def test_q1_instructor_extra(power_sum_jit):\n"
                       "    assert False, \"the instructor's extra test fails\"\n")
    solved = nbs.write(nbs.solutions(), root / "solved.ipynb")
    kernel_pid = root / "sleeper.pid"
    sleeper = nbs.write(nbs.insert_after_setup(nbs.solutions(), _writing_pid(kernel_pid) + HOLD_THE_GIL),
                        root / "sleeper.ipynb")
    with contextlib.redirect_stderr(io.StringIO()):
        solved, sleeper = grade([solved, sleeper], root / "out", tests=private, jobs=2, cell_timeout=60,
                                timeout=40, test_timeout=30, sandbox=False)
    return SimpleNamespace(solved=solved, sleeper=sleeper, sleeper_kernel=int(kernel_pid.read_text()))


def test_a_private_test_file_adds_tests(graded_strictly):
    q1 = graded_strictly.solved["exercises"]["q1"]
    assert q1["tests"][-1]["name"] == "test_q1_instructor_extra"
    assert (q1["status"], q1["message"]) == ("failed", "the instructor's extra test fails")
    total = sum(test["weight"] for test in q1["tests"])
    assert q1["points"] == round(q1["max_points"] * (total - 1) / total, 2) < q1["max_points"]
    assert graded_strictly.solved["total"] == MAX - q1["max_points"] + q1["points"]


def test_a_notebook_past_the_whole_run_limit_times_out(graded_strictly):
    sleeper = graded_strictly.sleeper
    assert sleeper["error"] == "the notebook did not finish within the time limit of 40 s"
    assert set(_statuses(sleeper).values()) == {"timed out"}
    assert sleeper["total"] == 0
    assert _dies_soon(graded_strictly.sleeper_kernel), "its kernel was killed too"


def _jit_answers() -> dict:
    """The jit set's reference answers, defined as a notebook defines them."""
    namespace = {}
    exec("import functools, statistics, time\nimport jax\nimport jax.numpy as jnp\n"
         "from hutchinson_course.estimators import sample_probes\n"
         "def power_sum(x, n):\n    return sum(x**k for k in range(1, n + 1))\n"
         + "\n".join(load_solutions("jit").values()), namespace)
    return namespace


def test_the_judge_decides_from_the_record_alone_and_a_bad_record_costs_only_its_exercise(tmp_path):
    """Collected from right answers, then: q1's record untouched; q2's with one value changed and a
    test that kills the judge; q3's cut short; q4's never written. The judge runs in its own process."""
    answers = tmp_path / "answers"
    answers.mkdir()
    namespace = _jit_answers()
    for exercise_id in ("q1", "q2", "q3"):
        collect.collect(namespace, "jit", exercise_id, str(answers), None, 60)
    q2 = json.loads((answers / "q2.json").read_text())
    arrays = dict(np.load(answers / "q2.npz"))
    first_value = next(e["value"]["items"][0] if e["value"].get("$") == "tuple" else e["value"]
                       for e in q2["tapes"]["check"]["entries"] if isinstance(e.get("value"), dict)
                       and e["value"].get("$") in ("jax", "tuple"))
    arrays[first_value["ref"]] = arrays[first_value["ref"]] * 2  # the answer's first result, doubled
    np.savez(answers / "q2.npz", **arrays)
    q2["tapes"]["test_q2_judge_dies"] = {"entries": [], "ended": "done"}
    (answers / "q2.json").write_text(json.dumps(q2))
    (answers / "q3.json").write_text((answers / "q3.json").read_text()[:200])
    private = tmp_path / "private.py"
    private.write_text("import os\n\ndef test_q2_judge_dies(clip_by_norm):\n    os._exit(3)\n")
    missing = {i: ("error", "the kernel died") for i in IDS}
    with judge.Judges(tmp_path) as judges:
        records = judge.run_judge("jit", IDS, tmp_path, judges=judges, private_tests=private, time_limit=30,
                                  missing=missing)
    statuses = {i: [t["status"] for t in records[i]["tests"]] for i in IDS}
    assert set(statuses["q1"]) == {"passed"} and len(statuses["q1"]) > 1
    assert statuses["q2"] == ["error"] and "the judge died (exit code 3)" in records["q2"]["tests"][0]["message"]
    assert "unreadable" in records["q3"]["tests"][0]["message"]
    assert records["q4"]["tests"][0]["message"] == "`hutchinson_with_error` was not tested: the kernel died"


def test_one_judge_serves_notebook_after_notebook_and_ends_with_the_grader(tmp_path):
    """Each notebook's records are judged by the same warm process; a fresh one takes over after
    REQUESTS_PER_JUDGE notebooks, and none outlives ``close``."""
    namespace = _jit_answers()
    runs = [tmp_path / f"run{k}" for k in range(3)]
    for run in runs:
        (run / "answers").mkdir(parents=True)
        collect.collect(namespace, "jit", "q2", str(run / "answers"), None, 60)
    pids = []
    original = processes.Server.request

    def request(server, line, **limits):
        pids.append(server._child.pid)
        return original(server, line, **limits)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processes.Server, "request", request)
        patch.setattr(judge, "REQUESTS_PER_JUDGE", 2)
        with judge.Judges(tmp_path) as judges:
            records = [judge.run_judge("jit", ["q2"], run, judges=judges, private_tests=None, time_limit=30,
                                       missing={"q2": ("error", "-")}) for run in runs]
    assert all({t["status"] for t in r["q2"]["tests"]} == {"passed"} for r in records), records
    assert pids[0] == pids[1] != pids[2]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not processes._running


def test_a_changed_value_fails_and_a_changed_record_is_an_error_never_a_pass(tmp_path):
    namespace = _jit_answers()
    collect.collect(namespace, "jit", "q2", str(tmp_path), None, 60)
    tapes, _ = read_tapes(tmp_path / "q2.json", judge.TAPE_SIZE_LIMIT)
    checks = scoring.exercise_checks(EXERCISES[1], [])

    def judged(tape):
        write_tapes(tmp_path / "edited.json", {"check": tape}, {"answer": "present", "complete": True})
        return judge.judge_exercise(EXERCISES[1], checks, tmp_path / "edited.json", 30, ("error", "-"))["tests"][0]

    assert judged(tapes["check"])["status"] == "passed"
    tape = tapes["check"]
    value = next(e for e in tape.entries if isinstance(e.get("value"), dict) and e["value"].get("$") == "jax")
    original = tape.arrays[value["value"]["ref"]]
    tape.arrays[value["value"]["ref"]] = original + 1
    assert judged(tape)["status"] == "failed"
    tape.arrays[value["value"]["ref"]] = original
    tape.entries[-1]["at"] = "somewhere_else.py:1"
    assert judged(tape)["status"] == "error" and "does not match" in judged(tape)["message"]
    tape.entries.pop()
    assert judged(tape)["status"] == "error"


def test_a_crash_in_the_grader_itself_still_gives_a_row(tmp_path, monkeypatch):
    def broken_runner(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(grading_notebook.execute, "run_notebook", broken_runner)
    path = nbs.write(nbs.solutions(), tmp_path / "alice.ipynb")
    with contextlib.redirect_stderr(io.StringIO()):
        [result] = grade([path], tmp_path / "out")
    assert result["error"] == "the grader failed on this notebook: RuntimeError: disk on fire"
    assert set(_statuses(result).values()) == {"error"}
    assert (tmp_path / "out" / "alice.json").exists() and (tmp_path / "out" / "grades.csv").exists()


def test_which_exercise_set_a_notebook_is(tmp_path):
    notebook = nbs.exercises()
    assert exercise_set_name(notebook, Path("alice.ipynb"), None) == "jit"
    del notebook.metadata["hutchinson_course"]
    assert exercise_set_name(notebook, Path("alice.ipynb"), "jit") == "jit"
    assert exercise_set_name(notebook, Path("jit.ipynb"), None) == "jit"
    with pytest.raises(UnknownSet, match="no --set was given"):
        exercise_set_name(notebook, Path("alice.ipynb"), None)
    # a notebook whose set cannot be told gets a row saying so, and is not run
    with contextlib.redirect_stderr(io.StringIO()):
        [result] = grade([nbs.write(notebook, tmp_path / "alice.ipynb")], tmp_path / "out")
    assert "cannot tell which exercise set" in result["error"] and result["exercises"] == {}
    notebook.metadata["hutchinson_course"] = {"exercise_set": "jitt"}
    with pytest.raises(UnknownSet, match="'jitt'"):
        exercise_set_name(notebook, Path("jit.ipynb"), "jit")


@pytest.mark.parametrize("case", ["missing path", "empty folder", "missing tests", "broken tests", "unknown set"])
def test_bad_invocations_are_usage_errors(case, tmp_path, capsys):
    notebook = str(nbs.write(nbs.exercises(), tmp_path / "jit.ipynb"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken_tests.py").write_text("def test_q1_x(answer:\n    pass\n")
    argv, expected = {
        "missing path": ([str(tmp_path / "nope.ipynb")], "nope.ipynb does not exist"),
        "empty folder": ([str(tmp_path / "empty")], "has no .ipynb files"),
        "missing tests": ([notebook, "--tests", str(tmp_path / "nope.py")], "nope.py does not exist"),
        "broken tests": ([notebook, "--tests", str(tmp_path / "broken_tests.py")], "has a syntax error (line 1)"),
        "unknown set": ([notebook, "--set", "jitt"], "'jitt' is not an exercise set"),
    }[case]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_command_exits_0_even_when_submissions_fail(tmp_path):
    (tmp_path / "broken.ipynb").write_text("not json at all")
    done = subprocess.run([COMMAND, tmp_path / "broken.ipynb", "--out", tmp_path / "out", "--set", "jit"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"broken.ipynb: 0/{MAX} (the notebook could not be read" in done.stderr
    with open(tmp_path / "out" / "grades.csv", newline="") as file:
        [row] = csv.DictReader(file)
    assert row["error"].startswith("the notebook could not be read") and row["q1_status"] == "error"


def test_ctrl_c_stops_the_notebook_and_its_kernel(tmp_path):
    pid_file = tmp_path / "kernel.pid"
    notebook = nbformat.v4.new_notebook(metadata={"hutchinson_course": {"exercise_set": "jit"}})
    notebook.cells = [nbformat.v4.new_code_cell(_writing_pid(pid_file) + HOLD_THE_GIL)]
    path = nbs.write(notebook, tmp_path / "forever.ipynb")
    grader = subprocess.Popen([COMMAND, path, "--out", tmp_path / "out", "--cell-timeout", "600", "--no-sandbox"],
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    kernel = int(pid_file.read_text())
    grader.send_signal(signal.SIGINT)
    _, stderr = grader.communicate(timeout=30)
    assert grader.returncode == 130 and "Interrupted" in stderr
    assert _dies_soon(kernel)


def test_other_files_are_skipped_and_said_so(graded):
    assert "skipped learner_b/notes.txt: not a notebook" in graded.progress
    assert "skipped .ipynb_checkpoints: Jupyter's autosaved copies" in graded.progress
    class_report = (graded.out / report.REPORT_NAME).read_text()
    assert "| learner_b/notes.txt | not a notebook" in class_report


def test_the_class_report_has_a_table_a_plot_and_the_commonest_failures(graded):
    class_report = (graded.out / report.REPORT_NAME).read_text()
    for exercise_id in IDS:
        assert f"| jit.{exercise_id} | " in class_report
    failures = class_report.split("## The commonest failure messages")[1]
    assert "| jit.q1 | " in failures.split("##")[0]
    assert (graded.out / report.PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_learner_gets_feedback_without_the_test_source(graded):
    feedback = (graded.out / report.FEEDBACK_DIR / "wrong.md").read_text()
    assert "## q1: failed" in feedback and "power_sum_jit(x, n=3)" in feedback
    assert "def test_" not in feedback and "import " not in feedback
    assert (graded.out / report.FEEDBACK_DIR / "learner_b" / "UNSOLVED_TOO.md").exists()


def test_no_answers_are_left_in_temporary_folders(graded):
    assert not [root for root in Path(tempfile.gettempdir()).glob(f"{grader.RUN_ROOT_PREFIX}*")
                if (root / "grader.pid").exists() and (root / "grader.pid").read_text() == str(os.getpid())]


def test_collecting_a_class_folder(tmp_path):
    for name in ("a/jit.IPYNB", "a/deeper/vmap.ipynb", "b/jit.ipynb", "b/.ipynb_checkpoints/jit-checkpoint.ipynb",
                 "b/answers.py", ".hidden.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    collected = submissions.collect([tmp_path])
    assert [s.name for s in collected.submissions] == ["a/jit.IPYNB", "a/deeper/vmap.ipynb", "b/jit.ipynb"]
    assert [s.report_stem for s in collected.submissions] == ["a/jit", "a/deeper/vmap", "b/jit"]
    assert dict(collected.skipped) == {
        ".hidden.ipynb": "a hidden file", "b/.ipynb_checkpoints": "Jupyter's autosaved copies, not submissions",
        "b/answers.py": "not a notebook (its name does not end in .ipynb)"}


@pytest.mark.parametrize("name, expected", [("jit.ipynb", "jit"), ("alice_jit.IPYNB", "jit"),
                                            ("bob-stateful_vmap (2).ipynb", "stateful_vmap"),
                                            ("vmap_final.ipynb", "vmap"), ("jit_and_vmap.ipynb", None),
                                            ("alice.ipynb", None), ("jitter.ipynb", None)])
def test_the_set_from_a_file_name(name, expected):
    assert submissions.set_in_file_name(Path(name)) == expected


def test_a_malformed_notebook_gets_its_sets_columns_from_its_file_name(tmp_path):
    (tmp_path / "alice_jit.ipynb").write_text('{"cells": [')
    with contextlib.redirect_stderr(io.StringIO()):
        [result] = grade([tmp_path / "alice_jit.ipynb"], tmp_path / "out")
    assert (result["exercise_set"], result["total"], result["max"]) == ("jit", 0, MAX)
    assert list(result["exercises"]) == IDS
    with open(tmp_path / "out" / "grades.csv", newline="") as file:
        [row] = csv.DictReader(file)
    assert row["q4_status"] == "error" and row["max"] == str(MAX)


def test_resume_keeps_finished_rows_and_grades_the_rest(tmp_path, monkeypatch):
    for name in ("a_jit", "b_jit", "c_jit"):
        (tmp_path / "class" / f"{name}.ipynb").parent.mkdir(exist_ok=True)
        (tmp_path / "class" / f"{name}.ipynb").write_text(f'{{"{name}": [')
    with contextlib.redirect_stderr(io.StringIO()):
        grade([tmp_path / "class"], tmp_path / "out")
    (tmp_path / "out" / "b_jit.json").unlink()  # as if the grader had been killed before b
    (tmp_path / "class" / "c_jit.ipynb").write_text('{"changed": [')  # resubmitted since
    graded = []
    real = grader.grade_notebook
    monkeypatch.setattr(grader, "grade_notebook", lambda s, settings: graded.append(s.name) or real(s, settings))
    with contextlib.redirect_stderr(io.StringIO()) as progress:
        results = grade([tmp_path / "class"], tmp_path / "out", resume=True)
    assert graded == ["b_jit.ipynb", "c_jit.ipynb"]
    assert "--resume: 1 of 3 notebooks were graded already" in progress.getvalue()
    assert [r["notebook"] for r in results] == ["a_jit.ipynb", "b_jit.ipynb", "c_jit.ipynb"]
    with open(tmp_path / "out" / "grades.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 3


def test_run_folders_of_a_killed_grader_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned = Path(tempfile.mkdtemp(prefix=grader.RUN_ROOT_PREFIX))
    (abandoned / "grader.pid").write_text(str(dead.pid))
    (abandoned / "run-x").mkdir()
    (tmp_path / "jit.ipynb").write_text("not json")
    with contextlib.redirect_stderr(io.StringIO()):
        grade([tmp_path / "jit.ipynb"], tmp_path / "out")
    assert not abandoned.exists()


def test_sigterm_stops_the_grader_and_removes_its_run_folders(tmp_path):
    pid_file = tmp_path / "kernel.pid"
    notebook = nbformat.v4.new_notebook(metadata={"hutchinson_course": {"exercise_set": "jit"}})
    notebook.cells = [nbformat.v4.new_code_cell(_writing_pid(pid_file) + "time.sleep(1000)\n")]
    path = nbs.write(notebook, tmp_path / "forever.ipynb")
    grader_process = subprocess.Popen([COMMAND, path, "--out", tmp_path / "out", "--cell-timeout", "600",
                                       "--no-sandbox"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    roots = [root for root in Path(tempfile.gettempdir()).glob(f"{grader.RUN_ROOT_PREFIX}*")
             if (root / "grader.pid").exists() and (root / "grader.pid").read_text() == str(grader_process.pid)]
    assert len(roots) == 1 and list(roots[0].glob("run-*"))
    grader_process.send_signal(signal.SIGTERM)
    _, stderr = grader_process.communicate(timeout=30)
    assert grader_process.returncode == 130 and "Interrupted" in stderr
    assert _dies_soon(int(pid_file.read_text()))
    assert not roots[0].exists()
    assert (tmp_path / "out" / "grades.csv").exists()


def _sandbox_works() -> bool:
    try:
        processes.check_sandbox()
    except processes.SandboxUnavailable:
        return False
    return True


def _survivors() -> list[int]:
    """Processes of hostile submissions still running (they carry nbs.MARKER)."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if nbs.MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes() and not _dies_soon(int(pid)):
                alive.append(int(pid))
        except OSError:
            continue
    return alive


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if not _sandbox_works():
        pytest.skip("bubblewrap is not installed or cannot create namespaces here")
    root = tmp_path_factory.mktemp("hostile")
    folder, out, other = root / "class", root / "out", root / "class" / "z_other_learner"
    other.mkdir(parents=True)
    nbs.write(nbs.solutions(), other / "jit.ipynb")
    escapes = [root / "escaped.txt", other / "escaped.txt", Path.home() / f"{nbs.MARKER}.txt"]
    cases = {
        "kills_the_grader": nbs.kills_the_grader(),
        "daemon": nbs.leaves_a_daemon_rewriting(out),
        "background": nbs.starts_a_background_process(),
        "writes_outside": nbs.writes_outside(escapes),
    }
    for name, source in cases.items():
        nbs.write(nbs.insert_after_setup(nbs.exercises(), source), folder / f"{name}.ipynb")
    with contextlib.redirect_stderr(io.StringIO()):
        results = grade([folder], out, jobs=2, cell_timeout=30, timeout=120, test_timeout=30, sandbox=True)
    time.sleep(2)  # a daemon that survived would have rewritten the output by now
    return SimpleNamespace(results={Path(r["notebook"]).stem: r for r in results}, out=out, escapes=escapes)


def test_a_submission_cannot_find_and_kill_the_grader(hostile):
    """It sees only its own sandbox's processes: it may stop its own run, never the grader (this
    test's process), whose results for everyone are written."""
    assert list(hostile.results["kills_the_grader"]["exercises"]) == IDS
    assert hostile.results["jit"]["total"] == MAX, "the other learner is graded too"


def test_a_daemon_cannot_rewrite_the_grades_after_the_grader_exits(hostile):
    assert "rewritten" not in (hostile.out / "grades.csv").read_text()
    assert all("rewritten" not in path.read_text() for path in hostile.out.glob("*.json"))
    assert json.loads((hostile.out / "daemon.json").read_text())["total"] == 0


def test_every_process_a_submission_starts_ends_with_it(hostile):
    assert hostile.results["background"]["error"] is None
    assert _survivors() == []


def test_a_submission_cannot_write_outside_its_folder(hostile):
    assert [path for path in hostile.escapes if path.exists()] == []
