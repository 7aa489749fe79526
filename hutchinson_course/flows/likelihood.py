"""Log-likelihoods of point sets under the flow, by solving its ODE with diffrax.

The flow carries noise x0 ~ N(0, I) at t = 0 to data x1 at t = 1 along dx/dt = f(x, z, t). Along
a path the density changes by the divergence (the instantaneous change of variables, Chen et al.
2018):

    log p1(x1) = log p0(x0) - int_0^1 tr(df/dx)(x_t, z, t) dt.

So the solver runs backwards, from the data at t = 1 to the noise at t = 0, carrying the points
x (B, N, D) and delta (B, N) = int_1^t tr(df/dx) ds together; at t = 0, log p1(x1) = log p0(x0) +
delta. The divergence is the course's: ``memory_aware.exact_traces`` (D jvps per point) or
Hutchinson's estimate ``memory_aware.traces_from_keys`` (P jvps per point, the context
projection once per set, padding masked). The per-point keys are split once per solve, so every
evaluation of the right-hand side uses the same probes (FFJORD, Grathwohl et al. 2019): the
right-hand side is then a smooth, deterministic function, which an adaptive solver's error
control assumes. ``redraw=True`` draws new probes at every evaluation instead, to show what that
breaks.
"""

from __future__ import annotations

import functools
import math

import diffrax
import jax
import jax.numpy as jnp

from hutchinson_course.estimators import memory_aware
from hutchinson_course.estimators.core import masked, masked_mean, point_keys

from .training import set_velocities

DIVERGENCES = ("exact", "hutchinson")
SOLVERS = {"tsit5": diffrax.Tsit5, "euler": diffrax.Euler}  # Euler: one evaluation a step, the cheapest to differentiate
ADJOINTS = ("checkpointed", "direct")


def probe_keys_at(key: jax.Array, t: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Per-point keys that change with the time t: new probes at every evaluation. (B, N) keys.

    The bits of t are folded into ``key``: deterministic for a given t, but unrelated between
    any two times, however close.
    """
    return point_keys(jax.random.fold_in(key, jax.lax.bitcast_convert_type(jnp.asarray(t, jnp.float32), jnp.uint32)), shape)


def dynamics(params, z: jax.Array, mask: jax.Array, key: jax.Array | None, *, divergence: str = "exact",
             num_probes: int = 1, probe_kind: str = "rademacher", redraw: bool = False, chunk_size: int | None = None):
    """The ODE's right-hand side (t, (x, delta), args) -> (dx/dt, d delta/dt) for diffrax.

    z: (B, Dc), mask: (B, N); x: (B, N, D), delta: (B, N); t: () is shared by every set. Padding
    points do not move and have divergence 0, so they never steer the step size.
    ``divergence="hutchinson"`` needs ``key``: split into per-point keys here, once per solve,
    unless ``redraw``.
    """
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, found {divergence!r}")
    if divergence == "hutchinson" and key is None:
        raise ValueError("the Hutchinson divergence needs a key for its probes")
    keys = None if divergence == "exact" or redraw else point_keys(key, mask.shape)

    def right_hand_side(t, state, args):
        x, _ = state
        t_sets = jnp.full((x.shape[0], 1), t, x.dtype)  # (B, 1)
        velocity = set_velocities(params, x, z, t_sets) * mask[..., None]
        if divergence == "exact":
            return velocity, memory_aware.exact_traces(params, x, z, t_sets, mask)
        step_keys = probe_keys_at(key, t, mask.shape) if redraw else keys
        return velocity, memory_aware.traces_from_keys(params, x, z, t_sets, mask, step_keys, num_probes=num_probes,
                                                       probe_kind=probe_kind, chunk_size=chunk_size)

    return right_hand_side


def standard_normal_log_density(x: jax.Array) -> jax.Array:
    """log N(x; 0, I) over the last axis: (..., D) -> (...)."""
    return -0.5 * jnp.sum(x ** 2, axis=-1) - 0.5 * x.shape[-1] * math.log(2.0 * math.pi)


@functools.partial(jax.jit, static_argnames=("divergence", "num_probes", "probe_kind", "redraw", "chunk_size",
                                             "num_steps", "rtol", "atol", "max_steps", "checkpoints", "solver",
                                             "adjoint"))
def log_likelihood(params, x1: jax.Array, z: jax.Array, mask: jax.Array, key: jax.Array | None = None, *,
                   divergence: str = "exact", num_probes: int = 1, probe_kind: str = "rademacher",
                   redraw: bool = False, chunk_size: int | None = None, num_steps: int | None = None,
                   rtol: float = 1e-5, atol: float = 1e-5, max_steps: int = 256, checkpoints: int | None = None,
                   solver: str = "tsit5", adjoint: str = "checkpointed"):
    """log p1(x1 | z) for every point: (B, N), 0.0 where mask is 0, and the solver's statistics.

    x1: (B, N, D), z: (B, Dc), mask: (B, N). Options as in ``dynamics``. ``num_steps=None`` solves
    with an adaptive step size (PID controller, ``rtol``, ``atol``); an int takes that many equal
    steps. ``solver``: "tsit5" (fifth order, six evaluations a step) or "euler" (first order, one).
    At most ``max_steps`` steps; a solve that needs more stops and says so in
    ``stats["successful"]`` instead of raising. Reverse-mode gradients go through the solver with
    ``adjoint="checkpointed"``: ``diffrax.RecursiveCheckpointAdjoint(checkpoints)``, None letting
    diffrax choose (about log(max_steps) checkpoints, recomputing the steps between);
    ``adjoint="direct"``: ``diffrax.DirectAdjoint()``, which differentiates the solver's loop as
    it is and keeps what each step's backward pass needs. Returns (log_p (B, N), stats: {"num_steps", "num_accepted_steps",
    "num_rejected_steps", "successful"}).
    """
    if solver not in SOLVERS or adjoint not in ADJOINTS:
        raise ValueError(f"solver must be one of {tuple(SOLVERS)} and adjoint one of {ADJOINTS}, "
                         f"found {solver!r} and {adjoint!r}")
    right_hand_side = dynamics(params, z, mask, key, divergence=divergence, num_probes=num_probes,
                               probe_kind=probe_kind, redraw=redraw, chunk_size=chunk_size)
    if num_steps is None:
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), -0.1
    else:
        controller, dt0 = diffrax.ConstantStepSize(), -1.0 / num_steps
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(right_hand_side), SOLVERS[solver](), t0=1.0, t1=0.0, dt0=dt0,
        y0=(x1, jnp.zeros(mask.shape, x1.dtype)), stepsize_controller=controller, max_steps=max_steps,
        adjoint=(diffrax.RecursiveCheckpointAdjoint(checkpoints=checkpoints) if adjoint == "checkpointed"
                 else diffrax.DirectAdjoint()), throw=False)
    x0, delta = (leaf[-1] for leaf in solution.ys)
    log_p = masked(standard_normal_log_density(x0) + delta, mask)
    stats = {name: solution.stats[name] for name in ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    stats["successful"] = solution.result == diffrax.RESULTS.successful
    return log_p, stats


def negative_log_likelihood_loss(params, x1: jax.Array, z: jax.Array, mask: jax.Array, key: jax.Array | None = None,
                                 **options) -> jax.Array:
    """The mean of -log p1(x1 | z) over the real points: (), the maximum-likelihood loss.

    ``options`` as in ``log_likelihood``. With ``divergence="hutchinson"`` its gradient is an
    unbiased estimate of the exact loss's (the probes enter linearly), up to the solver's error.
    """
    return -masked_mean(log_likelihood(params, x1, z, mask, key, **options)[0], mask)
