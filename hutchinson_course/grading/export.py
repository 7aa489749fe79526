"""Hand the answers from the learner's kernel to the test process: one file per answer.

``<name>.pkl`` holds the object, pickled with cloudpickle: what the notebook defined (functions,
classes) travels by value, while modules and library functions travel by reference, so the test
process imports them afresh and nothing the notebook patched comes along. ``<name>.txt`` says
why there is no pickle. No file at all means the export never got that far.

``cells.json`` holds the source of the notebook's cells, so that a traceback through the
learner's code shows their lines in the test process too, as it did in the notebook.
"""

from __future__ import annotations

import json
import linecache
from pathlib import Path
from typing import Any, Mapping

import cloudpickle

NOT_DEFINED = "not defined"


class Unavailable(Exception):
    """The answer exists in the notebook but could not be brought to the test process."""


def export_answers(namespace: Mapping[str, Any], names: list[str], directory: str) -> None:
    """Runs in the learner's kernel, in a cell the grader appends to the notebook."""
    for name in names:
        if name not in namespace:
            _write(Path(directory) / f"{name}.txt", NOT_DEFINED.encode())
            continue
        try:
            data = cloudpickle.dumps(namespace[name])
        except Exception as error:  # whatever the object is, the other answers still get exported
            reason = f"could not be serialised: {type(error).__name__}: {error}"
            _write(Path(directory) / f"{name}.txt", reason.encode())
        else:
            _write(Path(directory) / f"{name}.pkl", data)
    try:
        # IPython keeps each cell's source in linecache with no modification time (no file behind it).
        cells = {file: "".join(entry[2]) for file, entry in list(linecache.cache.items())
                 if len(entry) == 4 and entry[1] is None}
    except Exception:  # a notebook that mangled linecache: tracebacks just show no lines
        cells = {}
    _write(Path(directory) / "cells.json", json.dumps(cells).encode())


def _write(path: Path, data: bytes) -> None:
    # Written whole or not at all: a kernel that dies mid-write leaves no truncated pickle.
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)


def exported(directory: Path, name: str) -> bool:
    return (directory / f"{name}.pkl").exists() or (directory / f"{name}.txt").exists()


def load_answer(directory: Path, name: str) -> dict[str, Any]:
    """The answer as a namespace for ``evaluate``: empty when the notebook did not define it."""
    pickled = directory / f"{name}.pkl"
    if pickled.exists():
        try:
            return {name: cloudpickle.loads(pickled.read_bytes())}
        except Exception as error:  # e.g. it refers to a module only the learner's folder had
            raise Unavailable(f"`{name}` could not be loaded outside the notebook: "
                              f"{type(error).__name__}: {error}") from error
    reason = (directory / f"{name}.txt").read_text()
    if reason == NOT_DEFINED:
        return {}
    raise Unavailable(f"`{name}` {reason}")


def load_cells(directory: Path) -> None:
    """Put the notebook's cells into this process's linecache, for tracebacks."""
    cells = directory / "cells.json"
    if cells.exists():
        for file, source in json.loads(cells.read_text()).items():
            linecache.cache.setdefault(file, (len(source), None, source.splitlines(True), file))
