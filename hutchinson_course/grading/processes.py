"""Child Python processes that the grader can always stop.

Each child runs in a session (process group) of its own, so that killing the group also stops
whatever it started. Because of that, a Ctrl-C in the terminal does not reach the children, so
``stop_all`` kills the ones still running when the grader itself is interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable


class Stopped(Exception):
    """Raised instead of starting a child once the grader has been interrupted."""


_lock = threading.Lock()
_running: set[int] = set()
_stopping = False


def run_python(module: str, args: list[str], *, cwd: Path, timeout: float, stderr_path: Path,
               also_kill: Callable[[], Iterable[int]] = tuple, env: dict[str, str] | None = None) -> int | None:
    """Run ``module.main(*args)`` in a child; return its exit code, or None if it ran past ``timeout``.

    ``env`` adds to (or overrides) the grader's environment variables for the child.

    Unless the child exits cleanly, its process group is killed, and so are the groups
    ``also_kill()`` names (the kernel, which jupyter_client starts in a session of its own).
    """
    with _lock, open(stderr_path, "wb") as stderr:
        if _stopping:
            raise Stopped("grading was interrupted")
        # -P: the child's working directory is not put on sys.path, so files a notebook wrote
        # there (a numpy.py, say) cannot shadow the modules the grader imports. (-c rather than
        # -m, which would import the module a second time, after its package imported it.)
        code = f"import sys, {module}; {module}.main(*sys.argv[1:])"
        child = subprocess.Popen([sys.executable, "-P", "-c", code, *args], cwd=cwd,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                 start_new_session=True, env={**os.environ, **(env or {})})
        _running.add(child.pid)
    try:
        return child.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if child.poll() != 0:  # still running, killed or crashed: what it started may live on
            for group in (child.pid, *also_kill()):
                kill_group(group)
        child.wait()
        with _lock:
            _running.discard(child.pid)


def kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # already gone
        pass


def stop_all() -> None:
    """Kill every running child and refuse to start new ones (the grader was interrupted)."""
    global _stopping
    with _lock:
        _stopping = True
        for group in _running:
            kill_group(group)


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def last_line(path: Path, limit: int = 300) -> str:
    """The last non-blank line a child wrote to ``path`` (its stderr), for error messages."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:limit] if lines else "(no error output)"
