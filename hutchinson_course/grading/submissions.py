"""Which files to grade, reading one, and which exercise set it belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import nbformat

from ..exercises import EXERCISE_SETS


class UsageError(ValueError):
    """The grader was called wrongly (the command line reports it as a usage error)."""


class Unreadable(Exception):
    """The file is not a notebook nbformat accepts."""


class UnknownSet(Exception):
    """The exercise set of a notebook cannot be told, or is not one the course has."""


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """The notebooks to grade: files as given, and the *.ipynb directly inside each folder."""
    notebooks: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            # glob("*") does not go into subfolders, so .ipynb_checkpoints copies are left out
            found = sorted(p for p in path.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))
            if not found:
                raise UsageError(f"{path} has no .ipynb files in it")
        elif path.is_file():
            found = [path]
        else:
            raise UsageError(f"{path} does not exist")
        for notebook in found:
            notebooks.setdefault(notebook.resolve(), notebook)  # each file once
    return list(notebooks.values())


def read(path: Path) -> nbformat.NotebookNode:
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # not JSON, not a notebook, not text at all...
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise Unreadable(lines[0][:300]) from error
    return notebook


def exercise_set_name(notebook: nbformat.NotebookNode | None, path: Path, option: str | None) -> str:
    """From the notebook's metadata ``hutchinson_course.exercise_set``, else ``option`` (--set),
    else the file name when it is a set's name."""
    course = notebook.metadata.get("hutchinson_course") if notebook is not None else None
    named = course.get("exercise_set") if isinstance(course, dict) else None
    sets = ", ".join(EXERCISE_SETS)
    if named is not None:
        if named not in EXERCISE_SETS:
            raise UnknownSet(f"the notebook's metadata names exercise set {named!r}, "
                             f"but the course's sets are: {sets}")
        return named
    if option is not None:
        return option
    if path.stem in EXERCISE_SETS:
        return path.stem
    raise UnknownSet(f"cannot tell which exercise set this notebook is: its metadata has no "
                     f"hutchinson_course.exercise_set, no --set was given, and its file name "
                     f"{path.stem!r} is not a set's name (the course's sets are: {sets})")
