"""The variance of one Hutchinson sample eps^T A eps, and tolerances derived from it.

Only the symmetric part S = (A + A^T) / 2 matters, since eps^T A eps = eps^T S eps. With
Rademacher probes the variance is 2 (||S||_F^2 - sum_i S_ii^2); with Gaussian probes it is
2 ||S||_F^2. For a symmetric A, S = A.
"""

from __future__ import annotations

import numpy as np

from .core import PROBE_KINDS


def probe_variance(A, probe_kind: str) -> float:
    """Variance of a single sample eps^T A eps. A: (D, D)."""
    A = np.asarray(A, dtype=np.float64)
    S = (A + A.T) / 2
    frobenius_sq = float(np.sum(S**2))
    if probe_kind == "rademacher":
        return 2.0 * (frobenius_sq - float(np.sum(np.diag(S) ** 2)))
    if probe_kind == "gaussian":
        return 2.0 * frobenius_sq
    raise ValueError(f"probe_kind must be one of {PROBE_KINDS}, found {probe_kind!r}")


def estimator_tolerance(A, probe_kind: str, num_probes: int, sigmas: float = 5.0) -> float:
    """``sigmas`` standard deviations of the mean of ``num_probes`` samples.

    The mean of m independent samples has variance Var / m. Five standard deviations
    is a bound a correct estimator exceeds rarely (under one chance in 10^6 if the mean
    were Gaussian; Chebyshev's inequality guarantees at most 1 in 25 for any
    distribution). Add a little for float32 rounding when the variance is zero.
    """
    spread = sigmas * np.sqrt(probe_variance(A, probe_kind) / num_probes)
    return float(spread + 1e-5 * (1.0 + np.abs(np.trace(np.asarray(A, dtype=np.float64)))))
