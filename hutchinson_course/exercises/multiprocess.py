"""Exercises of the multiprocess chapter: each process's rows, and a mean across processes.

The processes are simulated as data (a process index and count, per-process blocks), so the
checks run in one process and need no devices.
"""

from __future__ import annotations

import numpy as np

from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable
from .observe import ReplayError, observe, type_name
from .outcome import Incorrect


def numbered_batch(batch_size: int = 12, num_points: int = 3):
    """x_t (B, N, 2) and mask (B, N) whose entries say which row they come from."""
    x_t = np.arange(batch_size * num_points * 2, dtype=np.float32).reshape(batch_size, num_points, 2)
    mask = np.ones((batch_size, num_points), dtype=np.float32) * (np.arange(batch_size) % 3 != 2)[:, None]
    return x_t, mask


def fresh(arrays):
    """A copy of a tuple or list of arrays (NumPy's copied, JAX's are immutable), or of a list of
    such blocks, to hand to an answer: what it does to its arguments cannot change the check's."""
    if isinstance(arrays, (tuple, list)):
        return type(arrays)(fresh(item) for item in arrays)
    return np.array(arrays) if isinstance(arrays, np.ndarray) else arrays


# q1 -------------------------------------------------------------------------------------

def check_parts(process_part, arrays, process_count: int) -> None:
    rows_per_process = arrays[0].shape[0] // process_count
    for process_index in range(process_count):
        what = f"process_part(arrays, {process_index}, {process_count})"
        parts = observe(lambda: process_part(fresh(arrays), process_index, process_count))
        if not isinstance(parts, (tuple, list)) or len(parts) != len(arrays):
            raise Incorrect(f"{what} should return a tuple with one part per array ({len(arrays)}), found "
                            f"{type_name(parts)}.")
        expected_rows = slice(process_index * rows_per_process, (process_index + 1) * rows_per_process)
        for name, part, array in zip(("x_t", "mask"), parts, arrays):
            part = expect_array(part, what=f"{what}'s {name}", shape=(rows_per_process,) + array.shape[1:],
                                why_shape="Each process holds B / process_count rows and all their other axes.")
            strided = array[process_index::process_count]
            if np.array_equal(part, strided) and not np.array_equal(part, array[expected_rows]):
                raise Incorrect(f"{what} returned rows {process_index}, {process_index + process_count}, ... (a "
                                f"stride of {process_count}). The mesh lists the devices in "
                                f"process order, so process {process_index} holds one contiguous block: rows "
                                f"{expected_rows.start} to {expected_rows.stop - 1}.")
            expect_close(part, array[expected_rows], what=f"{what}'s {name}",
                         why=f"Process {process_index} holds rows {expected_rows.start} to {expected_rows.stop - 1}.")


def check_process_part(process_part) -> None:
    require_callable(process_part, "process_part")
    arrays = numbered_batch()
    for process_count in (1, 2, 4):
        check_parts(process_part, arrays, process_count)
    try:
        observe(lambda: process_part(numbered_batch(batch_size=10), 0, 4))
    except ValueError as error:
        if "10" not in str(error) or "4" not in str(error):
            raise Incorrect(f"The ValueError for B=10 on 4 processes should name both numbers, found: {error}") from None
        return
    except ReplayError:
        raise
    except Exception as error:
        raise Incorrect(f"B=10 on 4 processes should raise ValueError with a clear message, found "
                        f"{getattr(error, 'learner_type', type(error).__name__)}: {error}") from None
    raise Incorrect("B=10 cannot be split into 4 equal parts: raise ValueError (pad the batch first) instead of "
                    "returning.")


# q2 -------------------------------------------------------------------------------------

def process_blocks(seed: int = 0, process_count: int = 3, rows: int = 4, points: int = 5, padding_rows: int = 6):
    """Per-process (traces, mask) blocks of a padded batch: the last ``padding_rows`` rows are padding,
    with mask 0 and traces 0, so the last process holds fewer real points than the others."""
    rng = np.random.default_rng(seed)
    traces = rng.normal(3.0, 1.0, size=(process_count * rows, points)).astype(np.float32)
    mask = (rng.uniform(size=traces.shape) < 0.7).astype(np.float32)
    mask[-padding_rows:] = 0.0
    traces = np.where(mask != 0, traces, 0.0).astype(np.float32)
    return [(traces[i * rows:(i + 1) * rows], mask[i * rows:(i + 1) * rows]) for i in range(process_count)]


def reference_mean(blocks) -> float:
    total = sum(float(np.sum(np.where(m != 0, t, 0.0), dtype=np.float64)) for t, m in blocks)
    count = sum(int(np.sum(m != 0)) for _, m in blocks)
    return total / max(count, 1)


def check_mean_across_processes(mean_across_processes) -> None:
    require_callable(mean_across_processes, "mean_across_processes")
    blocks = process_blocks()
    found = observe(lambda: np.asarray(mean_across_processes(fresh(blocks))))
    found = float(expect_array(np.asarray(found), what="mean_across_processes(blocks)", shape=(),
                               why_shape="Return one number: the mean over all processes' real points."))
    expected = reference_mean(blocks)
    means = [reference_mean([block]) for block in blocks]
    padded_count = sum(m.size for _, m in blocks)
    with_padding = sum(float(np.sum(t, dtype=np.float64)) for t, _ in blocks) / padded_count
    if np.isclose(found, np.mean(means), rtol=1e-5) and not np.isclose(expected, np.mean(means), rtol=1e-5):
        raise Incorrect(f"You averaged the processes' means ({found:.4f}); the processes hold different numbers "
                        f"of real points, so the mean is {expected:.4f}: add the sums and the counts first.")
    if np.isclose(found, with_padding, rtol=1e-5):
        real = sum(int(np.sum(m != 0)) for _, m in blocks)
        raise Incorrect(f"You divided by all {padded_count} points, padding included, but only {real} are real: "
                        "count only where the mask is nonzero.")
    expect_close(found, expected, what="the mean over all processes' real points", rtol=1e-5)
    all_padding = [(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.float32))] * 2
    found = float(np.asarray(observe(lambda: np.asarray(mean_across_processes(fresh(all_padding))))))
    if not found == 0.0:
        raise Incorrect(f"When every process holds only padding the course's policy is a mean of 0.0, found {found} "
                        "(core.mean_of_real divides by max(count, 1)).")


EXERCISES = (
    Exercise("multiprocess", "q1", "this process's rows", "process_part", 1, check_process_part, (
        "The global batch is cut into process_count equal parts in process order: process i holds one "
        "contiguous block of B // process_count rows.",
        "Check B % process_count first and raise ValueError naming both numbers.",
        "tuple(a[start:stop] for a in arrays) with start = process_index * (B // process_count).",
    )),
    Exercise("multiprocess", "q2", "a mean across processes", "mean_across_processes", 1,
             check_mean_across_processes, (
        "Sums and counts add across processes; means do not. Each block is (traces, mask) of one process.",
        "core.masked_sum_and_count(traces, mask) gives one process's (sum, count) over its real points.",
        "Add the sums, add the counts, then core.mean_of_real(total, count): 0.0 when there are no real points.",
    )),
)
