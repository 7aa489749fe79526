"""A learner's install has no grader or authoring dependencies (they are the extras [grader] and
[author] in pyproject.toml): the learner's path, the exercise sets with check(), hint() and
solution(), and the widgets, must run without them. (tests/test_colab.py installs the wheel
without extras in a bare environment and runs the notebooks; this finds an import sooner.)"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRADER_ONLY = ("nbformat", "nbclient", "yaml", "jupyter_client")

LEARNER = f"""
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {GRADER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in a learner's install)", name=name)

sys.meta_path.insert(0, Missing())
from hutchinson_course.exercises import EXERCISE_SETS, exercise_set
import hutchinson_course.widgets
for name in EXERCISE_SETS:
    for exercise in exercise_set(name):
        exercise.check()
        exercise.hint()
        exercise.solution()
print("learner path ok:", ", ".join(EXERCISE_SETS))
"""


def test_the_learner_path_imports_no_grader_dependency():
    done = subprocess.run([sys.executable, "-c", LEARNER], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not attempted" in done.stdout and "learner path ok" in done.stdout


def test_grader_and_author_dependencies_are_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {requirement.split(">")[0].split("=")[0].lower() for requirement in project["dependencies"]}
    assert not names & {"nbformat", "nbclient", "pyyaml", "jupyter_client", "ipykernel"}
    for extra, needs in (("grader", {"nbclient", "ipykernel"}), ("author", {"nbclient", "pyyaml"})):
        extra_names = {r.split(">")[0].split("=")[0].lower() for r in project["optional-dependencies"][extra]}
        assert needs <= extra_names
