"""The setup-cell template, as `hutchinson-author setup-cells` writes it into a notebook: folded on
the website (its tags), installing the traceback helper, and leaving other cells alone."""

import pathlib

import nbformat

from hutchinson_course.authoring.setup_cell import SETUP_CELL_TAGS
from hutchinson_course.authoring.setup_cells import (expected_setup_cell, setup_cell_is_current,
                                                     sync_setup_cells)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _notebook_with_an_old_setup_cell(path: pathlib.Path) -> pathlib.Path:
    cells = [nbformat.v4.new_markdown_cell("# A chapter"),
             nbformat.v4.new_code_cell("import os  # an old setup cell", metadata={"tags": ["keep-me"]}),
             nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"hutchinson_course": {"devices": 4}}), path)
    return path


def test_setup_cells_writes_the_template_with_its_tags(tmp_path):
    path = _notebook_with_an_old_setup_cell(tmp_path / "chapter.ipynb")
    assert sync_setup_cells(ROOT, [path]) == [path]
    notebook = nbformat.read(path, as_version=4)
    setup = notebook.cells[1]
    assert setup.source == expected_setup_cell(notebook, ROOT)
    assert "hide-input" in SETUP_CELL_TAGS  # the website folds the cell's code away
    assert setup.metadata["tags"] == ["keep-me", *SETUP_CELL_TAGS]
    assert setup_cell_is_current(notebook, ROOT)
    assert [c.source for c in notebook.cells[::2]] == ["# A chapter", "print(1)"]
    assert sync_setup_cells(ROOT, [path]) == [], "a second run changes nothing"


def test_a_setup_cell_without_its_tags_is_not_current(tmp_path):
    path = _notebook_with_an_old_setup_cell(tmp_path / "chapter.ipynb")
    sync_setup_cells(ROOT, [path])
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].metadata["tags"] = []
    assert not setup_cell_is_current(notebook, ROOT)


def test_the_setup_cell_installs_the_traceback_helper_after_the_device_flags(tmp_path):
    path = _notebook_with_an_old_setup_cell(tmp_path / "chapter.ipynb")
    sync_setup_cells(ROOT, [path])
    source = nbformat.read(path, as_version=4).cells[1].source
    assert source.rstrip().endswith("tracebacks.install()")
    assert source.index("XLA_FLAGS") < source.index("from hutchinson_course import tracebacks")
