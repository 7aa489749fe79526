"""Start the worker processes on this machine from a notebook, and collect what they wrote.

    result = run_processes(num_processes=2, devices_per_process=4, timeout=60)

What a cluster's scheduler (SLURM's ``srun``, a TPU pod's runtime) does for a real job, done on
localhost: a free port for the coordinator, one worker process per "host", each with its own
simulated CPU devices, a time limit for the whole run. Every worker runs in its own session
(process group), so that stopping it stops everything it started. When one worker exits with an
error the others are stopped at once: they would otherwise wait in their next collective for a
partner that is gone. Either way no worker outlives the call.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

import hutchinson_course

WORKER_MODULE = "hutchinson_course.distributed.worker"
SHOWN_LINES = 15


class WorkerError(RuntimeError):
    """A worker failed or did not finish in time. ``process_ids``: the processes it names;
    the message quotes what each printed."""

    def __init__(self, message: str, process_ids: list[int]):
        super().__init__(message)
        self.process_ids = process_ids


@dataclass
class ProcessResult:
    """What one worker wrote: its summary (process_index, process_count, local and global device
    counts, its rows, the mean it computed), its rows of the traces, and its output."""

    summary: dict
    rows: np.ndarray
    traces: np.ndarray
    stdout: str


@dataclass
class RunResult:
    """The whole run: the problem, the (B, N) traces process 0 gathered, the mean, each process's result."""

    problem: dict
    traces: np.ndarray
    mean: float
    processes: list[ProcessResult]
    out: pathlib.Path | None  # the folder the workers wrote, or None when it was a temporary one (removed)


def free_port() -> int:
    """A TCP port no one listens on now (the operating system picks it) for the coordinator."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_environment(devices_per_process: int) -> dict[str, str]:
    """This environment, with XLA asked for ``devices_per_process`` CPU devices (replacing any
    device count already in XLA_FLAGS, such as a notebook's) and the course package importable."""
    environment = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", environment.get("XLA_FLAGS", ""))
    environment["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices_per_process}".strip()
    environment["JAX_PLATFORMS"] = "cpu"
    environment["PYTHONUNBUFFERED"] = "1"
    package_root = str(pathlib.Path(hutchinson_course.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    return environment


def run_processes(num_processes: int = 2, devices_per_process: int = 4, *, timeout: float = 60.0,
                  out: str | os.PathLike | None = None, worker_args: tuple[str, ...] = (),
                  **problem: int) -> RunResult:
    """Run ``num_processes`` workers, each with ``devices_per_process`` CPU devices, and read their results.

    ``timeout``: seconds for the whole run, the connection of all workers included. ``out``: the
    folder the workers write to, kept (default: a temporary folder, removed once the results and
    any error message are read). ``problem``: the worker's
    problem sizes (``batch_size=10``, ``num_points``, ``dim``, ``context_dim``, ``num_probes``,
    ``seed``; the worker's ``PROBLEM`` gives the defaults). ``worker_args``: more command-line
    options for every worker (``("--fail", "exit")``).
    Raises ``WorkerError`` naming the process that failed, or those still running at the time
    limit, with what each printed; all workers are stopped before it returns or raises.
    """
    if out is None:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="hutchinson-processes-"))
        try:
            result = _run_in(folder, num_processes, devices_per_process, timeout, worker_args, problem)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result.out = None
        return result
    return _run_in(pathlib.Path(out), num_processes, devices_per_process, timeout, worker_args, problem)


def _run_in(out: pathlib.Path, num_processes: int, devices_per_process: int, timeout: float,
            worker_args: tuple[str, ...], problem: dict[str, int]) -> RunResult:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    environment = worker_environment(devices_per_process)
    workers, logs = [], []
    start = time.monotonic()
    try:
        for process_id in range(num_processes):
            log = (open(out / "logs" / f"process_{process_id}.out", "w"),
                   open(out / "logs" / f"process_{process_id}.err", "w"))
            logs.append(log)
            command = [sys.executable, "-m", WORKER_MODULE, "--coordinator", coordinator, "--num-processes",
                       str(num_processes), "--process-id", str(process_id), "--out", str(out),
                       "--init-timeout", str(max(1, int(timeout))), *problem_options(problem), *worker_args]
            workers.append(subprocess.Popen(command, stdout=log[0], stderr=log[1], stdin=subprocess.DEVNULL,
                                            env=environment, start_new_session=True))
        wait_for(workers, start + timeout, out, timeout)
    finally:
        stop(workers)
        for log in logs:
            for stream in log:
                stream.close()
    return read_results(out, num_processes)


def problem_options(problem: dict[str, int]) -> list[str]:
    """batch_size=12 -> ["--batch-size", "12"]: the worker's command-line options."""
    return [item for name, value in problem.items() for item in (f"--{name.replace('_', '-')}", str(int(value)))]


def wait_for(workers: list[subprocess.Popen], deadline: float, out: pathlib.Path, timeout: float) -> None:
    """Return when every worker has exited with 0; raise at the first failure or at the deadline."""
    while True:
        codes = [worker.poll() for worker in workers]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            stop(workers)
            process_id = failed[0]
            raise WorkerError(f"process {process_id} of {len(workers)} exited with code {codes[process_id]}; "
                              f"the other processes were stopped.\n" + printed(out, process_id), [process_id])
        if all(code == 0 for code in codes):
            return
        if time.monotonic() > deadline:
            running = [i for i, code in enumerate(codes) if code is None]
            stop(workers)
            raise WorkerError(f"process{'es' if len(running) > 1 else ''} {', '.join(map(str, running))} of "
                              f"{len(workers)} did not finish within {timeout:g} s and "
                              f"{'were' if len(running) > 1 else 'was'} stopped.\n"
                              + "\n".join(printed(out, i) for i in running), running)
        time.sleep(0.05)


def stop(workers: list[subprocess.Popen]) -> None:
    """Kill every worker still running, with everything in its session, and wait for it."""
    for worker in workers:
        if worker.poll() is None:
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:  # it exited in the meantime
                pass
    for worker in workers:
        worker.wait()


def printed(out: pathlib.Path, process_id: int) -> str:
    """The last lines process ``process_id`` printed, stdout and stderr."""
    parts = [f"--- process {process_id} printed:"]
    for stream in ("out", "err"):
        lines = (out / "logs" / f"process_{process_id}.{stream}").read_text().splitlines()
        if lines:
            parts.append(f"[std{stream}, last {min(len(lines), SHOWN_LINES)} of {len(lines)} lines]")
            parts.extend(lines[-SHOWN_LINES:])
    if len(parts) == 1:
        parts.append("(nothing)")
    return "\n".join(parts)


def read_results(out: pathlib.Path, num_processes: int) -> RunResult:
    """The files the workers wrote into ``out``."""
    processes = []
    for process_id in range(num_processes):
        block = np.load(out / f"process_{process_id}.npz")
        processes.append(ProcessResult(summary=json.loads((out / f"process_{process_id}.json").read_text()),
                                       rows=block["rows"], traces=block["traces"],
                                       stdout=(out / "logs" / f"process_{process_id}.out").read_text()))
    return RunResult(problem=json.loads((out / "problem.json").read_text()), traces=np.load(out / "traces.npy"), mean=processes[0].summary["mean"], processes=processes,
                     out=out)
