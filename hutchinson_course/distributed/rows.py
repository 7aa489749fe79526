"""Which rows of the global batch a process holds, and the batch built from row numbers alone.

In multi-controller JAX no process holds the whole batch: each builds (or reads) only its own
rows. Here a row is drawn from its own seed, ``(seed, row)``, so any process can build any rows
and every process count sees the same global batch. Rows past B are padding: a copy of row 0
with mask 0, as ``sharded.pad_batch`` pads a batch on one process.
"""

from __future__ import annotations

import numpy as np


def padded_size(batch_size: int, num_devices: int) -> int:
    """B rounded up to a multiple of the global device count: the batch every device divides evenly."""
    return -(-batch_size // num_devices) * num_devices


def process_rows(process_index: int, process_count: int, global_size: int) -> np.ndarray:
    """The row numbers process ``process_index`` of ``process_count`` holds: one contiguous block.

    The global batch (``global_size`` rows, padding included) is cut into ``process_count`` equal
    blocks in process order, the order of the processes' devices in the mesh.
    """
    if global_size % process_count:
        raise ValueError(f"a global batch of {global_size} rows cannot be split evenly across {process_count} "
                         f"processes; pad it to a multiple of {process_count} (padded_size)")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must be in [0, {process_count}), found {process_index}")
    rows_per_process = global_size // process_count
    return np.arange(process_index * rows_per_process, (process_index + 1) * rows_per_process)


def batch_rows(rows: np.ndarray, *, batch_size: int, num_points: int, dim: int, context_dim: int,
               seed: int = 0) -> dict[str, np.ndarray]:
    """The rows ``rows`` of the global batch: x_t (R, N, D), z (R, Dc), t (R, 1), mask (R, N), float32.

    Row b < B has 1 to N real points (the rest of its mask is 0); a row b >= B is padding. The
    same row number gives the same numbers in any process.
    """
    parts = [_one_row(int(row) if row < batch_size else 0, num_points, dim, context_dim, seed) for row in rows]
    batch = {name: np.stack([part[name] for part in parts]) for name in ("x_t", "z", "t", "mask")}
    batch["mask"][np.asarray(rows) >= batch_size] = 0.0
    return batch


def _one_row(row: int, num_points: int, dim: int, context_dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng((seed, row))
    num_real = rng.integers(1, num_points + 1)
    return {"x_t": rng.normal(size=(num_points, dim)).astype(np.float32),
            "z": rng.normal(size=context_dim).astype(np.float32),
            "t": rng.uniform(size=1).astype(np.float32),
            "mask": (np.arange(num_points) < num_real).astype(np.float32)}
