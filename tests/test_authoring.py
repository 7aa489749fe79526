"""Authoring tools: exercise notebooks generated from solutions, and one setup cell everywhere."""

import inspect
import os
import pathlib
import subprocess
import sys

import jax
import nbformat
import pytest

from hutchinson_course.authoring.config import load_config
from hutchinson_course.authoring.generate import (SolutionMarkupError, exercise_notebook, generate, has_solution,
                                                 strip_solutions)
from hutchinson_course.authoring.setup_cell import SOURCE_VARIABLE, setup_cell_source
from hutchinson_course.authoring.setup_cells import course_notebooks, setup_cell_is_current
from hutchinson_course.exercises import EXERCISE_SETS, exercise_set
from hutchinson_course.exercises.exercise import solution_source

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_committed_exercises_are_what_the_generator_produces():
    stale = generate(ROOT, check_only=True)
    assert stale == [], f"out of date (run `make exercises`): {stale}"


def test_generator_detects_a_stale_exercise_notebook(tmp_path):
    for folder in ("solutions", "exercises"):
        (tmp_path / folder).mkdir()
    (tmp_path / "solutions" / "jit.ipynb").write_bytes((ROOT / "solutions" / "jit.ipynb").read_bytes())
    (tmp_path / "exercises" / "jit.ipynb").write_text("{}")
    stale = generate(tmp_path, check_only=True)
    assert tmp_path / "exercises" / "jit.ipynb" in stale


def test_exercise_notebooks_carry_no_outputs_and_no_solutions():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path
                assert "BEGIN SOLUTION" not in cell.source
        assert "widgets" not in notebook.metadata


def test_chapters_and_solutions_are_committed_executed_top_to_bottom():
    # The website shows these outputs as committed (it executes nothing) and nbval compares them
    # with a fresh run; a cell never run, or run out of order, would slip past both.
    for path in course_notebooks(ROOT):
        if path.parent.name == "exercises":
            continue
        counts = [c.execution_count for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), (
            f"{path.relative_to(ROOT)}: execution counts {counts}, expected 1 to {len(counts)} "
            f"(run: hutchinson-author execute {path.relative_to(ROOT)})")


def test_indented_region_becomes_not_implemented():
    source = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
    assert strip_solutions(source) == (
        "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError")


def test_top_level_region_becomes_ellipsis_for_each_name():
    source = "import jax\n# BEGIN SOLUTION\na = 1\nb, c = 2, 3\nd: int = 4\n# END SOLUTION"
    assert strip_solutions(source) == "import jax\na = ...  # YOUR CODE HERE\nd = ...  # YOUR CODE HERE"


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside another region"),
    ("# BEGIN SOLUTION\nprint(1)\n# END SOLUTION\n", "must assign a name"),
])
def test_bad_markup_is_explained(source, message):
    with pytest.raises(SolutionMarkupError, match=message):
        strip_solutions(source)


def test_solution_only_cells_are_left_out_of_the_exercise():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("kept = 1"),
        nbformat.v4.new_code_cell("demo()", metadata={"tags": ["solution-only"]}),
    ])
    assert [c.source for c in exercise_notebook(notebook).cells] == ["kept = 1"]


@pytest.mark.parametrize("name", EXERCISE_SETS)
def test_printed_solutions_pass_their_checks(name):
    """What q.solution() prints, run after the notebook's other cells, passes q's check."""
    solutions = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    namespace = {}
    for cell in solutions.cells[1:]:
        skip = has_solution(cell) or ".check()" in cell.source or "solution-only" in cell.metadata.get("tags", [])
        if cell.cell_type == "code" and not skip:
            exec(cell.source, namespace)
    for exercise in exercise_set(name):
        assert exercise.evaluate(namespace).status == "not attempted"
        exec(solution_source(name, exercise.id), namespace)
        assert exercise.evaluate(namespace).passed, exercise.id


# The template gained the traceback helper and the hide-input tag (issue 14); the committed
# notebooks get them when `hutchinson-author build` next runs. Remove this mark then.
def test_every_notebook_starts_with_the_setup_cell():
    notebooks = course_notebooks(ROOT)
    assert notebooks, "no notebooks found"
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        assert setup_cell_is_current(notebook, ROOT), (
            f"{path}: first code cell differs from the template or lacks its tags "
            "(run `hutchinson-author setup-cells`)")


def test_setup_cell_installs_from_the_configured_tag():
    config = load_config(ROOT)
    source = setup_cell_source(config)
    assert f"git+{config.repository_url}@{config.install_ref}" in source
    assert "XLA_FLAGS" not in source


def test_devices_are_requested_before_jax_is_imported():
    source = setup_cell_source(load_config(ROOT), devices=8)
    program = source + "\nimport jax\nprint(jax.device_count())"
    environment = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"


def test_setup_cell_is_quiet_and_installs_nothing_locally():
    # A source pip cannot install: if the cell tried to install, it would fail loudly.
    environment = dict(os.environ, **{SOURCE_VARIABLE: "/nonexistent/course.whl"})
    source = setup_cell_source(load_config(ROOT), devices=2)
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=environment)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bad_device_count_is_explained():
    with pytest.raises(ValueError, match="positive int, found 0"):
        setup_cell_source(load_config(ROOT), devices=0)


def test_chapter_cells_that_show_package_code_are_current():
    from hutchinson_course.authoring.package_cells import sync_package_cells

    stale = sync_package_cells(ROOT, check_only=True)
    assert not stale, f"stale package cells in {stale}: run hutchinson-author package-cells"


def test_a_stale_package_cell_is_found_and_rewritten(tmp_path):
    from hutchinson_course.authoring.package_cells import package_source, stale_cells, sync_package_cells
    from hutchinson_course.estimators import core

    cell = nbformat.v4.new_code_cell("def hutchinson(): pass  # an old copy",
                                     metadata={"hutchinson": {"package_source": [
                                         "hutchinson_course.estimators.core:quadratic_forms",
                                         "hutchinson_course.estimators.core:hutchinson"]}})
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("text"), cell]), path)
    assert [index for index, _ in stale_cells(path)] == [1]
    assert sync_package_cells(tmp_path, [path]) == [path]
    source = nbformat.read(path, as_version=4).cells[1].source
    assert source == package_source(["hutchinson_course.estimators.core:quadratic_forms",
                                     "hutchinson_course.estimators.core:hutchinson"])
    assert source.startswith("# From hutchinson_course/estimators/core.py")
    assert inspect.getsource(core.hutchinson).strip() in source and "an old copy" not in source
    namespace = {"jax": jax, "jnp": jax.numpy}
    exec(source, namespace)  # the shown code runs: it is the package's function
    assert float(namespace["hutchinson"](lambda v: 3.0 * v, jax.numpy.eye(2))) == 3.0
    assert stale_cells(path) == []


def test_the_generator_writes_only_under_the_root_it_is_given(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "jit.ipynb").write_bytes((ROOT / "solutions" / "jit.ipynb").read_bytes())
    installed = (ROOT / "hutchinson_course" / "exercises" / "data" / "jit.solutions.json").stat().st_mtime_ns
    written = generate(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "exercises/jit.ipynb", "hutchinson_course/exercises/data/jit.solutions.json"]
    assert (ROOT / "hutchinson_course" / "exercises" / "data" / "jit.solutions.json").stat().st_mtime_ns == installed
