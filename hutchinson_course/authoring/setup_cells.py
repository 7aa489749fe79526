"""Keep every notebook's first code cell equal to the setup-cell template."""

from __future__ import annotations

import pathlib

import nbformat

from .config import load_config
from .setup_cell import SETUP_CELL_TAGS, notebook_devices, setup_cell_source

NOTEBOOK_DIRS = ("book", "solutions", "exercises")


def course_notebooks(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def expected_setup_cell(notebook, root: pathlib.Path) -> str:
    return setup_cell_source(load_config(root), notebook_devices(notebook))


def setup_cell_is_current(notebook, root: pathlib.Path) -> bool:
    """Whether the first code cell is the template's source and carries its tags."""
    cell = first_code_cell(notebook)
    tags = cell.metadata.get("tags", [])
    return cell.source == expected_setup_cell(notebook, root) and all(t in tags for t in SETUP_CELL_TAGS)


def first_code_cell(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            return cell
    raise ValueError("the notebook has no code cell")


def sync_setup_cells(root: pathlib.Path, paths: list[pathlib.Path] | None = None) -> list[pathlib.Path]:
    """Rewrite first code cells that differ from the template; return the notebooks changed."""
    changed = []
    for path in paths or course_notebooks(root):
        notebook = nbformat.read(path, as_version=4)
        cell = first_code_cell(notebook)
        if not setup_cell_is_current(notebook, root):
            cell.source = expected_setup_cell(notebook, root)
            tags = cell.metadata.setdefault("tags", [])
            tags.extend(t for t in SETUP_CELL_TAGS if t not in tags)
            nbformat.write(notebook, path)
            changed.append(path)
    return changed
