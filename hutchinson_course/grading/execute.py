"""Run a submitted notebook in a fresh kernel, and its answers through the tests.

The grader calls ``run_notebook``, which runs this module as a child process (``main``) on a
copy of the notebook in a temporary working directory, with a time limit on the whole run,
in the sandbox when there is one. The child executes the cells with nbclient, each under its
own time limit, then one cell per exercise that the grader appends, which runs the tests on the
answer and records what it returns (see ``collect``; the verdicts are decided by ``judge``).
The learner's cells that only call a check (``q1.check()``) are not run: the grader's cell runs
that check, on the answer as it stands at the end of the notebook.

A cell past its time limit is interrupted (KeyboardInterrupt), which stops Python code. Compiled
code (an XLA loop that never ends) does not see the interrupt, so a cell that is still running
``INTERRUPT_GRACE`` seconds later costs its kernel: the notebook is run again in a new kernel
without that cell (and without any other cell that hung before), so that the other exercises are
still tested. Re-running repeats the cells before it, which is why there is a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
from pathlib import Path

from . import collect, processes

INTERRUPT_GRACE = 10  # seconds a cell has to stop after its interrupt
HUNG_CELLS_MAX = 3  # cells that may hang before the notebook is given up
GRADER_CELL_SPARE = 15  # seconds a grader's cell has beyond the test time limit (loading the tests)


@dataclasses.dataclass(frozen=True)
class Execution:
    error: str | None  # what went wrong with the notebook as a whole, if anything
    untested_status: str  # the status of answers the run never tested
    notes: tuple[str, ...] = ()  # cells that were interrupted, skipped or ran out of memory
    hung: tuple[str, ...] = ()  # exercises whose tests hung in compiled code


def run_notebook(notebook, file_name: str, run_dir: Path, set_name: str, exercises: list[tuple[str, str]], *,
                 cell_timeout: float, timeout: float, test_timeout: float, private_tests: Path | None = None,
                 sandbox: processes.Sandbox | None = None, memory_limit: int | None = None,
                 env: dict[str, str] | None = None) -> Execution:
    """Execute ``notebook`` in a child process, then the tests of ``exercises`` ((id, answer) pairs),
    whose records go to ``run_dir/answers``. The private test file is copied into ``run_dir``, so
    that the sandbox, which hides the rest of the machine's /tmp, can read it."""
    import nbformat

    work_dir = run_dir / "work"
    work_dir.mkdir()
    (run_dir / "answers").mkdir()
    nbformat.write(notebook, work_dir / file_name)
    if private_tests is not None:
        copy = run_dir / "private_tests" / private_tests.name
        copy.parent.mkdir()
        copy.write_bytes(private_tests.read_bytes())
        private_tests = copy
    job = {"notebook": str(work_dir / file_name), "work_dir": str(work_dir), "set": set_name,
           "exercises": exercises, "answers_dir": str(run_dir / "answers"),
           "private_tests": str(private_tests) if private_tests else None, "test_timeout": test_timeout,
           "cell_timeout": math.ceil(cell_timeout),  # nbclient takes whole seconds
           "memory_limit": memory_limit,
           "kernel_group": str(run_dir / "kernel.pgid"), "result": str(run_dir / "execution.json")}
    (run_dir / "execute.job.json").write_text(json.dumps(job))
    stderr = run_dir / "execute.stderr"
    code = processes.run_python(__name__, [str(run_dir / "execute.job.json")], cwd=run_dir, timeout=timeout,
                                stderr_path=stderr, also_kill=lambda: _kernel_group(run_dir / "kernel.pgid"),
                                env={**private_home(run_dir), **(env or {})}, sandbox=sandbox,
                                memory_limit=memory_limit)
    if code is None:
        return Execution(f"the notebook did not finish within the time limit of {timeout:g} s", "timed out")
    try:
        done = json.loads((run_dir / "execution.json").read_text())
        error, notes = done["error"], tuple(str(note)[:500] for note in done.get("notes", ())[:20])
        hung = tuple(str(exercise_id) for exercise_id in done.get("hung", ()))
    except (OSError, ValueError, KeyError, TypeError):  # never written, or written over by the notebook
        return Execution(f"the notebook runner stopped ({processes.describe_exit(code)}): "
                         f"{processes.last_line(stderr)}", "error")
    return Execution(error if error is None else str(error)[:1000], "error", notes, hung)


def private_home(run_dir: Path) -> dict[str, str]:
    """A home folder inside the run folder, for what Jupyter, IPython and matplotlib write there
    (the real one is read-only in the sandbox, and is not the submission's to write anyway)."""
    home = run_dir / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
            "MPLCONFIGDIR": str(home / "matplotlib"), "XDG_CACHE_HOME": str(home / "cache"),
            "JUPYTER_PLATFORM_DIRS": "1", "TMPDIR": str(run_dir / "work")}


def _kernel_group(path: Path) -> list[int]:
    # Written once the kernel is up; a kernel killed before that exits by itself, because
    # ipykernel quits when its parent (the child process) is gone.
    try:
        return [int(path.read_text())]
    except (OSError, ValueError):
        return []


def _client_class():
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from traitlets import default

    class ThisInterpreterKernelManager(AsyncKernelManager):
        """Starts ipykernel on the grader's own interpreter, whatever kernels are installed.

        With no kernel directories to search, jupyter_client falls back to ipykernel's built-in
        spec, whose command line starts with ``sys.executable``.
        """

        @default("kernel_spec_manager")
        def _only_the_native_kernel(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[])

    return NotebookClient, ThisInterpreterKernelManager


class _Hung(Exception):
    def __init__(self, index: int):
        self.index = index


def main(job_path: str) -> None:
    import nbformat
    from nbclient.exceptions import DeadKernelError

    job = json.loads(Path(job_path).read_text())
    notebook = nbformat.read(job["notebook"], as_version=4)
    learner_cells = len(notebook.cells)
    for exercise_id, answer in job["exercises"]:
        notebook.cells.append(nbformat.v4.new_code_cell(collect.CELL.format(
            answer=answer, set_name=job["set"], exercise_id=exercise_id, directory=job["answers_dir"],
            private_tests=job["private_tests"], time_limit=job["test_timeout"]), metadata={"grader": exercise_id}))
    skipped: list[int] = []
    hung_exercises: list[str] = []  # whose tests hung in compiled code (the answer's loop)
    notes: list[str] = []
    current: dict[str, int] = {}
    while True:
        try:
            asyncio.run(_run_cells(notebook, job, skipped, current))
            error = _grader_cell_error(notebook.cells[learner_cells:])
        except _Hung as hung:
            notes.append(f"{_cell(notebook, hung.index)} ran past its time limit of {_time_limit(notebook.cells[hung.index], job)} s "
                         f"and did not stop when interrupted (compiled code?): the notebook was run again "
                         f"in a new kernel without it")
            skipped.append(hung.index)
            if hung.index >= learner_cells:
                hung_exercises.append(notebook.cells[hung.index].metadata["grader"])
            if len(skipped) > HUNG_CELLS_MAX:
                error = f"{len(skipped)} cells hung; the notebook was given up"
                break
            continue
        except DeadKernelError:
            error = f"the kernel died {_where(notebook, current.get('index'))}"
        except Exception as failure:  # the kernel would not start, say: still report, never crash
            error = f"the notebook could not be run: {type(failure).__name__}: {failure}"
        break
    notes += _cell_problems(notebook, job, skipped)
    Path(job["result"]).write_text(json.dumps({"error": error, "notes": notes, "hung": hung_exercises}))


async def _run_cells(notebook, job: dict, skipped: list[int], current: dict[str, int]) -> None:
    from nbclient.exceptions import DeadKernelError
    from nbclient.util import ensure_async

    NotebookClient, KernelManager = _client_class()
    client = NotebookClient(
        notebook, timeout=job["cell_timeout"], interrupt_on_timeout=True, allow_errors=True,
        kernel_name="python3", kernel_manager_class=KernelManager, shutdown_kernel="immediate",
        resources={"metadata": {"path": job["work_dir"]}})
    async with client.async_setup_kernel():
        Path(job["kernel_group"]).write_text(str(client.km.provisioner.pgid))
        await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        for index, cell in enumerate(notebook.cells):
            if index in skipped or _tested_already(cell, job) or _only_checks(cell, job):
                continue
            current["index"] = index
            # A grader's cell stops its tests itself, at the test time limit; the interrupt is the backstop.
            client.timeout = cell_limit = _time_limit(cell, job)
            running = asyncio.ensure_future(client.async_execute_cell(cell, index))
            done, _ = await asyncio.wait({running}, timeout=cell_limit + INTERRUPT_GRACE)
            if not done:
                # Not asyncio.wait_for: nbclient turns the cancellation of a running cell into
                # DeadKernelError, which would make a hung cell look like a kernel that died.
                await client.km.shutdown_kernel(now=True)
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError, DeadKernelError):
                    await running
                raise _Hung(index)
            running.result()


def _cell_problems(notebook, job: dict, skipped: list[int]) -> list[str]:
    """What the outputs say went wrong that the learner may not see as their mistake."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or index in skipped:
            continue
        for output in cell.get("outputs", ()):
            if output.get("output_type") != "error":
                continue
            text = f"{output.get('ename')}: {output.get('evalue')}"
            if output.get("ename") == "KeyboardInterrupt":
                problems.append(f"{_cell(notebook, index)} ran past its time limit of "
                                f"{_time_limit(cell, job)} s and was interrupted")
            elif job["memory_limit"] and ("MemoryError" in text or "RESOURCE_EXHAUSTED" in text):
                problems.append(f"{_cell(notebook, index)} ran out of memory (the limit is "
                                f"{job['memory_limit'] / 2**30:g} GB per process): {text[:200]}")
    return problems


def _time_limit(cell, job: dict) -> int:
    """Seconds a cell may run: a grader's cell stops its tests itself at the test time limit, and has
    this long as a backstop."""
    return math.ceil(job["test_timeout"]) + GRADER_CELL_SPARE if "grader" in cell.metadata else job["cell_timeout"]


def _only_checks(cell, job: dict) -> bool:
    """A learner's cell that only calls an exercise's check (``q1.check()``): the grader's cell runs
    that check anyway, so running it here as well would only double its time."""
    return cell.cell_type == "code" and cell.source.strip() in {f"{exercise_id}.check()"
                                                                for exercise_id, _ in job["exercises"]}


def _tested_already(cell, job: dict) -> bool:
    """A grader's cell whose tests finished in an earlier kernel (before a later cell hung)."""
    if "grader" not in cell.metadata:
        return False
    try:
        return json.loads((Path(job["answers_dir"]) / f"{cell.metadata['grader']}.json").read_text())["complete"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _grader_cell_error(cells) -> str | None:
    for cell in cells:
        for output in cell.get("outputs", ()):
            if output.output_type == "error":
                return (f"the grader's test cell for {cell.metadata['grader']} failed: "
                        f"{output.ename}: {output.evalue}")
    return None


def _where(notebook, index: int | None) -> str:
    return "before running any cell" if index is None else f"while running {_cell(notebook, index)}"


def _cell(notebook, index: int) -> str:
    if "grader" in notebook.cells[index].metadata:
        return f"the grader's test cell for {notebook.cells[index].metadata['grader']}"
    number = sum(cell.cell_type == "code" for cell in notebook.cells[:index + 1])
    lines = notebook.cells[index].source.strip().splitlines() or [""]
    return f"code cell {number} (`{lines[0][:60]}`)"
