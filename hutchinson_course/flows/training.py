"""Fitting the course's neural field by flow matching: no ODE solve during training.

Noise x0 ~ N(0, I) at t = 0 and data x1 at t = 1 are joined by straight lines,
x_t = (1 - t) x0 + t x1, whose velocity is x1 - x0. Regressing the field f(x_t, z, t) on that
velocity (conditional flow matching, Lipman et al. 2023) makes the flow of f carry the noise to
the data's distribution, one distribution per context z. The loss is a masked mean over the real
points, so padding teaches nothing.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hutchinson_course.estimators.core import masked_mean
from hutchinson_course.estimators.fields import vector_field


def set_velocities(params, x: jax.Array, z: jax.Array, t: jax.Array) -> jax.Array:
    """f(x, z, t) at every point: x (B, N, D), z (B, Dc) or (B, K, Dc), t (B, 1) -> (B, N, D).

    The context and the time are shared by the points of a set (``in_axes=None`` inside).
    """
    per_set = jax.vmap(vector_field, in_axes=(None, 0, None, None))  # the N points of one set
    return jax.vmap(per_set, in_axes=(None, 0, 0, 0))(params, x, z, t[:, 0])


def flow_matching_loss(params, x1: jax.Array, z: jax.Array, mask: jax.Array, x0: jax.Array, t: jax.Array) -> jax.Array:
    """The conditional flow-matching loss on one batch of sets: ().

    x1: (B, N, D) data, z: (B, Dc), mask: (B, N); x0: (B, N, D) noise, one point per data point;
    t: (B, 1), one time in [0, 1] per set.
    """
    x_t = (1.0 - t[:, :, None]) * x0 + t[:, :, None] * x1
    residual = set_velocities(params, x_t, z, t) - (x1 - x0)
    return masked_mean(jnp.sum(residual ** 2, axis=-1), mask)


def flow_matching_draws(seed: int, num_steps: int, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The noise x0 ~ N(0, I): (num_steps, B, N, D) and times t ~ U(0, 1): (num_steps, B, 1) of a run.

    Drawn with NumPy before training: the training program then holds no random-number code,
    which on the CPU is a large part of what XLA compiles.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((num_steps, *shape), dtype=np.float32)
    times = rng.random((num_steps, shape[0], 1), dtype=np.float32)
    return noise, times


@functools.partial(jax.jit, static_argnames=("learning_rate",))
def train(params, x1: jax.Array, z: jax.Array, mask: jax.Array, noise: jax.Array, times: jax.Array, *,
          learning_rate: float = 1e-2):
    """One Adam step on the flow-matching loss over the whole data set per (noise, times) pair.

    noise: (S, B, N, D), times: (S, B, 1) (``flow_matching_draws``). All S steps run inside one
    ``jax.lax.scan``: one compilation, no Python loop. Returns the trained parameters and the loss
    at every step, (S,).
    """
    optimizer = optax.adam(learning_rate)

    def step(carry, draws):
        params, state = carry
        loss, grads = jax.value_and_grad(flow_matching_loss)(params, x1, z, mask, *draws)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), (noise, times))
    return params, losses
