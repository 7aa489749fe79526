"""Exercises of the grad chapter: jvp and vjp without forming J, the exact divergence with jacfwd,
and the value and gradient of the estimated divergence.

Each check runs the learner's function on a small neural field and explains what differs. The
grader runs these checks again, plus the grader tests in ``hutchinson_course.grading.hidden.grad``.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..estimators.fields import init_field_params, vector_field
from ..estimators.core import masked_mean
from ..estimators.matrix_free import batch_traces
from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable, value_shapes
from .observe import observe, type_name
from .outcome import Incorrect

CONTEXT_DIM = 3
HIDDEN_SIZES = (16, 16)


def example_field(dim: int, seed: int = 0):
    """(params, x, z, t) of a small field at one point, x: (dim,)."""
    params = init_field_params(jax.random.key(seed), dim, CONTEXT_DIM, HIDDEN_SIZES)
    keys = jax.random.split(jax.random.key(seed + 100), 2)
    return params, jax.random.normal(keys[0], (dim,)), jax.random.normal(keys[1], (CONTEXT_DIM,)), jnp.float32(0.3)


def field_function(dim: int, seed: int = 0):
    """A function f: (dim,) -> (dim,) (a field with its parameters, context and time fixed), and a point x."""
    params, x, z, t = example_field(dim, seed)
    return (lambda y: vector_field(params, y, z, t)), x


def require_no_jacobian(fn, f, x, eps, name: str) -> None:
    """Fail if tracing fn(f, x, eps) computes a (D, D) array: the full Jacobian."""
    dim = x.shape[0]
    try:
        forms_jacobian = observe(
            lambda: (dim, dim) in value_shapes(jax.make_jaxpr(lambda x, eps: fn(f, x, eps))(x, eps).jaxpr))
    except jax.errors.TracerArrayConversionError:
        raise Incorrect(f"`{name}` converts a traced value to a NumPy array (np.asarray, np.dot, ...): "
                        "use jax.numpy (jnp) so that JAX can trace it.") from None
    if forms_jacobian:
        raise Incorrect(f"`{name}` computes a ({dim}, {dim}) array: the full Jacobian (jax.jacfwd, jax.jacrev or "
                        f"an identity matrix of basis vectors), which costs {dim} products. The point is to need "
                        "only one: a single jax.jvp or jax.vjp with eps.")


def call_quadratic_form(fn, f, x, eps, name: str, pullback_tuple_hint: bool = False):
    """``fn(f, x, eps)``, observed; JAX's errors about the mode of differentiation turned into advice."""
    try:
        result = observe(lambda: fn(f, x, eps))
    except (TypeError, ValueError) as error:
        if pullback_tuple_hint and isinstance(error, TypeError) and "tuple" in str(error):
            raise Incorrect(f"`{name}` raised TypeError: {error}. The pullback returned by jax.vjp returns a "
                            "tuple, one cotangent per input of f, even for one input: unpack it with "
                            "`(eps_J,) = pullback(eps)`.") from None
        if "Reverse-mode differentiation does not work for lax.while_loop" in str(error):
            raise Incorrect(f"This check gives `{name}` a function that supports forward mode only, and your "
                            "answer used reverse mode (jax.vjp, jax.grad or jax.jacrev). Use one jax.jvp.") from None
        if "forward-mode" in str(error):
            raise Incorrect(f"This check gives `{name}` a function that supports reverse mode only, and your "
                            "answer used forward mode (jax.jvp or jax.jacfwd). Use jax.vjp.") from None
        raise
    return result


# q1 -------------------------------------------------------------------------------------

def check_quadratic_form_jvp(quadratic_form_jvp) -> None:
    require_callable(quadratic_form_jvp, "quadratic_form_jvp")
    dim = 5
    f, x = field_function(dim)
    eps = jax.random.rademacher(jax.random.key(7), (dim,), dtype=jnp.float32)
    J = np.asarray(jax.jacfwd(f)(x), dtype=np.float64)
    eps_np = np.asarray(eps, dtype=np.float64)
    found = call_quadratic_form(quadratic_form_jvp, forward_mode_only(f), x, eps, "quadratic_form_jvp")
    if getattr(found, "shape", None) == (dim,):
        raise Incorrect(f"quadratic_form_jvp returned shape ({dim},): that is J eps, the tangent output of "
                        "jax.jvp. The quadratic form is a scalar: eps @ (J eps).")
    found = expect_array(found, what="quadratic_form_jvp(f, x, eps)", shape=(),
                         why_shape="eps^T J eps is a scalar.")
    if np.isclose(float(found), float(eps_np @ np.asarray(f(x))), rtol=1e-4, atol=1e-6):
        raise Incorrect("You returned eps @ f(x): jax.jvp returns the pair (f(x), J eps), and the quadratic "
                        "form needs the second, the tangent output.")
    expect_close(found, eps_np @ J @ eps_np, what="quadratic_form_jvp(f, x, eps)", rtol=1e-4, atol=1e-5)
    require_no_jacobian(quadratic_form_jvp, f, x, eps, "quadratic_form_jvp")
    require_one_jvp(quadratic_form_jvp, f, x, eps)


def forward_mode_only(f):
    """f itself, as a function that JAX can differentiate in forward mode only: reverse mode does not
    go through a while_loop, and each jvp of it shows in the program as one while loop."""
    def g(x):
        return jax.lax.while_loop(lambda carry: carry[0] < 1, lambda carry: (carry[0] + 1, f(x)), (0, x))[1]
    return g


def require_one_jvp(quadratic_form_jvp, f, x, eps) -> None:
    loops = observe(lambda: str(jax.make_jaxpr(
        lambda x, eps: quadratic_form_jvp(forward_mode_only(f), x, eps))(x, eps)).count("while["))
    if loops != 1:
        raise Incorrect(f"The value is right, but f was evaluated {loops} times: one jax.jvp gives both f(x) "
                        "and J eps in one pass; use it once.")


# q2 -------------------------------------------------------------------------------------

@contextlib.contextmanager
def _spying_on_jacobians():
    """The names of jax's Jacobian functions called meanwhile (jax.jacfwd, jax.jacrev, jax.jacobian)."""
    used: set[str] = set()
    originals = {name: getattr(jax, name) for name in ("jacfwd", "jacrev", "jacobian")}

    def spy(name):
        def called(*args, **kwargs):
            used.add(name)
            return originals[name](*args, **kwargs)
        return called

    for name in originals:
        setattr(jax, name, spy(name))
    try:
        yield used
    finally:
        for name, original in originals.items():
            setattr(jax, name, original)


def called_spying_on_jacobians(fn, *args):
    """(``fn(*args)``, the sorted names of jax's Jacobian functions it called), observed."""
    def run():
        with _spying_on_jacobians() as used:
            found = fn(*args)
        return found, sorted(used)
    return observe(run)


def check_exact_divergence(exact_divergence) -> None:
    require_callable(exact_divergence, "exact_divergence")
    dim = 5
    params, x, z, t = example_field(dim, seed=1)
    J = np.asarray(jax.jacrev(lambda y: vector_field(params, y, z, t))(x), dtype=np.float64)
    found, used = called_spying_on_jacobians(exact_divergence, params, x, z, t)
    used = set(used)
    if "jacfwd" not in used and used & {"jacrev", "jacobian"}:
        raise Incorrect("exact_divergence uses jax.jacrev: this exercise asks for jax.jacfwd, forward mode, "
                        "which builds the square Jacobian of a field from D jvps (jacrev takes D vjps, and "
                        "keeps every intermediate value of the field for them).")
    if isinstance(found, dict):
        raise Incorrect("exact_divergence returned a dict: jax.jacfwd(vector_field) differentiates the first "
                        "argument, params, by default. Differentiate with respect to x, the second argument: "
                        "jax.jacfwd(vector_field, argnums=1), or jax.jacfwd of lambda x: vector_field(params, x, z, t).")
    if getattr(found, "shape", None) == (dim, dim):
        raise Incorrect(f"exact_divergence returned the ({dim}, {dim}) Jacobian itself: return its trace, "
                        "jnp.trace(J), a scalar.")
    found = expect_array(found, what="exact_divergence(params, x, z, t)", shape=(),
                         why_shape="The divergence is one number per point.")
    if np.isclose(float(found), J.sum(), rtol=1e-4) and not np.isclose(J.sum(), np.trace(J), rtol=1e-3):
        raise Incorrect("You summed every entry of the Jacobian; the trace sums only the diagonal: jnp.trace(J).")
    expect_close(found, np.trace(J), what="exact_divergence(params, x, z, t)", rtol=1e-4, atol=1e-5)


# q3 -------------------------------------------------------------------------------------

def reverse_mode_only(f):
    """f itself, as a function that JAX can differentiate in reverse mode only (a custom_vjp)."""
    @jax.custom_vjp
    def g(x):
        return f(x)

    def forward(x):
        return f(x), x

    def backward(x, cotangent):
        return jax.vjp(f, x)[1](cotangent)

    g.defvjp(forward, backward)
    return g


def check_quadratic_form_vjp(quadratic_form_vjp) -> None:
    require_callable(quadratic_form_vjp, "quadratic_form_vjp")
    dim = 5
    f, x = field_function(dim, seed=2)
    eps = jax.random.normal(jax.random.key(8), (dim,))
    J = np.asarray(jax.jacfwd(f)(x), dtype=np.float64)
    eps_np = np.asarray(eps, dtype=np.float64)
    found = call_quadratic_form(quadratic_form_vjp, reverse_mode_only(f), x, eps, "quadratic_form_vjp",
                                pullback_tuple_hint=True)
    if isinstance(found, tuple):
        raise Incorrect("quadratic_form_vjp returned a tuple: the pullback of jax.vjp returns a tuple, one "
                        "cotangent per input of f. Unpack it, `(eps_J,) = pullback(eps)`, and return eps_J @ eps.")
    if getattr(found, "shape", None) in ((dim,), (1, dim)):
        raise Incorrect(f"quadratic_form_vjp returned shape {found.shape}: that is eps^T J, a row of length {dim}. "
                        "Take its dot product with eps to get the scalar eps^T J eps.")
    found = expect_array(found, what="quadratic_form_vjp(f, x, eps)", shape=(),
                         why_shape="eps^T J eps is a scalar.")
    expect_close(found, eps_np @ J @ eps_np, what="quadratic_form_vjp(f, x, eps)", rtol=1e-4, atol=1e-5)
    require_no_jacobian(quadratic_form_vjp, reverse_mode_only(f), x, eps, "quadratic_form_vjp")


# q4 -------------------------------------------------------------------------------------

def example_batch(dim: int = 2, B: int = 2, N: int = 4, seed: int = 0):
    """(params, x_t, z, t, mask) with padding in the last batch."""
    params = init_field_params(jax.random.key(seed), dim, CONTEXT_DIM, HIDDEN_SIZES)
    keys = jax.random.split(jax.random.key(seed + 200), 3)
    x_t = jax.random.normal(keys[0], (B, N, dim))
    z = jax.random.normal(keys[1], (B, CONTEXT_DIM))
    t = jax.random.uniform(keys[2], (B, 1))
    mask = jnp.ones((B, N)).at[-1, N // 2:].set(0.0)
    return params, x_t, z, t, mask


@functools.partial(jax.jit, static_argnames="num_probes")
def reference_loss_and_grad(params, x_t, z, t, mask, key, num_probes: int):
    """(loss, grads, traces) of the exercise's loss, all from one compiled program."""
    def loss_fn(p):
        traces = batch_traces(p, x_t, z, t, mask, key, num_probes=num_probes)
        return masked_mean(traces, mask), traces

    (loss, traces), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, grads, traces


def loss_and_grad_of(fn, params, x_t, z, t, mask, key, num_probes: int):
    """Call the learner's function (observed) and check the pair it returns against the package, same key."""
    result = observe(lambda: fn(params, x_t, z, t, mask, key, num_probes))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Incorrect("divergence_loss_and_grad should return a pair (loss, grads); jax.value_and_grad "
                        f"returns exactly that. Found {type_name(result)}.")
    loss, grads = result
    loss = expect_array(loss, what=f"the loss with num_probes={num_probes}", shape=(), why_shape="It is a mean over the real points: one number.")
    expected_loss, expected_grads, traces = reference_loss_and_grad(params, x_t, z, t, mask, key, num_probes)
    expected_loss, plain_mean = float(expected_loss), float(jnp.mean(traces))
    if (np.isclose(float(loss), plain_mean, rtol=1e-5, atol=1e-7)
            and not np.isclose(plain_mean, expected_loss, rtol=1e-5, atol=1e-7)):
        raise Incorrect(f"The loss is the mean over all B*N points ({plain_mean:.5g}), padding included. Padded "
                        "points (mask 0) are not data: average over the real points only, "
                        f"sum(traces) / sum(mask), which gives {expected_loss:.5g}.")
    expect_close(loss, expected_loss, what=f"the loss with num_probes={num_probes}", rtol=1e-5, atol=1e-7,
                 why="Use batch_traces(params, x_t, z, t, mask, key, num_probes=num_probes) with the key "
                     "you are given, and average over the points where mask is 1.")
    if not isinstance(grads, dict) or set(grads) != set(params):
        found = (f"an array of shape {grads.shape}" if hasattr(grads, "shape") else type_name(grads))
        why = (" That is the shape of x_t: the gradient was taken with respect to the points, not the parameters; "
               "jax.value_and_grad differentiates the first argument of the function you give it."
               if getattr(grads, "shape", None) == x_t.shape else "")
        raise Incorrect(f"grads should have the structure of params, a dict with keys {sorted(params)}; found "
                        f"{found}.{why}")
    for name in sorted(params):
        found = expect_array(grads[name], what=f"grads[{name!r}]", shape=params[name].shape)
        expect_close(found, expected_grads[name], what=f"grads[{name!r}]", rtol=1e-4, atol=1e-6,
                     why="Differentiate the loss you return, with the same key, with respect to params.")
    return float(loss), grads


def check_divergence_loss_and_grad(divergence_loss_and_grad) -> None:
    require_callable(divergence_loss_and_grad, "divergence_loss_and_grad")
    params, x_t, z, t, mask = example_batch()
    # Under jax.jit, as a training step runs it (and the grader tests do): one compilation, and what
    # cannot trace is said here rather than only at grading.
    loss_and_grad_of(compiled(divergence_loss_and_grad), params, x_t, z, t, mask, jax.random.key(3), num_probes=3)


def compiled(divergence_loss_and_grad):
    """The learner's function under jax.jit, as a training step runs it, with advice when it cannot trace.
    It looks at the answer only when called: call it inside observe (loss_and_grad_of does)."""
    def call(*args):
        try:
            return jax.jit(divergence_loss_and_grad, static_argnums=6)(*args)
        except jax.errors.NonConcreteBooleanIndexError:
            raise Incorrect("divergence_loss_and_grad must also work under jax.jit, where the number of real "
                            "points is not known while tracing: traces[mask == 1] cannot be traced. Weight "
                            "by the mask instead: jnp.sum(traces * mask) / jnp.sum(mask).") from None
        except jax.errors.ConcretizationTypeError:
            raise Incorrect("divergence_loss_and_grad must also work under jax.jit: a traced value was turned "
                            "into a Python number (float(...), int(...), .item()). Keep it an array: "
                            "jnp.sum(traces) / jnp.sum(mask).") from None
    return call


EXERCISES = (
    Exercise("grad", "q1", "eps^T J eps with one jvp", "quadratic_form_jvp", 1, check_quadratic_form_jvp, (
        "jax.jvp(f, (x,), (eps,)) returns a pair: f(x) and J eps.",
        "The quadratic form is the dot product of eps with J eps.",
        "_, J_eps = jax.jvp(f, (x,), (eps,)); return eps @ J_eps",
    )),
    Exercise("grad", "q2", "the exact divergence with jacfwd", "exact_divergence", 1, check_exact_divergence, (
        "jax.jacfwd(fn) differentiates fn's first argument unless you pass argnums.",
        "vector_field(params, x, z, t) has x as its second argument: argnums=1.",
        "return jnp.trace(jax.jacfwd(vector_field, argnums=1)(params, x, z, t))",
    )),
    Exercise("grad", "q3", "eps^T J eps with one vjp", "quadratic_form_vjp", 1, check_quadratic_form_vjp, (
        "jax.vjp(f, x) returns f(x) and a pullback; pullback(eps) is eps^T J.",
        "The pullback returns a tuple with one entry per input of f: unpack it.",
        "_, pullback = jax.vjp(f, x); (eps_J,) = pullback(eps); return eps_J @ eps",
    )),
    Exercise("grad", "q4", "value and gradient of the estimated divergence", "divergence_loss_and_grad", 2,
             check_divergence_loss_and_grad, (
        "Write the loss as a function of params first: the masked mean of batch_traces(...).",
        "Padded points (mask 0) get a trace of 0; divide the sum by jnp.sum(mask), not by B * N.",
        "return jax.value_and_grad(loss_fn)(params), where loss_fn(p) computes the masked mean for parameters p.",
    )),
)
