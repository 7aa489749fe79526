"""Chapter cells that show the package's code, generated from the package.

A code cell whose metadata holds ``{"hutchinson": {"package_source": ["module:name", ...]}}``
gets, as its source, a comment naming where the code lives and then the source of each named
function or class, exactly as in the package. The chapter then runs the code it shows, and
``hutchinson-author package-cells`` rewrites any cell that has gone stale (a test fails until
it is run). Cells that simplify on purpose stay hand-written and say so.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib

import nbformat

from .setup_cells import course_notebooks

METADATA_KEY = "hutchinson"
SOURCE_KEY = "package_source"


def resolve(target: str):
    """The object named by ``"package.module:qualified.name"``."""
    module_name, _, qualified_name = target.partition(":")
    if not qualified_name:
        raise ValueError(f"a package source is named 'module:name', found {target!r}")
    obj = importlib.import_module(module_name)
    for part in qualified_name.split("."):
        obj = getattr(obj, part)
    return obj


def package_source(targets: list[str]) -> str:
    """The cell source for ``targets``: one comment line per module, then each object's source."""
    modules = []
    for target in targets:
        module = target.partition(":")[0]
        if module not in modules:
            modules.append(module)
    header = "\n".join(f"# From {module.replace('.', '/')}.py (the package's code, shown as it runs)"
                       for module in modules)
    bodies = [inspect.getsource(inspect.unwrap(resolve(target))).rstrip() for target in targets]
    return header + "\n" + "\n\n\n".join(bodies)


def package_cells(notebook) -> list:
    """The code cells of ``notebook`` that name package sources in their metadata."""
    return [cell for cell in notebook.cells
            if cell.cell_type == "code" and SOURCE_KEY in cell.get("metadata", {}).get(METADATA_KEY, {})]


def stale_cells(path: pathlib.Path) -> list[tuple[int, str]]:
    """(cell index, expected source) for each package cell of the notebook at ``path`` that is out of date."""
    notebook = nbformat.read(path, as_version=4)
    stale = []
    for index, cell in enumerate(notebook.cells):
        if cell in package_cells(notebook):
            expected = package_source(cell.metadata[METADATA_KEY][SOURCE_KEY])
            if cell.source != expected:
                stale.append((index, expected))
    return stale


def sync_package_cells(root: pathlib.Path, paths: list[pathlib.Path] | None = None,
                       check_only: bool = False) -> list[pathlib.Path]:
    """Rewrite stale package cells (or, with ``check_only``, only report them); return the notebooks affected."""
    affected = []
    for path in paths or course_notebooks(root):
        stale = stale_cells(path)
        if not stale:
            continue
        affected.append(path)
        if not check_only:
            notebook = nbformat.read(path, as_version=4)
            for index, expected in stale:
                notebook.cells[index].source = expected
            nbformat.write(notebook, path)
    return affected
