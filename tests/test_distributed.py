"""The estimator across two JAX processes on localhost (hutchinson_course.distributed).

Two processes of four CPU devices each give the traces one process computes, to the last bit,
and their mean within float32 reordering; a worker that dies or hangs is reported by the
launcher, naming it and quoting what it printed, within the time limit, and no worker survives.
"""

import os
import tempfile
import time

import numpy as np
import psutil
import pytest

from conftest import FAST_COMPILE_FLAG
from hutchinson_course.distributed import WorkerError, run_processes
from hutchinson_course.distributed.reference import mean_tolerance, single_process

PROBLEM = dict(batch_size=10, num_points=6, dim=3, context_dim=2, num_probes=8, seed=0)


def workers_alive():
    return [p for p in psutil.Process().children(recursive=True) if "hutchinson_course.distributed.worker" in
            " ".join(p.cmdline())]


def test_two_processes_give_the_single_process_result(tmp_path, monkeypatch):
    # The workers compile as this test process does (conftest: optimization level 0), so that their
    # arithmetic is this process's, to the bit.
    monkeypatch.setenv("XLA_FLAGS", f"{os.environ['XLA_FLAGS']} {FAST_COMPILE_FLAG}")
    result = run_processes(num_processes=2, devices_per_process=4, timeout=120, out=tmp_path, **PROBLEM)
    batch, traces, mean = single_process(**PROBLEM)
    np.testing.assert_array_equal(result.traces, traces)  # per point: the same keys, the same arithmetic
    assert abs(result.mean - mean) <= mean_tolerance(traces, batch["mask"])  # sums in another order

    assert [p.summary["process_index"] for p in result.processes] == [0, 1]
    assert all(p.summary["process_count"] == 2 and p.summary["local_device_count"] == 4
               and p.summary["device_count"] == 8 for p in result.processes)
    # B = 10 padded to 16 rows for 8 devices: process 1 holds rows 8..15, of which 10..15 are padding.
    assert [p.summary["rows"] for p in result.processes] == [[0, 8], [8, 16]]
    blocks = np.concatenate([p.traces for p in result.processes])
    np.testing.assert_array_equal(blocks[:10], traces)
    assert np.all(blocks[10:] == 0.0)
    assert len({p.summary["mean"] for p in result.processes}) == 1  # every process holds the same mean
    assert not workers_alive()


def test_a_worker_that_dies_is_reported_at_once_and_the_others_are_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where run_processes makes its folder
    start = time.monotonic()
    with pytest.raises(WorkerError) as error:
        run_processes(num_processes=2, devices_per_process=2, timeout=60, worker_args=("--fail", "exit"))
    assert time.monotonic() - start < 60
    assert error.value.process_ids == [1]
    assert "process 1 of 2 exited with code 3" in str(error.value)
    assert "process 1: exiting on purpose" in str(error.value)
    assert not workers_alive()
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone, the error message kept what it needed


def test_a_worker_that_hangs_is_stopped_at_the_time_limit(tmp_path):
    start = time.monotonic()
    with pytest.raises(WorkerError) as error:
        run_processes(num_processes=2, devices_per_process=2, timeout=15, out=tmp_path, worker_args=("--fail", "hang"))
    assert 15 <= time.monotonic() - start < 20
    assert 1 in error.value.process_ids
    assert "did not finish within 15 s" in str(error.value)
    assert "process 1: hanging on purpose" in str(error.value)
    assert not workers_alive()
