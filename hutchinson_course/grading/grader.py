"""``grade``: score finished exercise notebooks, a class at a time.

Each notebook runs in a fresh kernel, which then runs the tests on its answers and records what they
return; the verdicts are decided from those records in a process that runs no learner code,
and the grader writes ``<notebook>.json`` and ``feedback/<notebook>.md`` per notebook, and for the
class ``grades.csv`` and ``report.md`` (with ``report.png``). Every notebook gets a result,
whatever it does. The temporary run folders (which hold the learners' answers) are removed when a
notebook is done, when the grader is stopped (Ctrl-C, SIGTERM, SIGHUP), and, for a grader that
was killed outright, by the next grader that starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Iterable

from ..exercises import EXERCISE_SETS
from . import judge, processes, report, submissions
from .notebook import Settings, grade_notebook, without_running
from .submissions import UsageError

# Default time limits, in seconds: generous, since they only matter when something is wrong.
CELL_TIMEOUT = 120
TIMEOUT = 600
TEST_TIMEOUT = 60
MEMORY_LIMIT = 8 * 2**30  # bytes of address space per kernel and per judge (XLA reserves much it never uses)
RUN_ROOT_PREFIX = "hutchinson-grade-"


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hutchinson-course" / "jax-cache"


def grade(paths: Iterable[str | Path], out_dir: str | Path, *, tests: str | Path | None = None,
          jobs: int | None = None, cell_timeout: float = CELL_TIMEOUT, timeout: float = TIMEOUT,
          test_timeout: float = TEST_TIMEOUT, set_name: str | None = None, resume: bool = False,
          sandbox: bool | None = None, memory_limit: int | None = MEMORY_LIMIT,
          cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Grade the notebooks in ``paths`` (files, or folders searched however deep), ``jobs`` at a time.

    ``cell_timeout`` limits each cell, ``timeout`` a notebook's whole run, ``test_timeout`` the
    tests of one exercise (seconds). ``tests`` is an instructor's private file of further tests,
    named like the grader tests. ``set_name`` is the exercise set of notebooks whose metadata does
    not say. ``resume`` keeps the results already in ``out_dir`` of notebooks unchanged since.
    ``sandbox``: True requires bubblewrap, False does without, None uses it where it works.
    ``memory_limit`` is in bytes per process (None: no limit). ``cache_dir`` holds JAX's
    compilation cache, shared by all submissions (read-only for them in the sandbox).
    Returns the results in the order of the notebooks; raises UsageError for bad arguments.
    """
    if set_name is not None and set_name not in EXERCISE_SETS:
        raise UsageError(f"--set {set_name!r} is not an exercise set; the course has: {', '.join(EXERCISE_SETS)}")
    if min(cell_timeout, timeout, test_timeout) <= 0 or (jobs is not None and jobs < 1):
        raise UsageError("time limits must be positive and --jobs at least 1")
    if memory_limit is not None and memory_limit < 2**30:
        raise UsageError("--memory-limit must be at least 1 GB: JAX alone needs several hundred MB")
    collected = submissions.collect(paths)
    private_tests = _checked_tests(tests)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    notebooks = collected.submissions
    for name, why in collected.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr, flush=True)
    json_paths = [out_dir / name for name in report.json_names(s.report_stem for s in notebooks)]
    results: list[dict[str, Any] | None] = [None] * len(notebooks)
    if resume:
        for i, (submission, json_path) in enumerate(zip(notebooks, json_paths)):
            earlier = report.read_json(json_path)
            if earlier and earlier.get("notebook") == submission.name and earlier.get("sha256") == submission.digest():
                results[i] = earlier
        kept = sum(r is not None for r in results)
        print(f"--resume: {kept} of {len(notebooks)} notebooks were graded already and are kept",
              file=sys.stderr, flush=True)
    _remove_abandoned_run_roots()
    run_root = Path(tempfile.mkdtemp(prefix=RUN_ROOT_PREFIX))
    (run_root / "grader.pid").write_text(str(os.getpid()))
    run_root.chmod(0o755)
    env = _cache_environment(cache)
    settings = Settings(set_name=set_name, tests=private_tests, cell_timeout=cell_timeout, timeout=timeout,
                        test_timeout=test_timeout, run_root=run_root, memory_limit=memory_limit,
                        sandbox=_sandbox(sandbox, out_dir, collected, cache), env=env,
                        judges=judge.Judges(run_root, memory_limit=memory_limit, env=env))
    todo = [i for i, r in enumerate(results) if r is None]
    pool = ThreadPoolExecutor(max_workers=jobs or _cores())
    started = time.monotonic()
    restore = _stop_on_termination()
    try:
        futures = {pool.submit(_grade_safely, notebooks[i], settings): i for i in todo}
        for finished, future in enumerate(as_completed(futures), start=1):
            i = futures[future]
            results[i] = result = future.result()
            report.write_json(json_paths[i], result)
            note = f" ({report.cap(report.problems(result), 200)})" if report.problems(result) else ""
            print(f"[{finished}/{len(todo)}] {result['notebook']}: {result['total']:g}/{result['max']:g}{note}"
                  f" | {_progress(time.monotonic() - started, finished, len(todo))}", file=sys.stderr, flush=True)
    except BaseException:  # Ctrl-C: the children do not get the terminal's SIGINT, so stop them
        processes.stop_all()
        raise
    finally:
        restore()
        pool.shutdown(wait=True, cancel_futures=True)
        settings.judges.close()
        shutil.rmtree(run_root, ignore_errors=True)
        done = [result for result in results if result is not None]
        report.write_csv(out_dir / report.CSV_NAME, done)
        for result, json_path in zip(results, json_paths):
            if result is not None:
                feedback = out_dir / report.FEEDBACK_DIR / json_path.relative_to(out_dir).with_suffix(".md")
                feedback.parent.mkdir(parents=True, exist_ok=True)
                feedback.write_text(report.feedback(result), encoding="utf-8", errors="backslashreplace")
        report.write_class_report(out_dir, done, collected.skipped)
    return results


def _progress(elapsed: float, finished: int, total: int) -> str:
    left = elapsed / finished * (total - finished)
    return f"{_duration(elapsed)} elapsed, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def _stop_on_termination():
    """SIGTERM and SIGHUP stop the grader as Ctrl-C does, so that its clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(signum, handler) for signum, handler in previous.items()]


def _remove_abandoned_run_roots() -> None:
    """The run folders of graders that were killed outright (SIGKILL) hold answers: remove them."""
    for root in Path(tempfile.gettempdir()).glob(f"{RUN_ROOT_PREFIX}*"):
        try:
            pid = int((root / "grader.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):  # another user's grader, or one still starting
            continue


def _sandbox(wanted: bool | None, out_dir: Path, collected: submissions.Collected,
             cache: Path) -> processes.Sandbox | None:
    if wanted is False:
        return None
    try:
        processes.check_sandbox()
    except processes.SandboxUnavailable as why:
        if wanted:
            raise UsageError(f"--sandbox was asked for, but {why}")
        print(f"warning: grading without a sandbox, because {why}: submissions can see and change the "
              f"machine as the grader's user can", file=sys.stderr, flush=True)
        return None
    # Hidden: the output folder and the submissions' folders, unless such a folder holds the
    # Python or the course package every child needs (then only the output folder is hidden).
    needed = [Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1]]
    folders = {out_dir} | {s.path.resolve().parent for s in collected.submissions}
    hidden = tuple(sorted(f for f in folders if not any(n.is_relative_to(f) for n in needed)))
    return processes.Sandbox(hidden=hidden, readable=(cache,))


def _cache_environment(cache: Path) -> dict[str, str]:
    # Every submission compiles the same reference programs of the checks: cache them all,
    # however small or quick to compile.
    return {"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


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


def _grade_safely(submission: submissions.Submission, settings: Settings) -> dict[str, Any]:
    try:
        return grade_notebook(submission, settings)
    except processes.Stopped:
        raise
    except Exception:  # a bug or a broken machine: this notebook still gets a result
        error = traceback.format_exc().strip().splitlines()[-1]
        return without_running(submission, settings, f"the grader failed on this notebook: {error}")
