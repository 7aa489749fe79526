"""Child Python processes that the grader can always stop, each in a sandbox where there is one.

Each child runs in a session (process group) of its own, so that killing the group also stops
whatever it started. Because of that, a Ctrl-C in the terminal does not reach the children, so
``stop_all`` kills the ones still running when the grader itself is interrupted.

With bubblewrap (``bwrap``) each child also gets namespaces of its own (see ``Sandbox``): a
PID namespace, so that every process a submission starts, daemons included, ends with the child
and the grader's processes cannot be seen or signalled; a read-only view of the machine; and
one writable folder, its run folder. A memory limit (RLIMIT_AS) applies to every process of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable


class Stopped(Exception):
    """Raised instead of starting a child once the grader has been interrupted."""


class SandboxUnavailable(Exception):
    """bubblewrap is missing or cannot create namespaces here; the message says which."""


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """What a submission's processes may see: everything read-only, except ``writable``; nothing
    of ``hidden`` (the grader's output folder, the class's submissions) or of other runs' /tmp.
    ``readable`` (the compilation cache) stays visible, read-only, even under /tmp."""

    hidden: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()

    def command(self, writable: Path, cwd: Path, extra_writable: tuple[Path, ...] = ()) -> list[str]:
        command = [bwrap_path(), *_user_namespace(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                   "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
        for path in _environment():  # before the hidden folders, so that none of them shows through
            command += ["--ro-bind", str(path), str(path)]
        for path in self.hidden:
            if path.is_dir():
                command += ["--tmpfs", str(path)]
        for path in self.readable:
            if path.exists():
                command += ["--ro-bind", str(path), str(path)]
        for path in (writable, *extra_writable):
            command += ["--bind", str(path), str(path)]
        return command + ["--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--new-session",
                          "--die-with-parent", "--chdir", str(cwd), "--"]


@functools.cache
def _environment() -> tuple[Path, ...]:
    """The folders the sandboxed Python needs that the private /tmp would hide: the interpreter, its
    environment and the course package's own folder, when they live under /tmp (a clone there)."""
    import hutchinson_course

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent,
             Path(hutchinson_course.__file__).resolve().parent.parent}
    return tuple(sorted(path.resolve() for path in paths if Path("/tmp") in path.resolve().parents))


@functools.cache
def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("bubblewrap is not installed (Debian: apt-get install bubblewrap)")
    return path


@functools.cache
def _user_namespace() -> tuple[str, ...]:
    """As root, the sandbox still drops to an unprivileged user with no capabilities, which cannot
    remount the read-only view; this needs user namespaces, which some containers forbid."""
    attempt = ("--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL")
    for options in (attempt, ()):
        try:
            done = subprocess.run([bwrap_path(), *options, "--ro-bind", "/", "/", "--proc", "/proc",
                                   "--unshare-pid", "--", "/bin/true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SandboxUnavailable(f"bubblewrap could not be started: {error}")
        if done.returncode == 0:
            return options
        failure = done.stderr.decode(errors="replace").strip()
    raise SandboxUnavailable(f"bubblewrap cannot create namespaces here ({failure})")


def check_sandbox() -> None:
    """Raise SandboxUnavailable, saying why, unless sandboxed children can be started."""
    _user_namespace()


_lock = threading.Lock()
_running: set[int] = set()
_stopping = False


def run_python(module: str, args: list[str], *, cwd: Path, timeout: float, stderr_path: Path,
               also_kill: Callable[[], Iterable[int]] = tuple, env: dict[str, str] | None = None,
               sandbox: Sandbox | None = None, writable: Path | None = None,
               extra_writable: tuple[Path, ...] = (), memory_limit: int | None = None,
               heartbeat: Path | None = None) -> int | None:
    """Run ``module.main(*args)`` in a child; return its exit code, or None if it ran past ``timeout``.

    ``env`` adds to (or overrides) the grader's environment variables for the child. With a
    ``sandbox``, the child may write only in ``writable`` (and ``extra_writable``).
    ``memory_limit`` (bytes) bounds the address space of the child and of all it starts. With a
    ``heartbeat`` file, the time limit counts from the file's last change, so that a child that
    touches it as it makes progress is stopped only when one step takes longer than ``timeout``.

    Unless the child exits cleanly, its process group is killed, and so are the groups
    ``also_kill()`` names (the kernel, which jupyter_client starts in a session of its own).
    """
    command = _python_command(module, args, memory_limit)
    if sandbox is not None:
        command = sandbox.command(writable or cwd, cwd, extra_writable) + command
    with _lock, open(stderr_path, "wb") as stderr:
        if _stopping:
            raise Stopped("grading was interrupted")
        child = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=stderr, start_new_session=True, env={**os.environ, **(env or {})})
        _running.add(child.pid)
    try:
        return _wait(child, timeout, heartbeat)
    finally:
        if child.poll() != 0:  # still running, killed or crashed: what it started may live on
            # In a sandbox, the ids also_kill() names belong to its PID namespace, not ours; the
            # namespace ends with the child anyway.
            for group in (child.pid, *(() if sandbox else also_kill())):
                kill_group(group)
        child.wait()
        with _lock:
            _running.discard(child.pid)


class Server:
    """A child running ``module.serve()``, kept between requests: each request is one line on its
    stdin, and the server answers with one line on its stdout once it has done it. For trusted
    code only (the judge): it saves a process start and JAX's import per request, and keeps the
    programs it compiled. Not sandboxed; ``memory_limit`` (bytes) bounds its address space.
    """

    def __init__(self, module: str, *, cwd: Path, stderr_path: Path, env: dict[str, str] | None = None,
                 memory_limit: int | None = None):
        self.stderr_path = stderr_path
        self.requests = 0
        with _lock, open(stderr_path, "wb") as stderr:
            if _stopping:
                raise Stopped("grading was interrupted")
            self._child = subprocess.Popen(_python_command(module, [], memory_limit, entry="serve"), cwd=cwd,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                           start_new_session=True, env={**os.environ, **(env or {})})
            _running.add(self._child.pid)

    def request(self, line: str, *, timeout: float, heartbeat: Path | None = None) -> int | None:
        """Send ``line``: 0 once the server has answered, its exit code if it ended first, None if it
        ran past ``timeout`` (counted from ``heartbeat``'s last change, as in ``run_python``); a
        server that did not answer is stopped."""
        self.requests += 1
        try:
            self._child.stdin.write(line.encode() + b"\n")
            self._child.stdin.flush()
        except OSError:  # it is gone already
            return self._end()
        deadline = time.time() + timeout
        answer = self._child.stdout.fileno()
        while True:
            ready, _, _ = select.select([answer], [], [], min(1.0, max(0.0, deadline - time.time())))
            if ready:
                if os.read(answer, 4096).endswith(b"\n"):  # the answer is one short line, written at once
                    return 0
                return self._end()  # end of file: it died
            if heartbeat is not None:
                with contextlib.suppress(FileNotFoundError):
                    deadline = max(deadline, heartbeat.stat().st_mtime + timeout)
            if time.time() >= deadline:
                self._end()
                return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._child.stdin.close()  # serve() returns at the end of its input
        try:
            self._child.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._end()

    def _end(self) -> int:
        kill_group(self._child.pid)
        code = self._child.wait()
        with _lock:
            _running.discard(self._child.pid)
        return code if code != 0 else -signal.SIGKILL  # an answer that never came is not a clean exit


def serve(handle: Callable[[str], None]) -> None:
    """The server's side: ``handle`` each line of stdin, answering each on the stdout it started
    with; anything the handler prints goes to stderr instead, so it cannot pass for an answer."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        handle(line.strip())
        answers.write("done\n")
        answers.flush()


def _python_command(module: str, args: list[str], memory_limit: int | None, entry: str = "main") -> list[str]:
    # -P: the child's working directory is not put on sys.path, so files a notebook wrote
    # there (a numpy.py, say) cannot shadow the modules the grader imports. (-c rather than
    # -m, which would import the module a second time, after its package imported it.)
    limit = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_limit}, {memory_limit})); "
             if memory_limit else "")
    return [sys.executable, "-P", "-c", f"{limit}import sys, {module}; {module}.{entry}(*sys.argv[1:])", *args]


def _wait(child: subprocess.Popen, timeout: float, heartbeat: Path | None) -> int | None:
    if heartbeat is None:
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    deadline = time.time() + timeout
    while True:
        try:
            return child.wait(min(1.0, max(0.0, deadline - time.time())))
        except subprocess.TimeoutExpired:
            try:
                deadline = max(deadline, heartbeat.stat().st_mtime + timeout)
            except FileNotFoundError:
                pass
            if time.time() >= deadline:
                return None


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
