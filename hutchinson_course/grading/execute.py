"""Run a submitted notebook in a fresh kernel and export its answers.

The grader calls ``run_notebook``, which runs this module as a child process (``main``) on a
copy of the notebook in a temporary working directory, with a time limit on the whole run.
The child executes the cells with nbclient, each under its own time limit, then a cell the
grader appends, which exports the answers (see ``export``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets import default

from . import processes

EXPORT_CELL = """\
# Added by the grader: save each answer for the tests, which run in another process.
import hutchinson_course.grading.export as _hutchinson_grader_export
_hutchinson_grader_export.export_answers(globals(), {names!r}, {directory!r})
"""


@dataclasses.dataclass(frozen=True)
class Execution:
    error: str | None  # what went wrong with the notebook as a whole, if anything
    unexported_status: str  # the status of answers the run never exported


def run_notebook(notebook: nbformat.NotebookNode, file_name: str, run_dir: Path, answers: list[str], *,
                 cell_timeout: float, timeout: float) -> Execution:
    """Execute ``notebook`` in a child process; the answers are exported to ``run_dir/answers``."""
    work_dir = run_dir / "work"
    work_dir.mkdir()
    (run_dir / "answers").mkdir()
    nbformat.write(notebook, work_dir / file_name)
    job = {"notebook": str(work_dir / file_name), "work_dir": str(work_dir), "answers": answers,
           "answers_dir": str(run_dir / "answers"),
           "cell_timeout": math.ceil(cell_timeout),  # nbclient takes whole seconds
           "kernel_group": str(run_dir / "kernel.pgid"), "result": str(run_dir / "execution.json")}
    (run_dir / "execute.job.json").write_text(json.dumps(job))
    stderr = run_dir / "execute.stderr"
    code = processes.run_python(__name__, [str(run_dir / "execute.job.json")], cwd=run_dir, timeout=timeout,
                                stderr_path=stderr, also_kill=lambda: _kernel_group(run_dir / "kernel.pgid"))
    if code is None:
        return Execution(f"the notebook did not finish within the time limit of {timeout:g} s", "timed out")
    if not (run_dir / "execution.json").exists():
        return Execution(f"the notebook runner stopped ({processes.describe_exit(code)}): "
                         f"{processes.last_line(stderr)}", "error")
    return Execution(json.loads((run_dir / "execution.json").read_text())["error"], "error")


def _kernel_group(path: Path) -> list[int]:
    # Written once the kernel is up; a kernel killed before that exits by itself, because
    # ipykernel quits when its parent (the child process) is gone.
    return [int(path.read_text())] if path.exists() else []


class _ThisInterpreterKernelManager(AsyncKernelManager):
    """Starts ipykernel on the grader's own interpreter, whatever kernels are installed.

    With no kernel directories to search, jupyter_client falls back to ipykernel's built-in
    spec, whose command line starts with ``sys.executable``.
    """

    @default("kernel_spec_manager")
    def _only_the_native_kernel(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    notebook = nbformat.read(job["notebook"], as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        EXPORT_CELL.format(names=job["answers"], directory=job["answers_dir"])))
    current: dict[str, int] = {}
    client = NotebookClient(
        notebook, timeout=job["cell_timeout"], interrupt_on_timeout=True, allow_errors=True,
        kernel_name="python3", kernel_manager_class=_ThisInterpreterKernelManager,
        shutdown_kernel="immediate", resources={"metadata": {"path": job["work_dir"]}},
        on_notebook_start=lambda notebook: Path(job["kernel_group"]).write_text(str(client.km.provisioner.pgid)),
        on_cell_execute=lambda cell, cell_index: current.update(index=cell_index))
    try:
        client.execute()
        error = _export_error(notebook.cells[-1])
    except DeadKernelError:
        error = f"the kernel died {_where(notebook, current.get('index'))}"
    except Exception as failure:  # the kernel would not start, say: still report, never crash
        error = f"the notebook could not be run: {type(failure).__name__}: {failure}"
    Path(job["result"]).write_text(json.dumps({"error": error}))


def _export_error(cell: nbformat.NotebookNode) -> str | None:
    for output in cell.outputs:
        if output.output_type == "error":
            return f"the grader's export cell failed: {output.ename}: {output.evalue}"
    return None


def _where(notebook: nbformat.NotebookNode, index: int | None) -> str:
    if index is None:
        return "before running any cell"
    if index == len(notebook.cells) - 1:
        return "while running the grader's export cell"
    number = sum(cell.cell_type == "code" for cell in notebook.cells[:index + 1])
    first_line = notebook.cells[index].source.strip().splitlines()[0][:60]
    return f"while running code cell {number} (`{first_line}`)"
