"""The grad chapter's probe explorer: how Hutchinson estimates of tr(A) spread, and what theory says.

For any (D, D) matrix A (a Jacobian, say), ``probe_histograms`` draws ``repetitions`` independent
estimates for every probe count m in ``PROBE_COUNTS`` and both probe kinds, with the course's
``sample_probes``: each estimate is the mean of eps^T A eps over m probes. It bins them, and records
the exact trace and the theoretical standard deviation sqrt(Var / m), Var being
``variance.probe_variance(A, kind)``. All of it is computed once, in Python, and saved in the
widget, whose view (``probe_explorer.js``) only draws: switching the probe count or kind needs no
kernel, on the static website too.
"""

from __future__ import annotations

import functools

import anywidget
import jax
import jax.numpy as jnp
import numpy as np
import traitlets

from ..estimators.core import PROBE_KINDS, sample_probes
from ..estimators.variance import probe_variance
from . import assets

PROBE_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)


@functools.partial(jax.jit, static_argnames=("probe_kind", "num_probes", "repetitions"))
def quadratic_forms(A: jax.Array, key: jax.Array, *, probe_kind: str, num_probes: int,
                    repetitions: int) -> jax.Array:
    """eps^T A eps for ``num_probes`` probes in each of ``repetitions`` independent draws.

    A: (D, D), key: one key. Returns (repetitions, num_probes).
    """
    def one_draw(draw_key):  # (P,) samples from one key, as the estimator draws them
        probes = sample_probes(draw_key, num_probes, A.shape[0], probe_kind, A.dtype)  # (P, D)
        return jnp.einsum("pi,ij,pj->p", probes, A, probes)

    return jax.lax.map(one_draw, jax.random.split(key, repetitions), batch_size=256)


def probe_histograms(A, *, probe_counts=PROBE_COUNTS, repetitions: int = 2000, bins: int = 48,
                     seed: int = 0) -> dict:
    """Histograms of Hutchinson estimates of tr(A), for each probe kind and probe count.

    A: (D, D), any square matrix. The estimate with m probes is the mean of the first m samples of
    a draw, so the counts share their draws (each count's estimates are still independent of each
    other). A kind's histograms share their bins, centred on tr(A), 4 single-probe standard
    deviations either side, so that the narrowing with m is visible. Returns plain data:
    ``{"exact", "bins", "repetitions", "probe_counts", "kinds": {kind: {"variance", "low", "high",
    "counts": {m: {"counts", "below", "above", "mean", "std", "theory_std"}}}}}``.
    """
    A = np.asarray(A, dtype=np.float32)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square (D, D) matrix, found shape {A.shape}")
    exact = float(np.trace(A.astype(np.float64)))
    keys = jax.random.split(jax.random.key(seed), len(PROBE_KINDS))
    kinds = {}
    for kind, key in zip(PROBE_KINDS, keys):
        variance = probe_variance(A, kind)
        spread = 4.0 * max(np.sqrt(variance), 1e-3 * max(1.0, abs(exact)))  # not 0 when every estimate is exact
        low, high = exact - spread, exact + spread
        samples = np.asarray(quadratic_forms(jnp.asarray(A), key, probe_kind=kind, num_probes=max(probe_counts),
                                             repetitions=repetitions), dtype=np.float64)
        running_means = np.cumsum(samples, axis=1) / np.arange(1, samples.shape[1] + 1)  # (R, P)
        per_count = {}
        for m in probe_counts:
            estimates = running_means[:, m - 1]
            counts, _ = np.histogram(estimates, bins=bins, range=(low, high))
            per_count[str(m)] = {
                "counts": counts.tolist(),
                "below": int(np.sum(estimates < low)),
                "above": int(np.sum(estimates > high)),
                "mean": float(estimates.mean()),
                "std": float(estimates.std(ddof=1)),
                "theory_std": float(np.sqrt(variance / m)),
            }
        kinds[kind] = {"variance": variance, "low": low, "high": high, "counts": per_count}
    return {"exact": exact, "bins": bins, "repetitions": repetitions, "probe_counts": list(probe_counts),
            "kinds": kinds}


class ProbeExplorer(anywidget.AnyWidget):
    """Choose the probe kind and the number of probes; see the histogram of estimates of tr(A), the
    exact trace, and the theoretical spread. ``ProbeExplorer(A, label="J")`` for any (D, D) matrix A."""

    _esm = assets.module("probe_explorer.js")
    _css = assets.stylesheet()

    probe_kind = traitlets.Enum(PROBE_KINDS, "rademacher").tag(sync=True)
    num_probes = traitlets.Int(1).tag(sync=True)
    label = traitlets.Unicode("A").tag(sync=True)
    data = traitlets.Dict(read_only=True).tag(sync=True)

    def __init__(self, A, *, label: str = "A", repetitions: int = 2000, seed: int = 0, **kwargs):
        super().__init__(label=label, **kwargs)
        self.set_trait("data", probe_histograms(A, repetitions=repetitions, seed=seed))

    @traitlets.validate("num_probes")
    def _one_of_the_counts(self, proposal):
        if proposal["value"] not in PROBE_COUNTS:
            raise traitlets.TraitError(f"num_probes must be one of {PROBE_COUNTS}, found {proposal['value']}")
        return proposal["value"]

    def __repr__(self) -> str:
        return f"ProbeExplorer({self.label}, probe_kind={self.probe_kind!r}, num_probes={self.num_probes})"
