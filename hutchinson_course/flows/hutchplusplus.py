"""Hutch++ (Meyer, Musco, Musco and Woodruff 2021) in the core's style: a matvec, probes, a reduction.

Hutchinson's error falls like 1 / sqrt(m) with m matrix-vector products. Hutch++ spends a third of
them on a sketch: Q, an orthonormal basis of the range of A S for k random probes S, on which the
trace is computed exactly (tr(Q^T A Q), k more products); the remaining probes estimate the trace
of what is left, A deflated by Q, with Hutchinson's estimator. When A's spectrum decays, what is
left is small, and for positive semi-definite A the error falls like 1 / m. The identity

    tr(A) = tr(Q^T A Q) + tr((I - Q Q^T) A (I - Q Q^T))

holds for any square A, so the estimate stays unbiased for a Jacobian, which is not PSD; only
the 1 / m guarantee needs PSD.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from matfree import stochtrace

from hutchinson_course.estimators import per_point
from hutchinson_course.estimators.core import hutchinson, masked, point_keys, quadratic_forms, sample_probes
from hutchinson_course.estimators.matrix_free import jvp_matvec, neural_field


def sketch_basis(matvec, sketch_probes: jax.Array) -> jax.Array:
    """Q: (D, k), orthonormal columns spanning the range of A S. sketch_probes: (k, D); k products."""
    products = jax.vmap(matvec)(sketch_probes)  # (k, D): row i is A s_i
    basis, _ = jnp.linalg.qr(products.T)  # reduced QR of A S: (D, k)
    return basis


def deflate(probes: jax.Array, basis: jax.Array) -> jax.Array:
    """(I - Q Q^T) g for every probe g: the part of each probe outside the sketch's range.

    probes: (P, D), basis: (D, k) with orthonormal columns. Returns (P, D).
    """
    return probes - (probes @ basis) @ basis.T


def hutchplusplus(matvec, sketch_probes: jax.Array, residual_probes: jax.Array) -> jax.Array:
    """Hutch++'s estimate of tr(A): (). matvec: (D,) -> (D,), sketch_probes: (k, D), residual_probes: (m, D).

    2 k + m products: k for the sketch, k for the exact trace on its range, m for Hutchinson on
    the deflated rest.
    """
    basis = sketch_basis(matvec, sketch_probes)
    on_sketch = quadratic_forms(matvec, basis.T).sum()  # tr(Q^T A Q): the basis vectors as probes
    return on_sketch + hutchinson(matvec, deflate(residual_probes, basis))


def matvec_split(num_matvecs: int) -> tuple[int, int]:
    """(k, m): sketch and residual probes for ``num_matvecs`` products, a third each as in the paper."""
    sketch_size = num_matvecs // 3
    if sketch_size < 1:
        raise ValueError(f"Hutch++ needs at least 3 matrix-vector products, found {num_matvecs}")
    return sketch_size, num_matvecs - 2 * sketch_size


def point_trace(x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array, mask_val: jax.Array, key: jax.Array, *,
                num_matvecs: int, probe_kind: str = "rademacher", jacobian_matvec=per_point.linear_matvec) -> jax.Array:
    """Hutch++'s estimate of tr J at one point with ``num_matvecs`` products: (), 0.0 where mask_val is 0.

    The same signature as ``per_point.point_trace``, so ``per_point.map_points`` maps it over
    (B, N) with any of the vmap chapter's strategies.
    """
    sketch_size, residual_size = matvec_split(num_matvecs)
    sketch_key, residual_key = jax.random.split(key)
    dim = x_point.shape[0]
    estimate = hutchplusplus(jacobian_matvec(x_point, z_ctx, t_val),
                             sample_probes(sketch_key, sketch_size, dim, probe_kind, x_point.dtype),
                             sample_probes(residual_key, residual_size, dim, probe_kind, x_point.dtype))
    return masked(estimate, mask_val)


@functools.partial(jax.jit, static_argnames=("num_matvecs", "probe_kind", "strategy"))
def batch_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                 num_matvecs: int, probe_kind: str = "rademacher", strategy: str = "in_axes_none") -> jax.Array:
    """Hutch++ estimates of tr(df/dx) of the neural field for every point: (B, N). Shapes as in
    ``matrix_free.batch_traces``, with ``num_matvecs`` jvps per point in place of ``num_probes``."""
    point_fn = functools.partial(point_trace, num_matvecs=num_matvecs, probe_kind=probe_kind,
                                 jacobian_matvec=jvp_matvec(neural_field(params)))
    return per_point.map_points(point_fn, x_t, z, t, mask, point_keys(key, mask.shape), strategy=strategy)


def xtrace(matvec, key: jax.Array, *, num_matvecs: int, dim: int, dtype=jnp.float32) -> jax.Array:
    """matfree's XTrace (Epperly, Tropp and Webber 2024) with ``num_matvecs`` products: ().

    XTrace spends two products per sample (A Omega, then A Q) and uses every sample both in the
    sketch and as a probe, leaving each out in turn. matfree computes the trace exactly from D
    products when 2 * samples >= D, so that case is refused here: it would not be XTrace.
    """
    num_samples = num_matvecs // 2
    if not 1 <= num_samples < dim / 2:
        raise ValueError(f"XTrace with {num_matvecs} products needs 2 <= num_matvecs < D = {dim}")
    sampler = stochtrace.sampler_sphere(jnp.zeros((dim,), dtype), num=num_samples)  # rotation-invariant probes
    return stochtrace.estimator_leave_one_out(stochtrace.leave_one_out_xtrace(), sampler)(matvec, key)


def xtrace_from_samples(matvec, samples: jax.Array) -> jax.Array:
    """matfree's XTrace estimate from given samples: (). samples: (s, D), rotation-invariant (for
    example normal vectors scaled to length sqrt(D), as ``xtrace`` draws them); 2 s products.

    The same estimate as ``xtrace`` without random-number code in the program: the samples can be
    drawn beforehand, with NumPy.
    """
    num_samples, dim = samples.shape
    if not 1 <= num_samples < dim / 2:
        raise ValueError(f"XTrace with {num_samples} samples needs 1 <= samples < D / 2 = {dim / 2}")
    return jnp.mean(stochtrace.leave_one_out_xtrace()(matvec, samples))
