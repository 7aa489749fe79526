"""Submissions for the grader's tests, made from the course's own jit notebooks at test time.

(Kept as code, not as .ipynb files: pytest runs with --nbval and would collect them.)
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def solutions() -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / "jit.ipynb", as_version=4)


def exercises() -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "exercises" / "jit.ipynb", as_version=4)


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _defining(notebook, name: str) -> nbformat.NotebookNode:
    """The cell that defines ``name`` (``def name`` or ``name = ``, decorated or not)."""
    pattern = re.compile(rf"^(def {name}\b|{name}\s*=)", re.MULTILINE)
    return next(cell for cell in _code_cells(notebook) if pattern.search(cell.source))


def redefine(notebook, name: str, source: str):
    """The learner's answer ``name`` becomes ``source``."""
    _defining(notebook, name).source = source
    return notebook


def insert_after(notebook, name: str, source: str):
    """A new code cell right after the cell that defines ``name``."""
    index = notebook.cells.index(_defining(notebook, name))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return notebook


def insert_after_setup(notebook, source: str):
    """A new code cell after the imports (the second code cell)."""
    index = notebook.cells.index(_code_cells(notebook)[1])
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return notebook


def append(notebook, source: str):
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook


def without_checks(notebook, only: str | None = None):
    """Delete the ``qN.check()`` cells (or only the one of exercise ``only``)."""
    pattern = re.compile(rf"^\s*{only or 'q[0-9]+'}\.check\(\)\s*$")
    notebook.cells = [cell for cell in notebook.cells
                      if not (cell.cell_type == "code" and pattern.match(cell.source))]
    return notebook


def write(notebook, path: Path) -> Path:
    nbformat.write(notebook, path)
    return path
