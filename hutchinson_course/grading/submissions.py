"""Which files to grade, reading one, and which exercise set it belongs to."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Iterable

from ..exercises import EXERCISE_SETS


class UsageError(ValueError):
    """The grader was called wrongly (the command line reports it as a usage error)."""


class Unreadable(Exception):
    """The file is not a notebook nbformat accepts."""


class UnknownSet(Exception):
    """The exercise set of a notebook cannot be told, or is not one the course has."""


@dataclasses.dataclass(frozen=True)
class Submission:
    path: Path
    name: str  # the row's name: the path inside the folder given, or the file as given
    report_stem: str  # where its JSON and feedback go, relative to --out, without a suffix

    def digest(self) -> str:
        """What --resume compares: a notebook changed since it was graded is graded again."""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return ""


@dataclasses.dataclass(frozen=True)
class Collected:
    submissions: list[Submission]
    skipped: list[tuple[str, str]]  # (path, why) of every other file in the folders given


def is_notebook_name(path: Path) -> bool:
    return path.suffix.lower() == ".ipynb"  # LMS exports and Windows tools write .IPYNB too


def collect(paths: Iterable[str | Path]) -> Collected:
    """The notebooks to grade: files as given, and every notebook inside each folder, however deep
    (an LMS export has one folder per learner). Files in hidden folders (.ipynb_checkpoints holds
    Jupyter's autosaves) and files that are not notebooks are skipped, and said so."""
    found: dict[Path, Submission] = {}
    skipped: list[tuple[str, str]] = []
    for path in map(Path, paths):
        if path.is_dir():
            in_folder = 0
            for file, why in _walk(path):
                relative = file.relative_to(path).as_posix()
                if why:
                    skipped.append((relative, why))
                elif file.resolve() not in found:
                    found[file.resolve()] = Submission(file, relative, str(Path(relative).with_suffix("")))
                    in_folder += 1
            if not in_folder:
                raise UsageError(f"{path} has no .ipynb files in it")
        elif path.is_file():
            found.setdefault(path.resolve(), Submission(path, str(path), path.stem))
        else:
            raise UsageError(f"{path} does not exist")
    return Collected(list(found.values()), skipped)


def _walk(folder: Path) -> Iterable[tuple[Path, str | None]]:
    for root, folders, files in os.walk(folder):
        hidden = sorted(name for name in folders if name.startswith("."))
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in hidden:
            why = ("Jupyter's autosaved copies, not submissions" if name == ".ipynb_checkpoints"
                   else "a hidden folder")
            yield Path(root) / name, why
        for name in sorted(files):
            file = Path(root) / name
            if name.startswith("."):
                yield file, "a hidden file"
            elif not is_notebook_name(file):
                yield file, "not a notebook (its name does not end in .ipynb)"
            elif not file.is_file():
                yield file, "not a regular file"
            else:
                yield file, None


def read(path: Path) -> "nbformat.NotebookNode":  # noqa: F821 (imported late: it is slow to import)
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # not JSON, not a notebook, not text at all...
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise Unreadable(lines[0][:300]) from error
    return notebook


def exercise_set_name(notebook, path: Path, option: str | None) -> str:
    """From the notebook's metadata ``hutchinson_course.exercise_set``, else ``option`` (--set),
    else the file name when it names one set (``jit.ipynb``, ``alice_vmap (2).IPYNB``)."""
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
    in_name = set_in_file_name(path)
    if in_name is not None:
        return in_name
    raise UnknownSet(f"cannot tell which exercise set this notebook is: its metadata has no "
                     f"hutchinson_course.exercise_set, no --set was given, and its file name "
                     f"{path.name!r} names no single set (the course's sets are: {sets})")


def set_in_file_name(path: Path) -> str | None:
    """The one set whose name is a word of the file's name (``stateful_vmap`` before ``vmap``)."""
    stem = path.stem.lower()
    matches = []
    for name in sorted(EXERCISE_SETS, key=len, reverse=True):
        pattern = rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])"
        if re.search(pattern, stem):
            matches.append(name)
            stem = re.sub(pattern, " ", stem)
    return matches[0] if len(matches) == 1 else None
