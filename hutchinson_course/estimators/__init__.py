"""Reference Hutchinson estimators, one module per chapter milestone."""

from .explicit import hutchinson_trace
from .probes import PROBE_KINDS, sample_probes
from .variance import estimator_tolerance, probe_variance

__all__ = ["PROBE_KINDS", "estimator_tolerance", "hutchinson_trace", "probe_variance", "sample_probes"]
