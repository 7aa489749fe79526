"""For every exercise set: the solutions notebook grades to full marks and the unsolved exercise
notebook to zero, every exercise "not attempted" (graded together, two at a time)."""

from pathlib import Path

import pytest

from hutchinson_course.exercises import EXERCISE_SETS, exercise_set, set_devices
from hutchinson_course.grading import grade
from hutchinson_course.grading.judge import device_environment

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    notebooks = [ROOT / folder / f"{name}.ipynb" for name in EXERCISE_SETS for folder in ("solutions", "exercises")]
    # Generous limits: this tests the answers, not the limits, on a machine that may be busy.
    results = grade(notebooks, tmp_path_factory.mktemp("grades"), jobs=2, test_timeout=240, cell_timeout=300)
    return {(Path(row["notebook"]).parent.name, row["exercise_set"]): row for row in results}


def test_every_set_has_both_notebooks():
    for name in EXERCISE_SETS:
        assert (ROOT / "solutions" / f"{name}.ipynb").is_file() and (ROOT / "exercises" / f"{name}.ipynb").is_file()


@pytest.mark.parametrize("name", EXERCISE_SETS)
def test_solutions_grade_to_full_marks(rows, name):
    row = rows[("solutions", name)]
    assert row["error"] is None
    failures = {i: e["message"] for i, e in row["exercises"].items() if e["status"] != "passed"}
    assert failures == {}
    assert row["total"] == row["max"] == sum(e.points for e in exercise_set(name))


@pytest.mark.parametrize("name", EXERCISE_SETS)
def test_unsolved_exercises_grade_to_zero(rows, name):
    row = rows[("exercises", name)]
    assert row["error"] is None and row["total"] == 0
    assert {e["status"] for e in row["exercises"].values()} == {"not attempted"}


def test_sets_that_need_devices_get_them_in_the_judge():
    assert device_environment("jit") == {}
    for name in EXERCISE_SETS:
        if set_devices(name):
            flags = device_environment(name)["XLA_FLAGS"]
            assert flags.split().count(f"--xla_force_host_platform_device_count={set_devices(name)}") == 1
