"""Exercises of the capstone chapter: the divergence's mean, probes drawn once per solve, Hutch++'s deflation.

The matrices are small explicit ones and the right-hand side is called directly, without a
solver: the checks compile nothing large and run in well under a second.
"""

from __future__ import annotations

import numpy as np

from hutchinson_course.estimators.core import sample_probes

from .exercise import Exercise
from .expect import expect_array, expect_close, require_callable
from .observe import observe, type_name
from .outcome import Incorrect


def random_matrix(seed: int, dim: int) -> np.ndarray:
    """A (dim, dim) float32 matrix, not symmetric, with a trace far from 0."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(dim, dim)) + 2.0 * np.eye(dim)).astype(np.float32)


def rademacher_probes(seed: int, num_probes: int, dim: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0], np.float32), size=(num_probes, dim))


# q1 -------------------------------------------------------------------------------------

def reference_estimate(a: np.ndarray, probes: np.ndarray) -> float:
    return float(np.mean(np.einsum("pi,ij,pj->p", probes, a, probes, dtype=np.float64)))


def check_estimate(divergence_estimate, a: np.ndarray, probes: np.ndarray) -> None:
    num_probes, dim = probes.shape
    what = f"divergence_estimate(matvec, probes) with {num_probes} probes of D = {dim}"
    found = float(expect_array(observe(lambda: divergence_estimate(lambda v: a @ v, probes)), what=what, shape=(),
                               why_shape="The estimate of tr(A) is one number: the mean over the probes."))
    expected = reference_estimate(a, probes)
    if num_probes > 1 and np.isclose(found, num_probes * expected, rtol=1e-4):
        raise Incorrect(f"{what} returned {found:.4g}, {num_probes} times the expected {expected:.4g}: the estimate is "
                        "the mean of the quadratic forms eps^T A eps over the probes, not their sum. Divide by the "
                        "number of probes P (probes.shape[0]).")
    if dim != num_probes and np.isclose(found, num_probes * expected / dim, rtol=1e-4):
        raise Incorrect(f"{what} returned {found:.4g}: you divided the sum by D = {dim}, the dimension. Divide by the "
                        f"number of probes, P = {num_probes}.")
    if np.isclose(found, -expected, rtol=1e-4) and abs(expected) > 1e-3:
        raise Incorrect(f"{what} returned {found:.4g}, minus the expected {expected:.4g}: the estimate is "
                        "+mean(eps^T A eps); the minus sign belongs in the log-likelihood, not here.")
    expect_close(found, expected, what=what, rtol=1e-4, atol=1e-4,
                 why="Hutchinson's estimate is mean over the probes of eps @ matvec(eps).")


def check_divergence_estimate(divergence_estimate) -> None:
    require_callable(divergence_estimate, "divergence_estimate")
    for seed, (num_probes, dim) in enumerate(((4, 3), (16, 5), (1, 6), (6, 6))):
        check_estimate(divergence_estimate, random_matrix(seed, dim), rademacher_probes(seed, num_probes, dim))


# q2 -------------------------------------------------------------------------------------

def field_matrices(seed: int = 0, dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """a0, a1: (D, D) of the linear field f(x, t) = (a0 + t a1) x."""
    return random_matrix(seed, dim), random_matrix(seed + 100, dim)


def reference_divergence(a0, a1, key, num_probes: int, t: float) -> float:
    probes = np.asarray(sample_probes(key, num_probes, a0.shape[0]), np.float32)
    return reference_estimate(a0 + t * a1, probes)


def right_hand_side_values(make_right_hand_side, a0, a1, key, num_probes: int, x: np.ndarray,
                           times: tuple[float, ...]):
    """(None, [rhs(t, (x, 0), None) for t in times]) for rhs = make_right_hand_side(a0, a1, key,
    num_probes), or (the type's name, None) when that is not a function: the function the learner
    makes stays on the learner's side, only its values are observed."""
    def run():
        rhs = make_right_hand_side(a0, a1, key, num_probes)
        if not callable(rhs):
            return type(rhs).__name__, None
        return None, [rhs(t, (x, np.float32(0.0)), None) for t in times]
    return observe(run)


def divergence_at(result, x: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Incorrect(f"{what} should return a pair (dx/dt, d delta/dt), as diffrax's state is the pair (x, delta); "
                        f"found {type_name(result)}.")
    velocity = expect_array(result[0], what=f"{what}'s dx/dt", shape=x.shape, why_shape="dx/dt has the shape of x.")
    divergence = expect_array(result[1], what=f"{what}'s d delta/dt", shape=(),
                              why_shape="The divergence of the field at one point is one number.")
    return velocity, float(divergence)


def check_rhs(make_right_hand_side, seed: int, dim: int, num_probes: int) -> None:
    import jax

    a0, a1 = field_matrices(seed, dim)
    key = jax.random.key(seed)
    x = np.linspace(-1.0, 1.0, dim).astype(np.float32)
    times = (0.5, 0.5, 0.5 + 1e-6, 0.0, 0.5, 1.0)
    not_a_function, results = right_hand_side_values(make_right_hand_side, a0, a1, key, num_probes, x, times)
    if not_a_function is not None:
        raise Incorrect(f"make_right_hand_side(a0, a1, key, num_probes) should return the function rhs(t, state, "
                        f"args), found {not_a_function}.")
    what = f"rhs(t, (x, delta), None) with D = {dim}, {num_probes} probes"
    _, first = divergence_at(results[0], x, what)
    _, again = divergence_at(results[1], x, what)
    _, later = divergence_at(results[2], x, what)
    scale = 1e-3 * (1.0 + abs(first))
    if abs(first - again) > scale:
        raise Incorrect(f"Called twice at the same t = 0.5 and state, {what} returned divergences {first:.4g} and "
                        f"{again:.4g}: it draws new probes at every call. An adaptive solver evaluates rhs several "
                        "times per step and needs the same function each time: draw the probes once, in "
                        "make_right_hand_side, outside rhs.")
    if abs(first - later) > scale:
        raise Incorrect(f"{what} returned divergence {first:.4g} at t = 0.5 and {later:.4g} at t = 0.5 + 1e-6: the "
                        "probes change with t (redrawn at every evaluation), so the right-hand side jumps and an "
                        "adaptive solver's error control fails. Draw them once, outside rhs, from key.")
    for t, result in zip(times[3:], results[3:]):
        velocity, divergence = divergence_at(result, x, what)
        expect_close(velocity, (a0 + t * a1) @ x, what=f"{what}'s dx/dt at t = {t}", rtol=1e-4, atol=1e-4,
                     why="The field is f(x, t) = (a0 + t a1) x.")
        expected = reference_divergence(a0, a1, key, num_probes, t)
        exact = float(np.trace(a0 + t * a1))
        if np.isclose(divergence, -expected, rtol=1e-4) and abs(expected) > 1e-3:
            raise Incorrect(f"{what}'s d delta/dt at t = {t} is {divergence:.4g}, minus the estimate {expected:.4g}: "
                            "in the course's dynamics delta integrates +tr(df/dx) (the log-likelihood then adds "
                            "delta at t = 0).")
        if np.isclose(divergence, exact, rtol=1e-4) and not np.isclose(expected, exact, rtol=1e-4):
            raise Incorrect(f"{what}'s d delta/dt at t = {t} is the exact trace {exact:.4g}: the exercise asks for "
                            "Hutchinson's estimate with the probes core.sample_probes(key, num_probes, D).")
        expect_close(divergence, expected, what=f"{what}'s d delta/dt at t = {t}", rtol=1e-4, atol=1e-4,
                     why="Expected Hutchinson's estimate of tr(a0 + t a1) with probes = core.sample_probes(key, "
                         "num_probes, D), drawn once.")


def check_make_right_hand_side(make_right_hand_side) -> None:
    require_callable(make_right_hand_side, "make_right_hand_side")
    check_rhs(make_right_hand_side, seed=0, dim=4, num_probes=3)
    check_rhs(make_right_hand_side, seed=1, dim=3, num_probes=1)


# q3 -------------------------------------------------------------------------------------

def orthonormal_basis(seed: int, dim: int, rank: int) -> np.ndarray:
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, rank)))
    return basis.astype(np.float32)


def check_deflation(deflate, seed: int, num_probes: int, dim: int, rank: int) -> None:
    probes = rademacher_probes(seed, num_probes, dim)
    basis = orthonormal_basis(seed, dim, rank)
    what = f"deflate(probes {probes.shape}, basis {basis.shape})"
    found = expect_array(observe(lambda: deflate(probes, basis)), what=what, shape=probes.shape,
                         why_shape="Each probe g becomes (I - Q Q^T) g, a vector of the same length D.")
    projection = (probes @ basis) @ basis.T
    expected = probes - projection
    if np.allclose(found, projection, atol=1e-4):
        raise Incorrect(f"{what} returned Q Q^T g, the part of each probe inside the sketch's range. Deflation keeps "
                        "the part outside it, g - Q Q^T g: the sketch's part of the trace is already counted exactly "
                        "by tr(Q^T A Q).")
    leak = np.abs(found @ basis).max()
    if leak > 1e-3:
        raise Incorrect(f"{what}: the deflated probes should be orthogonal to every column of Q (Q^T (I - Q Q^T) g = 0), "
                        f"found |Q^T g'| up to {leak:.3g}. Subtract (probes @ Q) @ Q^T from the probes.")
    expect_close(found, expected, what=what, rtol=1e-4, atol=1e-4, why="Expected g - Q (Q^T g) for every probe g.")


def check_hutchplusplus_is_exact(deflate) -> None:
    """With the learner's deflation, Hutch++ is exact on a matrix whose range the sketch covers."""
    import jax.numpy as jnp

    rng = np.random.default_rng(7)
    dim, rank = 8, 3
    a = (rng.normal(size=(dim, rank)) @ rng.normal(size=(rank, dim))).astype(np.float32)  # rank 3, not symmetric
    basis, _ = np.linalg.qr(a @ rademacher_probes(7, rank, dim).T)  # Q spans the range of A exactly
    basis = basis.astype(np.float32)
    residual = np.asarray(observe(lambda: np.asarray(deflate(rademacher_probes(8, 5, dim), basis), np.float32)))
    on_sketch = float(np.trace(basis.T @ a @ basis))
    rest = reference_estimate(a, residual)
    estimate = on_sketch + rest
    if not np.isclose(estimate, float(jnp.trace(a)), rtol=1e-3, atol=1e-3):
        raise Incorrect(f"With your deflate, Hutch++ on a rank-{rank} matrix whose range the sketch covers gives "
                        f"{estimate:.4g}, but tr(A) = {float(np.trace(a)):.4g}: what is left after deflation should "
                        f"add nothing (it added {rest:.4g}).")


def check_deflate(deflate) -> None:
    require_callable(deflate, "deflate")
    check_deflation(deflate, seed=0, num_probes=5, dim=6, rank=2)
    check_deflation(deflate, seed=1, num_probes=3, dim=7, rank=3)
    check_hutchplusplus_is_exact(deflate)


EXERCISES = (
    Exercise("capstone", "q1", "the divergence is a mean", "divergence_estimate", 1, check_divergence_estimate, (
        "The buggy version returns the sum of eps^T A eps over the probes; for P probes that is P times the trace.",
        "core.quadratic_forms(matvec, probes) gives the P quadratic forms; reduce them with a mean.",
        "jnp.mean(jax.vmap(lambda eps: eps @ matvec(eps))(probes)), or core.hutchinson(matvec, probes).",
    )),
    Exercise("capstone", "q2", "probes drawn once per solve", "make_right_hand_side", 1,
             check_make_right_hand_side, (
        "Everything rhs draws inside itself is drawn again at every evaluation: the solver calls rhs several times "
        "per step.",
        "Draw probes = core.sample_probes(key, num_probes, D) in make_right_hand_side, before defining rhs, and let "
        "rhs use them.",
        "In rhs: a_t = a0 + t * a1; return a_t @ x, core.hutchinson(lambda v: a_t @ v, probes).",
    )),
    Exercise("capstone", "q3", "Hutch++'s deflation step", "deflate", 1, check_deflate, (
        "Q has orthonormal columns, so Q Q^T g is the part of g inside the sketch's range.",
        "For a (P, D) array of probes, the projections are (probes @ Q) @ Q.T: (P, k) then (P, D).",
        "return probes - (probes @ basis) @ basis.T",
    )),
)
