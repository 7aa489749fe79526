"""The stateful vmap chapter's layer: the same estimator, with its keys from brainstate's random state.

The grad chapter's neural field becomes a ``brainstate.nn.Module`` whose weights live in
``ParamState``; its probes come from brainstate's global random state, which
``brainstate.transform.vmap2`` splits into one key per mapped element. Nobody passes a key:
``brainstate.random.seed`` makes a run reproducible, and every call draws new probes. Only the key
source changes: ``point_trace`` is the grad chapter's ``per_point.point_trace`` with
``jvp_matvec``, given a key split from brainstate's state instead of a key argument.

The architecture and the weights are those of ``fields.init_field_params`` and
``fields.vector_field``, so this estimator and ``matrix_free.batch_traces`` (explicit keys)
can be compared on the same field: ``distribution_z_scores`` measures, in standard errors,
how far apart the means and the variances of their repeated estimates are.
"""

from __future__ import annotations

import functools

import brainstate
import jax
import jax.numpy as jnp
import numpy as np

from . import matrix_free, per_point
from .fields import context_summary


class Dense(brainstate.nn.Module):
    """h -> h @ weight + bias, with weight: (fan_in, fan_out) and bias: (fan_out,) in ParamState."""

    def __init__(self, weight: jax.Array, bias: jax.Array):
        super().__init__()
        self.weight = brainstate.ParamState(weight)
        self.bias = brainstate.ParamState(bias)

    def __call__(self, h: jax.Array) -> jax.Array:
        """h: (fan_in,) -> (fan_out,)."""
        return h @ self.weight.value + self.bias.value


class NeuralField(brainstate.nn.Module):
    """The grad chapter's field f(x, z, t): Dense layers with tanh between them, on [x, z, t].

    ``params`` is a dict as returned by ``fields.init_field_params``: {"w0", "b0", ..., "wL", "bL"};
    its arrays become the layers' ParamState values.
    """

    def __init__(self, params: dict[str, jax.Array]):
        super().__init__()
        num_layers = len(params) // 2
        self.layers = [Dense(params[f"w{layer}"], params[f"b{layer}"]) for layer in range(num_layers)]

    def __call__(self, x: jax.Array, z: jax.Array, t: jax.Array) -> jax.Array:
        """f(x, z, t) for one point. x: (D,), z: (Dc,) or (K, Dc), t: () or (1,); returns (D,)."""
        hidden = jnp.concatenate([x, context_summary(z), jnp.reshape(t, (1,))])
        for layer, dense in enumerate(self.layers):
            hidden = dense(hidden)
            if layer < len(self.layers) - 1:
                hidden = jnp.tanh(hidden)
        return hidden

    def param_values(self) -> dict[str, jax.Array]:
        """The current weights as the dict of ``fields.init_field_params``, for the pure-function code."""
        values = {}
        for layer, dense in enumerate(self.layers):
            values[f"w{layer}"] = dense.weight.value
            values[f"b{layer}"] = dense.bias.value
        return values


def point_trace(field: NeuralField, x_point: jax.Array, z_ctx: jax.Array, t_val: jax.Array,
                mask_val: jax.Array, *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Estimate tr(df/dx) at one point: the mean of eps^T J eps, one jvp per probe.

    x_point: (D,), z_ctx: (Dc,) or (K, Dc), t_val: (), mask_val: () (0 marks padding).
    Returns (): the estimate, or 0 where mask_val is 0. No key argument: the key is split from
    brainstate's random state, and the rest is ``per_point.point_trace`` with the field's jvp.
    """
    key = brainstate.random.split_key()  # the one change from the grad chapter's estimator
    return per_point.point_trace(x_point, z_ctx, t_val, mask_val, key, num_probes=num_probes,
                                 probe_kind=probe_kind, jacobian_matvec=matrix_free.jvp_matvec(field))


@functools.partial(brainstate.transform.jit, static_argnums=0, static_argnames=("num_probes", "probe_kind"))
def batch_traces(field: NeuralField, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, *,
                      num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """Hutchinson estimates of tr(df/dx) for every point of every batch, with no key.

    field: a NeuralField, x_t: (B, N, D), z: (B, Dc) or (B, K, Dc), t: (B, 1), mask: (B, N). Returns traces:
    (B, N), zero where mask is 0. Nested vmap2 (points, then batches) gives every point its own
    probes. Compiled with brainstate.transform.jit: the field is static (each field object
    compiles its own program; new weight values do not recompile), and so are ``num_probes``
    and ``probe_kind``.
    """
    point_fn = functools.partial(point_trace, field, num_probes=num_probes, probe_kind=probe_kind)
    over_points = brainstate.transform.vmap2(point_fn, in_axes=(0, None, None, 0))  # z, t shared by N points
    over_batches = brainstate.transform.vmap2(over_points, in_axes=(0, 0, 0, 0))
    return over_batches(x_t, z, t[:, 0], mask)  # t[:, 0]: (B,), so each point sees a scalar


@functools.partial(brainstate.transform.jit, static_argnums=(0, 5), static_argnames=("num_probes", "probe_kind"))
def repeated_traces(field: NeuralField, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array,
                    repeats: int, *, num_probes: int, probe_kind: str = "rademacher") -> jax.Array:
    """``repeats`` independent estimates at once: (repeats, B, N). Shapes as in ``batch_traces``.

    A vmap2 over nothing but a size (in_axes=None, axis_size=repeats): each repetition gets its own
    key, as successive calls would. ``repeats`` is static.
    """
    def one_estimate():
        return batch_traces(field, x_t, z, t, mask, num_probes=num_probes, probe_kind=probe_kind)

    return brainstate.transform.vmap2(one_estimate, in_axes=None, axis_size=repeats)()


def exact_traces(field: NeuralField, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact tr(df/dx) for every point, on the field's current weights (``matrix_free.exact_traces``). Returns (B, N)."""
    return matrix_free.exact_traces(field.param_values(), x_t, z, t, mask)


def distribution_z_scores(samples_a, samples_b) -> tuple[np.ndarray, np.ndarray]:
    """How far apart two sets of independent samples are, in standard errors, entry by entry.

    samples_a: (K_a, ...), samples_b: (K_b, ...). Returns (mean_z, variance_z), each (...):

    - mean_z = |mean_a - mean_b| / sqrt(s_a^2 / K_a + s_b^2 / K_b), the two-sample z statistic;
    - variance_z = |s_a^2 - s_b^2| / sqrt(Var(s_a^2) + Var(s_b^2)), where Var(s^2) is the exact
      variance of an unbiased sample variance of K draws, mu4 / K - sigma^4 (K - 3) / (K (K - 1)),
      with the fourth central moment mu4 and sigma^2 estimated from both samples pooled (they are
      the same distribution if the estimators agree). It does not assume Gaussian samples, which
      matters here: a one-probe Rademacher estimate in D = 2 takes only two values.

    For equal distributions each z is about |N(0, 1)| for large K, so a bound of 5 fails by chance
    with probability under 1e-6 per entry. Entries with no spread in either sample (padding, always
    0) count as equal when they agree to float32 rounding.
    """
    a = np.asarray(samples_a, np.float64)
    b = np.asarray(samples_b, np.float64)
    ka, kb = a.shape[0], b.shape[0]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    var_a, var_b = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
    rounding = 1e-6 * (np.abs(mean_a) + np.abs(mean_b)) + 1e-12
    mean_z = np.abs(mean_a - mean_b) / (np.sqrt(var_a / ka + var_b / kb) + rounding)

    pooled_sigma2 = (var_a * (ka - 1) + var_b * (kb - 1)) / (ka + kb - 2)
    pooled_mu4 = (np.sum((a - mean_a) ** 4, axis=0) + np.sum((b - mean_b) ** 4, axis=0)) / (ka + kb)

    def variance_of_sample_variance(k):
        return np.maximum(pooled_mu4 / k - pooled_sigma2**2 * (k - 3) / (k * (k - 1)), 0.0)

    spread = np.sqrt(variance_of_sample_variance(ka) + variance_of_sample_variance(kb))
    variance_z = np.abs(var_a - var_b) / (spread + 1e-6 * pooled_sigma2 + 1e-12)
    return mean_z, variance_z
