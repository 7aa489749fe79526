"""The Hutchinson estimator: one core (``core``) and one module per layer the chapters add.

- ``core``: probes, quadratic forms, the mean, the mask, per-point keys;
- ``explicit``: an explicit matrix (jit);
- ``per_point``: one point of a linear field, mapped to (B, N) three ways (vmap);
- ``sharded``: the (B, N) grid split across devices (pmap, shard_map, jit with shardings);
- ``matrix_free``: the Jacobian-vector product of a neural field (grad);
- ``stateful``: probes from brainstate's random state, no keys (stateful vmap);
- ``memory_aware``: the context projection once per batch element, chunks, checkpoint (tiling);
- ``final``: every layer in one call.
"""

from .core import (PROBE_KINDS, exact_trace, hutchinson, masked, masked_mean, point_keys, quadratic_forms,
                   sample_probes)
from .explicit import hutchinson_trace
from .variance import estimator_tolerance, probe_variance

__all__ = ["PROBE_KINDS", "estimator_tolerance", "exact_trace", "hutchinson", "hutchinson_trace", "masked",
           "masked_mean", "point_keys", "probe_variance", "quadratic_forms", "sample_probes"]
