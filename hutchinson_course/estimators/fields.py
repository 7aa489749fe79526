"""A small neural vector field f(x, z, t), the kind a continuous normalizing flow learns.

The field is a multilayer perceptron (tanh between layers) applied to the concatenation
[x, s, t], where s is the context's summary: the context vector itself for a global context
z_ctx: (Dc,), the mean of its K vectors for a structured one, (K, Dc). Its parameters are a
plain dict of arrays, a pytree: ``jax.grad`` returns gradients with the same keys and shapes,
and ``jax.tree.map`` updates them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnames=("dim", "context_dim", "hidden_sizes"))
def init_field_params(key: jax.Array, dim: int, context_dim: int,
                      hidden_sizes: tuple[int, ...] = (32, 32)) -> dict[str, jax.Array]:
    """Parameters of a field R^D x R^Dc x R -> R^D, drawn from ``key``.

    Returns {"w0": (D + Dc + 1, H0), "b0": (H0,), ..., "wL": (H_last, D), "bL": (D,)}:
    weights are normal with variance 1 / fan_in (so activations stay of order one),
    biases are normal with standard deviation 0.1 (so the field is not odd in its input).
    """
    sizes = (dim + context_dim + 1, *hidden_sizes, dim)
    layers = list(zip(sizes[:-1], sizes[1:]))
    # One draw for all layers: on the CPU each jax.random call compiles to a sizeable program.
    noise = jax.random.normal(key, (sum((fan_in + 1) * fan_out for fan_in, fan_out in layers),))
    params, start = {}, 0
    for layer, (fan_in, fan_out) in enumerate(layers):
        block = noise[start:start + (fan_in + 1) * fan_out].reshape(fan_in + 1, fan_out)
        start += (fan_in + 1) * fan_out
        params[f"w{layer}"] = block[:-1] / jnp.sqrt(fan_in)  # the first fan_in rows
        params[f"b{layer}"] = 0.1 * block[-1]  # the last row
    return params


def context_summary(z_ctx: jax.Array) -> jax.Array:
    """s: (Dc,). A global context z_ctx: (Dc,) is its own summary; a structured one, (K, Dc), is mean-pooled."""
    if z_ctx.ndim == 1:
        return z_ctx
    if z_ctx.ndim == 2:
        return z_ctx.mean(axis=0)
    raise ValueError(f"z_ctx must be one context (Dc,) or (K, Dc), found shape {z_ctx.shape}")


def vector_field(params: dict[str, jax.Array], x: jax.Array, z: jax.Array, t: jax.Array) -> jax.Array:
    """f(x, z, t) for one point. x: (D,), z: (Dc,) or (K, Dc), t: () or (1,); returns (D,)."""
    hidden = jnp.concatenate([x, context_summary(z), jnp.reshape(t, (1,))])
    num_layers = len(params) // 2
    for layer in range(num_layers):
        hidden = hidden @ params[f"w{layer}"] + params[f"b{layer}"]
        if layer < num_layers - 1:
            hidden = jnp.tanh(hidden)
    return hidden
