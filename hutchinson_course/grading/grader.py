"""The grader: score finished exercise notebooks with tests the learner has not seen.

``grade`` (and the ``hutchinson-grade`` command) runs each notebook in a fresh kernel, exports
its answers, tests them in a separate process, and writes ``<stem>.json`` per notebook and
``grades.csv`` for the class. Every notebook gets a result, whatever it does.
"""

from __future__ import annotations

import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Iterable

from ..exercises import EXERCISE_SETS
from . import processes, report, submissions
from .notebook import Settings, grade_notebook, without_running
from .submissions import UsageError

# Default time limits, in seconds: generous, since they only matter when something is wrong.
CELL_TIMEOUT = 120
TIMEOUT = 600
TEST_TIMEOUT = 60


def grade(paths: Iterable[str | Path], out_dir: str | Path, *, tests: str | Path | None = None,
          jobs: int | None = None, cell_timeout: float = CELL_TIMEOUT, timeout: float = TIMEOUT,
          test_timeout: float = TEST_TIMEOUT, set_name: str | None = None) -> list[dict[str, Any]]:
    """Grade the notebooks in ``paths`` (files, or folders of *.ipynb), ``jobs`` at a time.

    ``cell_timeout`` limits each cell, ``timeout`` a notebook's whole run, ``test_timeout`` the
    tests of one exercise (seconds). ``tests`` is an instructor's file of further tests, named
    like the hidden ones. ``set_name`` is the exercise set of notebooks whose metadata does not
    say. Returns the results in the order of the notebooks; raises UsageError for bad arguments.
    """
    notebooks = submissions.collect(paths)
    settings = Settings(set_name=set_name, tests=_checked_tests(tests), cell_timeout=cell_timeout,
                        timeout=timeout, test_timeout=test_timeout)
    if set_name is not None and set_name not in EXERCISE_SETS:
        raise UsageError(f"--set {set_name!r} is not an exercise set; the course has: {', '.join(EXERCISE_SETS)}")
    if min(cell_timeout, timeout, test_timeout) <= 0 or (jobs is not None and jobs < 1):
        raise UsageError("time limits must be positive and --jobs at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_names = report.json_names(notebooks)
    results: list[dict[str, Any] | None] = [None] * len(notebooks)
    # Threads are enough: each one mostly waits for its notebook's child processes.
    pool = ThreadPoolExecutor(max_workers=jobs or _cores())
    try:
        futures = {pool.submit(_grade_safely, path, settings): i for i, path in enumerate(notebooks)}
        for finished, future in enumerate(as_completed(futures), start=1):
            i = futures[future]
            results[i] = result = future.result()
            report.write_json(out_dir / json_names[i], result)
            note = f" ({result['error']})" if result["error"] else ""
            print(f"[{finished}/{len(notebooks)}] {notebooks[i].name}: {result['total']:g}/{result['max']:g}{note}",
                  file=sys.stderr, flush=True)
    except BaseException:  # Ctrl-C: the children do not get the terminal's SIGINT, so stop them
        processes.stop_all()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
        report.write_csv(out_dir / report.CSV_NAME, [result for result in results if result is not None])
    return results


def _checked_tests(tests: str | Path | None) -> Path | None:
    if tests is None:
        return None
    path = Path(tests).resolve()
    if not path.is_file():
        raise UsageError(f"the private test file {tests} does not exist")
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as error:
        raise UsageError(f"the private test file {tests} has a syntax error (line {error.lineno}): {error.msg}")
    return path


def _cores() -> int:
    # The cores this process may use, which in a container can be fewer than the machine has.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _grade_safely(path: Path, settings: Settings) -> dict[str, Any]:
    try:
        return grade_notebook(path, settings)
    except Exception:  # a bug or a broken machine: this notebook still gets a result
        error = traceback.format_exc().strip().splitlines()[-1]
        return without_running(path, settings, f"the grader failed on this notebook: {error}")


__all__ = ["UsageError", "grade"]
