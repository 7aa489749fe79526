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


# Hostile submissions: what a learner's code might do to the grader, the class or the machine.
# MARKER names the processes they start, so that a test can look for survivors in /proc.
MARKER = "hutchinson-hostile-submission"


def kills_the_grader() -> str:
    """Looks for the grader (and pytest) in /proc and kills every process it finds."""
    return ("import os, signal\n"
            "found = []\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        command = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
            "    except OSError:\n"
            "        continue\n"
            "    if b'pytest' in command or b'hutchinson-grade' in command:\n"
            "        found.append(int(pid))\n"
            "        try:\n"
            "            os.kill(int(pid), signal.SIGKILL)\n"
            "        except OSError:\n"
            "            pass\n")


def _background(code: str) -> str:
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {code!r}, {MARKER!r}], start_new_session=True,\n"
            "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")


def leaves_a_daemon_rewriting(out_dir: Path) -> str:
    """A daemon in its own session that keeps rewriting the grader's output for a minute."""
    code = ("import pathlib, time\n"
            "for _ in range(120):\n"
            f"    out = pathlib.Path({str(out_dir)!r})\n"
            "    for path in [out / 'grades.csv', *out.glob('*.json')]:\n"
            "        try:\n"
            "            path.write_text('rewritten by a submission')\n"
            "        except OSError:\n"
            "            pass\n"
            "    time.sleep(0.5)\n")
    return _background(code)


def starts_a_background_process() -> str:
    return _background("import time; time.sleep(300)")


def writes_outside(paths: list[Path]) -> str:
    return "".join(f"try:\n    open({str(p)!r}, 'w').write('escaped')\nexcept OSError:\n    pass\n" for p in paths)


ALLOCATES_20_GB = "import numpy as np\nhog = np.ones(int(20e9 / 8))\n"
COMPILED_LOOP = "jax.lax.while_loop(lambda c: c == c, lambda c: c + 1, 0).block_until_ready()\n"


def replace_check(notebook, exercise: str, source: str):
    """The check cell of ``exercise`` becomes ``source`` (after the check itself)."""
    pattern = re.compile(rf"^\s*{exercise}\.check\(\)\s*$")
    cell = next(cell for cell in _code_cells(notebook) if pattern.match(cell.source))
    cell.source = f"{exercise}.check()\n{source}"
    return notebook
