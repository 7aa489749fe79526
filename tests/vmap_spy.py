"""Watch the levels of a nested vmap while JAX traces the real per-point estimator.

Shared by the tests of ``per_point.strategy_shapes`` and of the shape explorer widget.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator
from unittest import mock

import jax

from hutchinson_course.estimators import per_point


@contextlib.contextmanager
def recording_vmap_levels(describe: Callable[[Any], Any]) -> Iterator[list]:
    """Replace jax.vmap by a spy inside the block. Each vmap over the five per-point arguments
    records, outermost first, ``describe`` of what enters it ("entering"), of what its function
    receives ("inside") and of what it returns ("result"). The estimator's own vmap over probes
    (two arguments) is not recorded."""
    real_vmap = jax.vmap
    records: list = []

    def record(kind, arrays):
        if len(arrays) == len(per_point.ARGUMENTS):
            records.append((kind, dict(zip(per_point.ARGUMENTS, map(describe, arrays)))))

    def spy_vmap(fn, *args, **kwargs):
        def inside(*point_args):
            record("inside", point_args)
            return fn(*point_args)

        mapped = real_vmap(inside, *args, **kwargs)

        def entering(*batched_args):
            record("entering", batched_args)
            result = mapped(*batched_args)
            if len(batched_args) == len(per_point.ARGUMENTS):
                records.append(("result", {"traces": describe(result)}))
            return result

        return entering

    with mock.patch.object(jax, "vmap", spy_vmap):
        yield records
