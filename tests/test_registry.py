"""The exercise sets are declared once (hutchinson_course/exercises/registry.py), and everything
named after a set is checked against that declaration."""

import dataclasses
import pathlib
import pkgutil
import sys
import types

import nbformat
import pytest

import hutchinson_course.exercises as exercises_package
from hutchinson_course.authoring.generate import SolutionMarkupError, generate
from hutchinson_course.exercises import exercise_set, registry, set_devices
from hutchinson_course.grading import hidden

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_set_module_is_declared_and_every_declared_set_has_its_files():
    modules = {m.name for m in pkgutil.iter_modules(exercises_package.__path__) if not m.ispkg}
    set_modules = {name for name in modules
                   if hasattr(__import__(f"hutchinson_course.exercises.{name}", fromlist=["_"]), "EXERCISES")}
    assert set_modules == set(registry.BY_NAME)
    for declared in registry.SETS:
        for path in (f"solutions/{declared.name}.ipynb", f"exercises/{declared.name}.ipynb",
                     f"book/{declared.chapter}.ipynb", f"hutchinson_course/grading/hidden/{declared.name}.py"):
            assert (ROOT / path).is_file(), path
        assert all(e.set_name == declared.name for e in exercise_set(declared.name))
        generated = nbformat.read(ROOT / "exercises" / f"{declared.name}.ipynb", as_version=4)
        assert generated.metadata["hutchinson_course"]["exercise_set"] == declared.name
        assert generated.metadata["hutchinson_course"].get("devices") == declared.devices == set_devices(declared.name)


def test_an_exercise_declared_for_another_set_is_refused(monkeypatch):
    module = sys.modules["hutchinson_course.exercises.jit"]
    stray = dataclasses.replace(module.EXERCISES[0], set_name="vmap")
    monkeypatch.setattr(module, "EXERCISES", (stray, *module.EXERCISES[1:]))
    with pytest.raises(ValueError, match=r"jit set's module declares exercises of another set: q1 \(declared for 'vmap'\)"):
        exercise_set("jit")


def test_a_grader_test_that_names_no_exercise_fails_at_import(monkeypatch):
    module = types.ModuleType("somewhere.hidden.jit")

    def test_q9_typo(answer):
        pass

    def test_q1_fine(answer):
        pass

    for test in (test_q9_typo, test_q1_fine):
        test.__module__ = module.__name__
        setattr(module, test.__name__, test)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(ImportError, match=r"test_q9_typo name no exercise of the jit set \(its exercises are q1, q2, q3, q4\)"):
        hidden.check_test_names(module.__name__)


def test_a_solutions_notebook_must_be_a_declared_set_named_as_its_file(tmp_path):
    (tmp_path / "solutions").mkdir()
    notebook = nbformat.read(ROOT / "solutions" / "jit.ipynb", as_version=4)
    nbformat.write(notebook, tmp_path / "solutions" / "jit_copy.ipynb")
    with pytest.raises(SolutionMarkupError, match=r"expected the file's name, 'jit_copy'"):
        generate(tmp_path, check_only=True)


def test_unknown_sets_are_named_with_the_declared_ones():
    with pytest.raises(ValueError, match="unknown exercise set 'jitt'; the course has jit, vmap, pmap"):
        set_devices("jitt")
