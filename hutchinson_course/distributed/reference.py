"""The workers' problem solved by one process, and how far apart the two means may be.

The traces are computed point by point with the same keys, so one process and several give the
same bits. The mean is a sum over all real points, added in another order (per device, then
across devices and processes); reordering a float32 sum of n terms moves it by at most about
n * eps * sum(|x|), so the means may differ by n * eps * mean(|x|) (eps: float32's machine epsilon).
"""

from __future__ import annotations

import jax
import numpy as np

from ..estimators import core, per_point
from .rows import batch_rows


def single_process(*, batch_size: int, num_points: int, dim: int, context_dim: int, num_probes: int,
                   seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """The global batch, its traces (B, N) on one device, and their mean over the real points."""
    batch = batch_rows(np.arange(batch_size), batch_size=batch_size, num_points=num_points, dim=dim,
                       context_dim=context_dim, seed=seed)
    traces = per_point.batch_traces(batch["x_t"], batch["z"], batch["t"], batch["mask"], jax.random.key(seed),
                                    num_probes=num_probes, strategy="in_axes_none")
    return batch, np.asarray(traces), float(core.masked_mean(traces, batch["mask"]))


def mean_tolerance(traces: np.ndarray, mask: np.ndarray) -> float:
    """n * eps * mean(|x|) over the n real points: how far a reordered float32 mean may move."""
    real = np.abs(np.asarray(traces, dtype=np.float64)[np.asarray(mask) != 0])
    return float(real.size * np.finfo(np.float32).eps * real.mean())
